package messenger

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"sslmessager/internal/e2e"
	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

// sealedFor returns data sealed by alice (her keys ak) to bob's bundle as
// an encrypted file named name, and a fresh wire name.
func sealedFor(t *testing.T, ak, bk *Keys, name string, data []byte) (wireName string, ct []byte) {
	t.Helper()
	b, _, err := bk.bundle("bob")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := (&e2e.Sealer{Self: ak.id, Name: "alice"}).EncryptFile(&buf, e2e.FileMeta{Name: name, Size: int64(len(data)), ModTime: time.Now()}, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if wireName, err = e2e.WireFileName(nil); err != nil {
		t.Fatal(err)
	}
	return wireName, buf.Bytes()
}

// streamingAlice logs alice in with a protocol client (sslm/3, so she can
// publish her key) and publishes ak's bundle.
func streamingAlice(t *testing.T, s *relayServer, ak *Keys, signUp bool) *relaytest.Client {
	t.Helper()
	c := s.DialKeys(t)
	if signUp {
		c.SignUp("alice")
	} else {
		c.LogIn("alice")
	}
	b, _, err := ak.bundle("alice")
	if err != nil {
		t.Fatal(err)
	}
	c.Send(wire.SetKey{Bundle: b.Encode(), Token: c.Token})
	c.Conn.SetReadDeadline(time.Now().Add(waitLimit))
	for {
		q := c.MustNext()
		if ok, is := q.(wire.OK); is && ok.Text == wire.ReasonKeySaved {
			return c
		}
	}
}

// beginUpload has alice announce an upload of ct to bob under wireName
// and send its first n bytes.
func beginUpload(t *testing.T, alice *relaytest.Client, wireName string, ct []byte, n int) {
	t.Helper()
	alice.Send(wire.Upload{Name: wireName, Target: "bob", Size: int64(len(ct)), Token: alice.Token})
	alice.Conn.SetReadDeadline(time.Now().Add(waitLimit))
	for {
		q := alice.MustNext()
		if _, ok := q.(wire.Proceed); ok {
			break
		}
	}
	alice.Conn.SetWriteDeadline(time.Now().Add(60 * time.Second))
	if _, err := alice.Conn.Write(ct[:n]); err != nil {
		t.Fatal(err)
	}
}

// endUpload sends the rest of an upload and waits for its completion.
func endUpload(t *testing.T, alice *relaytest.Client, rest []byte) {
	t.Helper()
	alice.Conn.SetWriteDeadline(time.Now().Add(60 * time.Second))
	if _, err := alice.Conn.Write(rest); err != nil {
		t.Fatal(err)
	}
	alice.Send(wire.UploadEnd{Token: alice.Token})
	alice.Conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	for {
		q := alice.MustNext()
		if n, ok := q.(wire.Notice); ok && n.Text == wire.NoticeUploadComplete {
			return
		}
	}
}

// queuedFor waits until user's queue on the server holds n files.
func queuedFor(t *testing.T, s *relayServer, user string, n int) {
	t.Helper()
	relaytest.CheckFor(t, waitLimit, func() error {
		if q := s.Spool.Queued(user); q != n {
			return fmt.Errorf("%d files queued for %s, want %d", q, user, n)
		}
		return nil
	})
}

// TestE2EStreamedFileToChat: encrypted files streamed to bob's chat
// session (PUSH) while they are uploaded, on first contact (bob has not
// seen alice's key when the first one arrives): the good one is saved
// under its real name, byte-exact, confirmed; one with a flipped byte and
// one whose upload breaks off name nothing; no file is ever named by its
// wire name and no temporary file is left.
func TestE2EStreamedFileToChat(t *testing.T) {
	s, _ := startKeyRelay(t)
	ring := newKeyring(t)
	cb := s.join(t, "bob", true)
	bk := ring.get(t, "bob")
	publishKey(t, cb, bk)
	ak := ring.get(t, "alice")
	alice := streamingAlice(t, s, ak, true)

	dir := t.TempDir()
	bob := startRun(t, cb, Options{Target: "carol", NoTimestamps: true, Keys: bk, Downloads: dir})
	bob.typeLine(t, ":ping:") // answered after the PUSH before it
	waitOutput(t, bob.out, "pong from server")

	size, first := 6<<20, 2<<20+5
	if testing.Short() {
		size, first = 1<<20, 300_000
	}
	data := randomBytes(size, 71)
	wn, ct := sealedFor(t, ak, bk, "Quarterly report.pdf", data)
	beginUpload(t, alice, wn, ct, first)
	waitPart(t, dir, int64(first)) // streamed: bob holds it as it comes
	endUpload(t, alice, ct[first:])
	waitOutput(t, bob.out, "saved Quarterly report.pdf from alice")
	sameFiles(t, dir, map[string][]byte{"Quarterly report.pdf": data})
	checkNoParts(t, dir)
	queuedFor(t, s, "bob", 0)

	// A flipped byte: refused, nothing named, confirmed.
	wn2, ct2 := sealedFor(t, ak, bk, "flipped.txt", randomBytes(3*e2e.ChunkBytes+7, 72))
	ct2[len(ct2)/2] ^= 0x20
	beginUpload(t, alice, wn2, ct2, e2e.ChunkBytes)
	endUpload(t, alice, ct2[e2e.ChunkBytes:])
	waitOutput(t, bob.out, "REFUSED an encrypted file from alice")
	queuedFor(t, s, "bob", 0)

	// An upload that breaks off: nothing named.
	wn3, ct3 := sealedFor(t, ak, bk, "cut.txt", randomBytes(2<<20, 73))
	beginUpload(t, alice, wn3, ct3, 1<<20)
	relaytest.CheckFor(t, waitLimit, func() error {
		if p := partFiles(t, dir); len(p) != 1 || p[0] != 1<<20 {
			return fmt.Errorf("temporary files %v, want one of %d bytes", p, 1<<20)
		}
		return nil
	})
	alice.Conn.Close()
	waitOutput(t, bob.out, "from alice: the upload broke off")
	bob.typeLine(t, ":ping:")
	waitOutput(t, bob.out, "pong from server in")

	sameFiles(t, dir, map[string][]byte{"Quarterly report.pdf": data})
	checkNoParts(t, dir)
	if out := bob.out.String(); strings.Contains(out, "saved "+wn) {
		t.Errorf("the wire name was shown as saved:\n%s", out)
	}
	bob.typeLine(t, ":quit:")
	if err := bob.wait(t); err != nil {
		t.Fatal(err)
	}
}

// TestE2EStreamedFileOneShot: the one-shot download, asked while an
// encrypted upload to bob is under way (GETLIVE), on first contact, saves
// it under its real name, byte-exact, with nothing named by the wire name
// and no temporary file left.
func TestE2EStreamedFileOneShot(t *testing.T) {
	s, _ := startKeyRelay(t)
	ring := newKeyring(t)
	cb := s.join(t, "bob", true)
	bk := ring.get(t, "bob")
	publishKey(t, cb, bk)
	cb.Close()
	ak := ring.get(t, "alice")
	alice := streamingAlice(t, s, ak, true)

	data := randomBytes(3<<20, 74)
	wn, ct := sealedFor(t, ak, bk, "holiday photos.tar", data)
	beginUpload(t, alice, wn, ct, 1<<20)
	dir := t.TempDir()
	c := s.join(t, "bob", false)
	out := &relaytest.SyncBuffer{}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		done <- Download(ctx, c, dir, TransferOptions{Out: out, Keys: bk, E2E: E2EPrefer})
	}()
	waitPart(t, dir, 1<<20)
	endUpload(t, alice, ct[1<<20:])
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Download: %v\n%s", err, out)
		}
	case <-time.After(waitLimit):
		t.Fatalf("Download did not return:\n%s", out)
	}
	t.Log(out)
	sameFiles(t, dir, map[string][]byte{"holiday photos.tar": data})
	checkNoParts(t, dir)
	queuedFor(t, s, "bob", 0)
}
