package messenger

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestJournal(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(dir, "Bob")
	if err := j.add("id1", "AB"); err != nil {
		t.Fatal(err)
	}
	j.add("id2", "cd")
	if st, err := os.Stat(journalPath(dir, "bob")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("journal file: %v, %v; want mode 0600", st, err)
	}
	j = openJournal(dir, "bob")
	if !j.has("id1", "ab") || !j.has("id2", "CD") || j.has("id1", "cd") || j.has("", "") {
		t.Fatalf("journal %v", j.ids)
	}
	if err := j.keepOnly(map[string]bool{"id2": true}); err != nil {
		t.Fatal(err)
	}
	if j = openJournal(dir, "bob"); j.has("id1", "ab") || !j.has("id2", "cd") {
		t.Fatalf("journal after keepOnly %v", j.ids)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("keepOnly left %d files, want the journal alone", len(entries))
	}
	j.keepOnly(nil)
	if _, err := os.Stat(journalPath(dir, "bob")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("empty journal kept: %v", err)
	}
	if filepath.Base(journalPath(dir, "a/b")) == tempPrefix+"received-a/b" || strings.Contains(filepath.Base(journalPath(dir, "../x")), "/") {
		t.Error("a user name reached the journal's path")
	}
}
