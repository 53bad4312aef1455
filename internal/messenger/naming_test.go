package messenger

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sslmessager/internal/durable"
	"sslmessager/internal/wire"
)

func TestSavedNameIsSafe(t *testing.T) {
	long := strings.Repeat("é", 150) + ".tar.gz"
	for in, want := range map[string]string{
		"notes.txt":          "notes.txt",
		"../../etc/passwd":   "passwd",
		`C:\Users\x\a.doc`:   "a.doc",
		"dir/":               "dir",
		".":                  "file",
		"..":                 "file",
		"":                   "file",
		".bashrc":            "bashrc",
		" . spaced name . ":  "spaced name",
		"a\x1b[2Jb\u202ec\n": "a[2Jbc",
		"tab\there":          "tabhere",
		"bad\xffutf8":        "bad\ufffdutf8",
		long:                 strings.Repeat("é", 98) + ".gz",
	} {
		got := wire.CleanFileName(in, maxLocalNameBytes)
		if got != want {
			t.Errorf("CleanFileName(%q) = %q, want %q", in, got, want)
		}
		if wire.CleanFileName(got, maxLocalNameBytes) != got || len(got) > maxLocalNameBytes || got != Sanitize(got) {
			t.Errorf("CleanFileName(%q) = %q is not a fixed point, too long or unsafe", in, got)
		}
	}
}

func TestCommitFileNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	writeTestFile(t, dir, "a.txt", []byte("original"))
	writeTestFile(t, dir, "a (1).txt", []byte("one"))
	writeTestFile(t, dir, "noext", []byte("x"))
	for _, tt := range []struct{ name, want string }{
		{"a.txt", "a (2).txt"},
		{"a.txt", "a (3).txt"},
		{"noext", "noext (1)"},
		{"new.txt", "new.txt"},
	} {
		tmp := writeTestFile(t, dir, tempPrefix+"x.part", []byte("new "+tt.want))
		got, err := commitFile(dir, tmp, tt.name, durable.SyncDir)
		if err != nil || got != tt.want {
			t.Fatalf("commitFile(%s) = %q, %v; want %q", tt.name, got, err, tt.want)
		}
		if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("temporary file left: %v", err)
		}
	}
	sameFiles(t, dir, map[string][]byte{
		"a.txt": []byte("original"), "a (1).txt": []byte("one"), "noext": []byte("x"),
		"a (2).txt": []byte("new a (2).txt"), "a (3).txt": []byte("new a (3).txt"),
		"noext (1)": []byte("new noext (1)"), "new.txt": []byte("new new.txt"),
	})
}

func TestCommitFileDirSyncFails(t *testing.T) {
	dir := t.TempDir()
	tmp := writeTestFile(t, dir, tempPrefix+"x.part", []byte("data"))
	// The real helper, on a directory that is gone: a real error.
	failing := func(string) error { return durable.SyncDir(filepath.Join(dir, "gone")) }
	name, err := commitFile(dir, tmp, "a.txt", failing)
	if err == nil {
		t.Fatalf("commitFile = %q, nil despite the failed directory sync", name)
	}
	if _, err := os.Stat(filepath.Join(dir, "a.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a.txt kept after the failed directory sync: %v", err)
	}
	// The next try takes the same name: nothing was left behind.
	tmp = writeTestFile(t, dir, tempPrefix+"y.part", []byte("data"))
	if name, err := commitFile(dir, tmp, "a.txt", durable.SyncDir); err != nil || name != "a.txt" {
		t.Fatalf("commitFile = %q, %v; want a.txt", name, err)
	}
	sameFiles(t, dir, map[string][]byte{"a.txt": []byte("data")})
}

func TestRemoveStaleParts(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	stale := writeTestFile(t, dir, tempPrefix+"123.part", []byte("half a file"))
	keep := []string{
		writeTestFile(t, dir, tempPrefix+"received-bob", []byte("id sum\n")), // the journal
		writeTestFile(t, dir, "report.part", []byte("a saved file")),         // not our prefix
		writeTestFile(t, dir, tempPrefix+"123.partial", []byte("x")),         // not our suffix
		writeTestFile(t, dir, tempPrefix+".part", []byte("x")),               // nothing between
		writeTestFile(t, outside, tempPrefix+"9.part", []byte("x")),          // another directory
	}
	if err := os.Mkdir(filepath.Join(dir, tempPrefix+"d.part"), 0o700); err != nil {
		t.Fatal(err)
	}
	keep = append(keep, filepath.Join(dir, tempPrefix+"d.part"))
	target := writeTestFile(t, outside, "precious", []byte("x"))
	link := filepath.Join(dir, tempPrefix+"link.part")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	keep = append(keep, link, target)
	live, err := createPart(dir) // a download in progress
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	keep = append(keep, live.Name())

	if n := removeStaleParts(dir); n != 1 {
		t.Errorf("removeStaleParts = %d, want 1", n)
	}
	if _, err := os.Lstat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale part file kept: %v", err)
	}
	for _, p := range keep {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
	// Once its writer is gone (closed, or killed), the part file is stale.
	live.Close()
	if n := removeStaleParts(dir); n != 1 {
		t.Errorf("removeStaleParts after the writer ended = %d, want 1", n)
	}
	if _, err := os.Lstat(live.Name()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("part file of an ended writer kept: %v", err)
	}
}
