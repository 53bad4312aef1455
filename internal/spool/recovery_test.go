package spool

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestCrashWindows builds, from a real committed file, the on-disk state a
// crash leaves at each point of Commit, and checks what Open makes of it:
// a file is there after the crash exactly when its metadata made it into
// the recipient directory next to its data, and every leftover is removed.
func TestCrashWindows(t *testing.T) {
	data := []byte("the file's bytes")
	cases := []struct {
		name    string
		tmpData bool // the data file is still in .tmp
		tmpMeta bool // the metadata file is still in .tmp
		visible bool
	}{
		{"before either rename", true, true, false},
		{"data renamed, metadata not", false, true, false},
		{"metadata renamed, data not (renames reordered)", true, false, false},
		{"both renamed, directory not synced", false, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openSpool(t, dir, Options{MaxQueuedFiles: 3})
			keep := put(t, s, "bob", "alice", "kept", []byte("earlier"), -1)
			m := put(t, s, "bob", "alice", "crashed", data, int64(len(data)))
			rdir := filepath.Join(dir, "alice")
			if c.tmpData {
				mustRename(t, filepath.Join(rdir, m.ID+dataSuffix), filepath.Join(dir, tmpDirName, "up-123"))
			}
			if c.tmpMeta {
				mustRename(t, filepath.Join(rdir, m.ID+metaSuffix), filepath.Join(dir, tmpDirName, "meta-456"))
			}

			s2 := openSpool(t, dir, Options{MaxQueuedFiles: 3})
			l, err := s2.List("alice", 0)
			if err != nil {
				t.Fatal(err)
			}
			want := []Meta{keep}
			if c.visible {
				want = append(want, m)
			}
			if len(l) != len(want) || l[0] != want[0] || len(l) == 2 && l[1] != want[1] {
				t.Fatalf("List after restart = %+v, want %+v", l, want)
			}
			if c.visible {
				if got, _ := readBack(t, s2, "alice", m.ID); !bytes.Equal(got, data) {
					t.Errorf("recovered data = %q", got)
				}
			} else {
				for _, suffix := range []string{dataSuffix, metaSuffix} {
					if _, err := os.Stat(filepath.Join(rdir, m.ID+suffix)); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("leftover %s not removed: %v", suffix, err)
					}
				}
			}
			if e := tmpEntries(t, dir); len(e) != 0 {
				t.Errorf(".tmp not emptied: %v", e)
			}
			wantUsed := keep.Size
			if c.visible {
				wantUsed += m.Size
			}
			if s2.Used("alice") != wantUsed || s2.Queued("alice") != len(want) || s2.TotalBytes() != wantUsed {
				t.Errorf("accounting after restart: %d bytes (total %d), %d files; want %d bytes, %d files",
					s2.Used("alice"), s2.TotalBytes(), s2.Queued("alice"), wantUsed, len(want))
			}
			// The recovered accounting limits new uploads: the queue holds
			// 3 files at most.
			for range 3 - len(want) {
				put(t, s2, "bob", "alice", "more", nil, 0)
			}
			if _, err := s2.Begin("bob", "alice", "x", 0); !errors.Is(err, ErrTooManyFiles) {
				t.Errorf("Begin on the full recovered queue = %v, want ErrTooManyFiles", err)
			}
		})
	}
}

// TestCrashDuringRemove builds the state a crash between Remove's two
// deletes leaves (data without metadata): the file is gone after Open.
func TestCrashDuringRemove(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, Options{})
	m := put(t, s, "bob", "alice", "x", []byte("abc"), 3)
	if err := os.Remove(filepath.Join(dir, "alice", m.ID+metaSuffix)); err != nil {
		t.Fatal(err)
	}
	s2 := openSpool(t, dir, Options{})
	if l, _ := s2.List("alice", 0); len(l) != 0 || s2.Used("alice") != 0 || s2.Queued("alice") != 0 {
		t.Errorf("after restart: %v, %d bytes, %d files", l, s2.Used("alice"), s2.Queued("alice"))
	}
	if _, err := os.Stat(filepath.Join(dir, "alice", m.ID+dataSuffix)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("orphan data kept: %v", err)
	}
}

func mustRename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}
