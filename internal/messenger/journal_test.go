package messenger

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
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
	// A name that is not plain letters, digits or _ never reaches the
	// path: it stays one file in dir, named by a hash.
	for _, name := range []string{"a/b", "../x", "..", "a\\b", "é"} {
		p := journalPath(dir, name)
		if filepath.Dir(p) != dir || !regexp.MustCompile(`^\.sslm-received-[0-9a-f]{16}$`).MatchString(filepath.Base(p)) {
			t.Errorf("journalPath(%q) = %q", name, p)
		}
	}
	if got := filepath.Base(journalPath(dir, "Bob_1")); got != tempPrefix+"received-bob_1" {
		t.Errorf("journalPath(Bob_1) = %q", got)
	}
}
