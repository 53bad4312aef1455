package messenger

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sslmessager/internal/e2e/trust"
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
