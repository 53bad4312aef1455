package messenger

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sslmessager/internal/durable"
	"sslmessager/internal/relay/relaytest"
)

// TestDownloadDirSyncFailureKeepsFile: when the download directory cannot
// be fsynced after a file got its name, the file counts as not saved: it
// is removed again, not confirmed and so kept on the server, which sends
// it again to the next download.
func TestDownloadDirSyncFailureKeepsFile(t *testing.T) {
	s := startRelay(t)
	signUp(t, s, "alice", "bob")
	data := randomBytes(100<<10, 11)
	uploadAll(t, s, "alice", "bob", writeTestFile(t, t.TempDir(), "a.bin", data))
	bobGone := func() { s.waitOnline(t, "bob gone", func(n []string) bool { return !slices.Contains(n, "bob") }) }

	dl := t.TempDir()
	out := &relaytest.SyncBuffer{}
	failing := func(string) error { return durable.SyncDir(filepath.Join(dl, "gone")) } // the real helper, a real error
	err := Download(t.Context(), s.join(t, "bob", false), dl, TransferOptions{Out: out, syncDir: failing})
	var ce *ChecksumError
	if !errors.As(err, &ce) || ce.NotSaved != 1 {
		t.Fatalf("Download = %v, want one file not saved\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "! a.bin from alice: not saved (sync directory") || !strings.Contains(out.String(), "kept on the server") {
		t.Errorf("output:\n%s", out.String())
	}
	sameFiles(t, dl, nil) // no a.bin, no temporary file
	if _, err := os.Stat(journalPath(dl, "bob")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file not saved was recorded as received: %v", err)
	}
	bobGone()

	out = &relaytest.SyncBuffer{}
	if err := Download(t.Context(), s.join(t, "bob", false), dl, TransferOptions{Out: out}); err != nil {
		t.Fatalf("second Download: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "saved a.bin from alice (102 KB, sha256 ok) -> "+filepath.Join(dl, "a.bin")) {
		t.Errorf("second download:\n%s", out.String())
	}
	sameFiles(t, dl, map[string][]byte{"a.bin": data})
	bobGone()
	out = &relaytest.SyncBuffer{}
	if err := Download(t.Context(), s.join(t, "bob", false), dl, TransferOptions{Out: out}); err != nil || out.String() != "no files waiting\n" {
		t.Fatalf("third Download: %v, %q", err, out.String())
	}
}

// TestDownloadRemovesStaleParts: the temporary files of a crashed run are
// removed when the next download starts, and nothing else is.
func TestDownloadRemovesStaleParts(t *testing.T) {
	s := startRelay(t)
	signUp(t, s, "bob")
	dl := t.TempDir()
	writeTestFile(t, dl, tempPrefix+"4711.part", randomBytes(1000, 1))
	writeTestFile(t, dl, "mine.part", []byte("a saved file"))
	out := &relaytest.SyncBuffer{}
	if err := Download(t.Context(), s.join(t, "bob", false), dl, TransferOptions{Out: out}); err != nil {
		t.Fatal(err)
	}
	if want := "removed 1 unfinished file left by an earlier download\nno files waiting\n"; out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
	sameFiles(t, dl, map[string][]byte{"mine.part": []byte("a saved file")})
}
