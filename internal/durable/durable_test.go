package durable

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestWriteFileReplacesAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "users.csv")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, 0o600, func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err }); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "new" {
		t.Fatalf("content %q, %v", b, err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("left behind: %v", ents)
	}
}

func TestWriteFileFailureKeepsOldAndNamesTarget(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "users.csv")
	os.WriteFile(p, []byte("old"), 0o600)
	boom := errors.New("boom")
	err := WriteFile(p, 0o600, func(w io.Writer) error { io.WriteString(w, "half"); return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(err.Error(), "users.csv") || strings.Contains(err.Error(), ".tmp-") {
		t.Fatalf("error should name the file, not the temp file: %v", err)
	}
	b, _ := os.ReadFile(p)
	if string(b) != "old" {
		t.Fatalf("content %q", b)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("left behind: %v", ents)
	}
}

func TestWriteFileInMissingDirNamesTarget(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope", "users.csv")
	err := WriteFile(p, 0o600, func(io.Writer) error { return nil })
	if err == nil || !errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), ".tmp-") || !strings.Contains(err.Error(), p) {
		t.Fatalf("err %v", err)
	}
}

func TestSyncDir(t *testing.T) {
	if err := SyncDir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing dir: %v", err)
	}
}

func TestIsTempNamesWriteFileLeftovers(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bob.log")
	// A WriteFile that fails midway shows the name its temporary file had.
	var tmpName string
	WriteFile(p, 0o600, func(w io.Writer) error {
		tmpName = filepath.Base(w.(*os.File).Name())
		return errors.New("crash")
	})
	if !IsTemp(tmpName) {
		t.Fatalf("IsTemp(%q) = false", tmpName)
	}
	for _, name := range []string{"bob.log", "users.csv", ".hidden", "tmp-x"} {
		if IsTemp(name) {
			t.Errorf("IsTemp(%q) = true", name)
		}
	}
}

func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "users.csv")
	keep := []string{"users.csv", "bans.csv", ".bans.csv.tmp-1", "notes.tmp-1"}
	for _, n := range append(keep, ".users.csv.tmp-123", ".users.csv.tmp-abc") {
		os.WriteFile(filepath.Join(dir, n), nil, 0o600)
	}
	if err := RemoveTemps(p); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	slices.Sort(got)
	want := slices.Clone(keep)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("left %v, want %v", got, want)
	}
}
