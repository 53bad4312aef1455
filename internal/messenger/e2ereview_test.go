package messenger

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sslmessager/internal/e2e"
	"sslmessager/internal/e2e/keystore"
	"sslmessager/internal/e2e/trust"
	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

// TestE2EFileFromChangedKeyKept: alice's key changes (a second device
// that did not import her identity) and she sends bob a file; bob, who
// pinned her old key, is told of the change and gets the file: a file
// sealed by a key other than the pinned one makes the download ask the
// directory again, as a direct message does, instead of discarding the
// file from the server for good.
func TestE2EFileFromChangedKeyKept(t *testing.T) {
	s, _ := startKeyRelay(t)
	ring := newKeyring(t).open(t, "alice", "bob")
	ring2 := newKeyring(t).open(t, "alice") // alice's second device, a new identity
	ca := s.join(t, "alice", true)
	cb := s.join(t, "bob", true)
	publishKey(t, ca, ring.get(t, "alice"))
	publishKey(t, cb, ring.get(t, "bob"))
	ca.Close()
	cb.Close()

	src := t.TempDir()
	first := filepath.Join(src, "first.txt")
	second := filepath.Join(src, "second.txt")
	os.WriteFile(first, []byte("one"), 0o600)
	os.WriteFile(second, []byte("two"), 0o600)

	// bob pins alice's first key by downloading her first file.
	if out, err := e2eUploadOneShot(t, s, ring, "alice", "bob", E2EPrefer, first); err != nil {
		t.Fatalf("upload: %v\n%s", err, out)
	}
	dir := t.TempDir()
	if out, err := e2eDownloadOneShot(t, s, ring, "bob", dir); err != nil {
		t.Fatalf("download: %v\n%s", err, out)
	}
	bk := ring.get(t, "bob")
	c, ok := bk.contact("alice")
	if !ok {
		t.Fatal("bob did not pin alice's key")
	}
	// ... and verifies it.
	if err := bk.trustDo(func(ts *trust.Store) error { return ts.Verify("alice", c.Key) }); err != nil {
		t.Fatal(err)
	}

	// alice's other device publishes its own key and sends a file.
	if out, err := e2eUploadOneShot(t, s, ring2, "alice", "bob", E2EPrefer, second); err != nil {
		t.Fatalf("upload from the second device: %v\n%s", err, out)
	}
	out, err := e2eDownloadOneShot(t, s, ring, "bob", dir)
	if err != nil {
		t.Fatalf("download: %v\n%s", err, out)
	}
	got, rerr := os.ReadFile(filepath.Join(dir, "second.txt"))
	if rerr != nil || string(got) != "two" {
		t.Fatalf("the file from alice's new key was not saved (%v):\n%s", rerr, out)
	}
	if !strings.Contains(out, "alice's end-to-end key CHANGED since you verified it") {
		t.Errorf("the download did not say that alice's verified key changed:\n%s", out)
	}
	if !strings.Contains(out, "from UNVERIFIED NEW KEY alice") {
		t.Errorf("the file from alice's unverified new key is not marked so:\n%s", out)
	}
	checkNoParts(t, dir)
}

// TestE2EUnrecordedKeyChangeBlocks: when a changed key of a verified
// contact cannot be recorded in the trust store (the key store cannot be
// written: a full disk, a damaged state), nothing is sealed to that key:
// not a message, not a file. The session must not seal to a key the trust
// store has not pinned and cleared for sending.
func TestE2EUnrecordedKeyChangeBlocks(t *testing.T) {
	s, _ := startKeyRelay(t)
	ring := newKeyring(t).open(t, "alice", "bob")
	bob := s.chat(t, ring, "bob", "alice", E2EPrefer)
	alice := s.chat(t, ring, "alice", "bob", E2EPrefer)
	alice.typeLine(t, "first")
	waitOutput(t, bob.out, "alice: first\n")
	ak := ring.get(t, "alice")
	c, ok := ak.contact("bob")
	if !ok {
		t.Fatal("alice did not pin bob's key")
	}
	if err := ak.trustDo(func(ts *trust.Store) error { return ts.Verify("bob", c.Key) }); err != nil {
		t.Fatal(err)
	}

	// alice's key store can no longer be written.
	state := filepath.Join(ak.Dir(), keystore.StateFile)
	if err := os.WriteFile(state, []byte("damaged"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The server swaps bob's key.
	evil, err := e2e.NewIdentity(nil)
	if err != nil {
		t.Fatal(err)
	}
	spk, err := evil.NewSignedPrekey(7, ak.now().Add(SPKLifetime), nil)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := evil.Bundle("bob", spk)
	if err != nil {
		t.Fatal(err)
	}
	mallory := s.rawAs(t, "bob", wire.ALPNKeys, wire.ALPN)
	mallory.Send(wire.SetKey{Bundle: eb.Encode(), Token: mallory.Token})
	mallory.Expect(wire.OK{Text: wire.ReasonKeySaved})
	waitOutput(t, alice.out, "cannot record bob's end-to-end key")

	p := filepath.Join(t.TempDir(), "secret.txt")
	os.WriteFile(p, []byte("for bob only"), 0o600)
	alice.typeLine(t, ":upload: "+p)
	waitOutput(t, alice.out, "! file not sent")
	if q, _ := s.Spool.List("bob", 10); len(q) != 0 {
		t.Fatalf("a file went to bob's swapped key: %+v\n%s", q, alice.out.String())
	}
}

// TestE2EFilePushedDecrypted: a file sent end to end to a user chatting
// (whose session asked for pushes) arrives streamed outside any download;
// it is decrypted and saved under its real name, never saved as the
// ciphertext under its wire name.
func TestE2EFilePushedDecrypted(t *testing.T) {
	s, _ := startKeyRelay(t)
	ring := newKeyring(t).open(t, "alice", "bob")
	dir := t.TempDir()
	ca := s.join(t, "alice", true)
	publishKey(t, ca, ring.get(t, "alice"))
	ca.Close()
	cb := s.join(t, "bob", true)
	bob := startRun(t, cb, Options{Target: "alice", NoTimestamps: true, Keys: ring.get(t, "bob"), Downloads: dir})
	relaytest.CheckFor(t, waitLimit, func() error {
		if _, ok := s.Keys.Get("bob"); !ok {
			return errors.New("bob has not published a key")
		}
		return nil
	})
	bob.typeLine(t, ":fingerprint:") // the session's opening lines (PUSH) are sent
	waitOutput(t, bob.out, "safety-number half")
	p := filepath.Join(t.TempDir(), "plan.txt")
	os.WriteFile(p, []byte("the plan"), 0o600)
	if out, err := e2eUploadOneShot(t, s, ring, "alice", "bob", E2EPrefer, p); err != nil {
		t.Fatalf("upload: %v\n%s", err, out)
	}
	waitOutput(t, bob.out, "saved ")
	relaytest.CheckFor(t, waitLimit, func() error {
		got, err := os.ReadFile(filepath.Join(dir, "plan.txt"))
		if err != nil {
			return fmt.Errorf("%v\n%s", err, bob.out.String())
		}
		if string(got) != "the plan" {
			t.Fatal("plan.txt differs")
		}
		return nil
	})
	if !strings.Contains(bob.out.String(), "end-to-end encrypted, authenticated") {
		t.Errorf("the pushed file is not reported as decrypted:\n%s", bob.out.String())
	}
}
