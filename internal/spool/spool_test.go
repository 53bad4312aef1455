package spool

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"sslmessager/internal/wire"
)

func openSpool(t *testing.T, dir string, opts Options) *Spool {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func hexSum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// put uploads data in small chunks and commits with its correct hash.
func put(t *testing.T, s *Spool, sender, recipient, name string, data []byte, size int64) Meta {
	t.Helper()
	u, err := s.Begin(sender, recipient, name, size)
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 64<<10)
		if w, err := u.Write(rest[:n]); err != nil || w != n {
			t.Fatalf("Write = %d, %v", w, err)
		}
		rest = rest[n:]
	}
	m, err := u.Commit(hexSum(data))
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return m
}

func readBack(t *testing.T, s *Spool, recipient, id string) ([]byte, Meta) {
	t.Helper()
	f, m, err := s.Open(recipient, id)
	if err != nil {
		t.Fatalf("Open(%q, %q): %v", recipient, id, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b, m
}

func tmpEntries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, ".tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func assertNothingQueued(t *testing.T, s *Spool, dir, recipient string) {
	t.Helper()
	if l, err := s.List(recipient, 0); err != nil || len(l) != 0 {
		t.Errorf("List = %v, %v; want empty", l, err)
	}
	if n := tmpEntries(t, dir); len(n) != 0 {
		t.Errorf(".tmp not empty: %v", n)
	}
	if u := s.Used(recipient); u != 0 {
		t.Errorf("Used = %d, want 0", u)
	}
	if q := s.Queued(recipient); q != 0 {
		t.Errorf("Queued = %d, want 0", q)
	}
	if ents, err := os.ReadDir(filepath.Join(dir, strings.ToLower(recipient))); err == nil && len(ents) != 0 {
		t.Errorf("recipient dir not empty: %d entries", len(ents))
	}
}

func TestRoundTrip(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	big := make([]byte, 3<<20)
	rand.Read(big)
	cases := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"one", []byte{0x42}},
		{"allbytes", all},
		{"3MiB", big},
	}
	dir := t.TempDir()
	fixed := time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC)
	s := openSpool(t, dir, Options{Now: func() time.Time { return fixed }})
	var total int64
	var ids []string
	for _, c := range cases {
		for _, known := range []bool{true, false} {
			size := int64(len(c.data))
			if !known {
				size = -1
			}
			m := put(t, s, "Bob_1", "Alice", "../"+c.name+".bin", c.data, size)
			total += int64(len(c.data))
			ids = append(ids, m.ID)
			if m.Size != int64(len(c.data)) || m.SHA256 != hexSum(c.data) {
				t.Errorf("%s: meta size/hash = %d %s", c.name, m.Size, m.SHA256)
			}
			if m.Sender != "Bob_1" || m.Recipient != "alice" || m.Name != c.name+".bin" || !m.Time.Equal(fixed) {
				t.Errorf("%s: meta = %+v", c.name, m)
			}
			if !validID(m.ID) {
				t.Errorf("bad id %q", m.ID)
			}
			got, om := readBack(t, s, "aLiCe", m.ID)
			if !bytes.Equal(got, c.data) {
				t.Errorf("%s: read back %d bytes, differs", c.name, len(got))
			}
			if hexSum(got) != om.SHA256 || om != m {
				t.Errorf("%s: Open meta %+v, want %+v", c.name, om, m)
			}
		}
	}
	l, err := s.List("ALICE", 0)
	if err != nil || len(l) != len(ids) {
		t.Fatalf("List = %d entries, %v; want %d", len(l), err, len(ids))
	}
	for i, m := range l {
		if m.ID != ids[i] {
			t.Errorf("List[%d] = %s, want %s (oldest first, even with a fixed clock)", i, m.ID, ids[i])
		}
	}
	if u := s.Used("alice"); u != total {
		t.Errorf("Used = %d, want %d", u, total)
	}
	if n := tmpEntries(t, dir); len(n) != 0 {
		t.Errorf(".tmp not empty: %v", n)
	}
	if l, err := s.List("nobody", 0); l != nil || err != nil {
		t.Errorf("List(nobody) = %v, %v", l, err)
	}
	// Permissions of the layout.
	for _, p := range []string{dir, filepath.Join(dir, "alice")} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, %v", p, st.Mode(), err)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "alice", ids[0]+".data")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("data file mode: %v, %v", st, err)
	}
}

func TestOrderWithAdvancingClock(t *testing.T) {
	var tick atomic.Int64
	base := time.Unix(1_700_000_000, 0)
	s := openSpool(t, t.TempDir(), Options{Now: func() time.Time {
		return base.Add(time.Duration(tick.Add(1)) * time.Second)
	}})
	var want []string
	for i := range 5 {
		want = append(want, put(t, s, "bob", "alice", fmt.Sprint(i), []byte{byte(i)}, 1).ID)
	}
	l, _ := s.List("alice", 0)
	for i := range l {
		if l[i].ID != want[i] || l[i].Name != fmt.Sprint(i) {
			t.Fatalf("List order wrong: %v", l)
		}
		if i > 0 && !l[i].Time.After(l[i-1].Time) {
			t.Errorf("times not increasing")
		}
	}
}

func TestSizeMismatch(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, Options{})

	// Short.
	u, err := s.Begin("bob", "alice", "x", 10)
	if err != nil {
		t.Fatal(err)
	}
	if u2 := s.Used("alice"); u2 != 10 {
		t.Errorf("Used during upload = %d, want 10 reserved", u2)
	}
	u.Write([]byte("12345"))
	if _, err := u.Commit(""); !errors.Is(err, ErrSizeMismatch) {
		t.Errorf("short Commit = %v, want ErrSizeMismatch", err)
	}
	assertNothingQueued(t, s, dir, "alice")
	if err := u.Abort(); err != nil {
		t.Errorf("Abort after failed Commit = %v", err)
	}

	// Long.
	u, err = s.Begin("bob", "alice", "x", 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Write([]byte("123456")); err != nil {
		t.Fatal(err)
	}
	if n, err := u.Write([]byte("789012")); !errors.Is(err, ErrSizeMismatch) || n != 0 {
		t.Errorf("long Write = %d, %v; want 0, ErrSizeMismatch", n, err)
	}
	if _, err := u.Commit(""); !errors.Is(err, ErrSizeMismatch) {
		t.Errorf("Commit after long write = %v, want ErrSizeMismatch", err)
	}
	assertNothingQueued(t, s, dir, "alice")
}

func TestHashMismatch(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, Options{})
	data := []byte("hello")
	u, _ := s.Begin("bob", "alice", "x", int64(len(data)))
	u.Write(data)
	if _, err := u.Commit(hexSum([]byte("hellO"))); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("Commit = %v, want ErrHashMismatch", err)
	}
	assertNothingQueued(t, s, dir, "alice")

	// Upper-case hex of the right hash is accepted.
	u, _ = s.Begin("bob", "alice", "x", int64(len(data)))
	u.Write(data)
	m, err := u.Commit(strings.ToUpper(hexSum(data)))
	if err != nil || m.SHA256 != hexSum(data) {
		t.Fatalf("Commit(upper) = %+v, %v", m, err)
	}
}

func TestLimits(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, Options{MaxFileSize: 100, Quota: 250})

	if _, err := s.Begin("bob", "alice", "x", 101); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Begin(101) = %v, want ErrTooLarge", err)
	}
	// Unknown size growing past the max file size.
	u, _ := s.Begin("bob", "alice", "x", -1)
	if _, err := u.Write(make([]byte, 60)); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Write(make([]byte, 41)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Write past max = %v, want ErrTooLarge", err)
	}
	if _, err := u.Commit(""); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Commit after ErrTooLarge = %v", err)
	}
	assertNothingQueued(t, s, dir, "alice")

	put(t, s, "bob", "alice", "a", make([]byte, 100), 100)
	put(t, s, "bob", "alice", "b", make([]byte, 100), 100)
	if _, err := s.Begin("bob", "alice", "x", 51); !errors.Is(err, ErrQuota) {
		t.Errorf("Begin over quota = %v, want ErrQuota", err)
	}
	// Unknown size over quota.
	u, _ = s.Begin("bob", "Alice", "x", -1)
	if _, err := u.Write(make([]byte, 50)); err != nil {
		t.Fatal(err)
	}
	if s.Used("alice") != 250 {
		t.Errorf("Used = %d, want 250", s.Used("alice"))
	}
	if _, err := u.Write(make([]byte, 1)); !errors.Is(err, ErrQuota) {
		t.Errorf("Write over quota = %v, want ErrQuota", err)
	}
	if _, err := u.Commit(""); !errors.Is(err, ErrQuota) {
		t.Errorf("Commit after ErrQuota = %v", err)
	}
	if s.Used("alice") != 200 {
		t.Errorf("Used after failed upload = %d, want 200", s.Used("alice"))
	}
	// Another recipient is unaffected; an upload that fits still works.
	put(t, s, "bob", "carol", "c", make([]byte, 100), 100)
	m := put(t, s, "bob", "alice", "fits", make([]byte, 50), 50)
	if s.Used("alice") != 250 {
		t.Errorf("Used = %d, want 250", s.Used("alice"))
	}
	// A zero-byte file still fits in a full queue.
	put(t, s, "bob", "alice", "zero", nil, 0)
	// Removing frees room.
	if err := s.Remove("alice", m.ID); err != nil {
		t.Fatal(err)
	}
	put(t, s, "bob", "alice", "again", make([]byte, 50), -1)
	if l, _ := s.List("alice", 0); len(l) != 4 {
		t.Errorf("List = %d entries, want 4", len(l))
	}
	if n := tmpEntries(t, dir); len(n) != 0 {
		t.Errorf(".tmp not empty: %v", n)
	}
}

func TestAbort(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, Options{})
	u, err := s.Begin("bob", "alice", "x", 100)
	if err != nil {
		t.Fatal(err)
	}
	u.Write(make([]byte, 50))
	if len(tmpEntries(t, dir)) != 1 {
		t.Errorf("expected one temp file during upload")
	}
	for range 2 {
		if err := u.Abort(); err != nil {
			t.Errorf("Abort = %v", err)
		}
	}
	assertNothingQueued(t, s, dir, "alice")
	if _, err := u.Write([]byte("x")); err == nil {
		t.Error("Write after Abort succeeded")
	}
	if _, err := u.Commit(""); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	assertNothingQueued(t, s, dir, "alice")

	// Abort after Commit is a no-op.
	u, _ = s.Begin("bob", "alice", "x", 1)
	u.Write([]byte("z"))
	m, err := u.Commit("")
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Abort(); err != nil {
		t.Errorf("Abort after Commit = %v", err)
	}
	if got, _ := readBack(t, s, "alice", m.ID); string(got) != "z" {
		t.Errorf("file gone after Abort-after-Commit")
	}
	if s.Used("alice") != 1 {
		t.Errorf("Used = %d, want 1", s.Used("alice"))
	}
	if _, err := u.Commit(""); err == nil {
		t.Error("second Commit succeeded")
	}
}

func TestConcurrentUploads(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, Options{})
	const n = 8
	payloads := make([][]byte, n)
	for i := range payloads {
		payloads[i] = make([]byte, 100<<10+i)
		rand.Read(payloads[i])
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			size := int64(len(payloads[i]))
			if i%2 == 1 {
				size = -1
			}
			u, err := s.Begin("bob", "alice", fmt.Sprintf("f%d", i), size)
			if err != nil {
				errs <- err
				return
			}
			for p := payloads[i]; len(p) > 0; {
				k := min(len(p), 4096)
				if _, err := u.Write(p[:k]); err != nil {
					errs <- err
					return
				}
				p = p[k:]
			}
			_, err = u.Commit(hexSum(payloads[i]))
			errs <- err
		})
	}
	// List and Open concurrently with the uploads.
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			l, err := s.List("alice", 0)
			if err != nil {
				t.Errorf("List: %v", err)
				return
			}
			for _, m := range l {
				f, _, err := s.Open("alice", m.ID)
				if err != nil {
					t.Errorf("Open listed file: %v", err)
					return
				}
				f.Close()
			}
		}
	})
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("upload: %v", err)
		}
	}
	l, err := s.List("alice", 0)
	if err != nil || len(l) != n {
		t.Fatalf("List = %d, %v; want %d", len(l), err, n)
	}
	var total int64
	for _, m := range l {
		var i int
		fmt.Sscanf(m.Name, "f%d", &i)
		got, _ := readBack(t, s, "alice", m.ID)
		if !bytes.Equal(got, payloads[i]) {
			t.Errorf("%s: content differs", m.Name)
		}
		total += m.Size
	}
	if s.Used("alice") != total {
		t.Errorf("Used = %d, want %d", s.Used("alice"), total)
	}
}

func TestConcurrentQuota(t *testing.T) {
	for _, known := range []bool{true, false} {
		t.Run(fmt.Sprint("known=", known), func(t *testing.T) {
			dir := t.TempDir()
			const quota, size, n = 10_000, 3_000, 8
			s := openSpool(t, dir, Options{Quota: quota})
			var okCount, quotaCount atomic.Int64
			var wg sync.WaitGroup
			stop := make(chan struct{})
			var mon sync.WaitGroup
			mon.Go(func() {
				for {
					if u := s.Used("alice"); u > quota {
						t.Errorf("Used = %d > quota", u)
					}
					select {
					case <-stop:
						return
					default:
					}
				}
			})
			for range n {
				wg.Go(func() {
					data := make([]byte, size)
					declared := int64(size)
					if !known {
						declared = -1
					}
					u, err := s.Begin("bob", "alice", "f", declared)
					if err == nil {
						for p := data; len(p) > 0 && err == nil; p = p[min(len(p), 500):] {
							_, err = u.Write(p[:min(len(p), 500)])
						}
						if err == nil {
							_, err = u.Commit("")
						} else {
							u.Abort()
						}
					}
					switch {
					case err == nil:
						okCount.Add(1)
					case errors.Is(err, ErrQuota):
						quotaCount.Add(1)
					default:
						t.Errorf("unexpected error %v", err)
					}
				})
			}
			wg.Wait()
			close(stop)
			mon.Wait()
			ok := okCount.Load()
			if ok+quotaCount.Load() != n {
				t.Errorf("ok %d + quota %d != %d", ok, quotaCount.Load(), n)
			}
			if ok*size > quota || ok == 0 {
				t.Errorf("%d uploads of %d succeeded with quota %d", ok, size, quota)
			}
			if known && ok != quota/size {
				t.Errorf("known sizes: %d succeeded, want exactly %d", ok, quota/size)
			}
			l, _ := s.List("alice", 0)
			if int64(len(l)) != ok || s.Used("alice") != ok*size {
				t.Errorf("List %d, Used %d; want %d files, %d bytes", len(l), s.Used("alice"), ok, ok*size)
			}
			if e := tmpEntries(t, dir); len(e) != 0 {
				t.Errorf(".tmp not empty: %v", e)
			}
		})
	}
}

func TestRestartRecovery(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, Options{})
	m1 := put(t, s, "bob", "alice", "one", []byte("first"), 5)
	m2 := put(t, s, "carol", "alice", "two", []byte("second!"), -1)
	m3 := put(t, s, "bob", "dave", "three", []byte("x"), 1)
	// An upload in progress when the "crash" happens.
	inflight, _ := s.Begin("bob", "alice", "x", 10)
	inflight.Write([]byte("abc"))

	// Fake crash leftovers.
	os.WriteFile(filepath.Join(dir, ".tmp", "up-123"), []byte("partial"), 0o600)
	os.Mkdir(filepath.Join(dir, ".tmp", "subdir"), 0o700)
	orphanData := filepath.Join(dir, "alice", "0000000000000001deadbeef.data")
	orphanMeta := filepath.Join(dir, "alice", "0000000000000002deadbeef.json")
	os.WriteFile(orphanData, []byte("orphan"), 0o600)
	os.WriteFile(orphanMeta, []byte(`{"id":"0000000000000002deadbeef","size":3}`), 0o600)
	// A pair whose metadata lies about the size.
	badID := "0000000000000003deadbeef"
	os.WriteFile(filepath.Join(dir, "alice", badID+".data"), []byte("12"), 0o600)
	os.WriteFile(filepath.Join(dir, "alice", badID+".json"), []byte(`{"id":"`+badID+`","size":3}`), 0o600)
	// Something foreign that must be left alone.
	foreign := filepath.Join(dir, "alice", "README")
	os.WriteFile(foreign, []byte("keep"), 0o600)

	s2 := openSpool(t, dir, Options{})
	l, err := s2.List("alice", 0)
	if err != nil || len(l) != 2 || l[0] != m1 || l[1] != m2 {
		t.Fatalf("List after restart = %+v, %v", l, err)
	}
	if got, _ := readBack(t, s2, "dave", m3.ID); string(got) != "x" {
		t.Errorf("dave's file = %q", got)
	}
	if u := s2.Used("alice"); u != m1.Size+m2.Size {
		t.Errorf("Used(alice) = %d, want %d", u, m1.Size+m2.Size)
	}
	if u := s2.Used("dave"); u != 1 {
		t.Errorf("Used(dave) = %d, want 1", u)
	}
	if e := tmpEntries(t, dir); len(e) != 0 {
		t.Errorf(".tmp not cleaned: %v", e)
	}
	for _, p := range []string{orphanData, orphanMeta, filepath.Join(dir, "alice", badID+".data"), filepath.Join(dir, "alice", badID+".json")} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived recovery: %v", filepath.Base(p), err)
		}
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Errorf("foreign file removed: %v", err)
	}
	// New ids still sort after the recovered ones even with an old clock.
	s3 := openSpool(t, dir, Options{Now: func() time.Time { return time.Unix(0, 5) }})
	m4 := put(t, s3, "bob", "alice", "late", []byte("z"), 1)
	if l, _ := s3.List("alice", 0); len(l) != 3 || l[2].ID != m4.ID {
		t.Errorf("new file not last: %+v", l)
	}
}

func TestRemove(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, Options{})
	m1 := put(t, s, "bob", "alice", "one", []byte("first"), 5)
	m2 := put(t, s, "bob", "alice", "two", []byte("second"), 6)
	if err := s.Remove("ALICE", m1.ID); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	l, _ := s.List("alice", 0)
	if len(l) != 1 || l[0] != m2 {
		t.Errorf("List after Remove = %+v", l)
	}
	if s.Used("alice") != 6 {
		t.Errorf("Used = %d, want 6", s.Used("alice"))
	}
	if err := s.Remove("alice", m1.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Remove = %v, want ErrNotFound", err)
	}
	if _, _, err := s.Open("alice", m1.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open removed = %v, want ErrNotFound", err)
	}
	if err := s.Remove("bob", m2.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove from wrong queue = %v, want ErrNotFound", err)
	}
	for _, suffix := range []string{".data", ".json"} {
		if _, err := os.Stat(filepath.Join(dir, "alice", m1.ID+suffix)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still on disk", suffix)
		}
	}
	if s.Used("alice") != 6 {
		t.Errorf("Used after failed Remove = %d, want 6", s.Used("alice"))
	}

	// Concurrent Removes of one id: exactly one succeeds, bytes released once.
	m3 := put(t, s, "bob", "alice", "three", make([]byte, 1000), 1000)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			switch err := s.Remove("alice", m3.ID); {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, ErrNotFound):
				t.Errorf("Remove: %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 || s.Used("alice") != 6 {
		t.Errorf("wins %d, Used %d; want 1, 6", wins.Load(), s.Used("alice"))
	}
}

func TestHostileIDs(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, Options{})
	m := put(t, s, "bob", "alice", "one", []byte("first"), 5)
	// Sentinels outside alice's queue that a path injection would reach.
	sentinels := []string{
		filepath.Join(dir, "x.json"), filepath.Join(dir, "x.data"),
		filepath.Join(dir, "alice", "a", "b.json"), filepath.Join(dir, "alice", "a", "b.data"),
	}
	os.Mkdir(filepath.Join(dir, "alice", "a"), 0o700)
	for _, p := range sentinels {
		os.WriteFile(p, []byte(`{"id":"x","size":1}`), 0o600)
	}
	bad := []string{"../x", "", "a/b", "..", "/etc/passwd", m.ID + "/", strings.ToUpper(m.ID),
		m.ID[:23], m.ID + "0", "../alice/" + m.ID, m.ID[:23] + "\x00", m.ID[:22] + "/."}
	for _, id := range bad {
		if f, _, err := s.Open("alice", id); !errors.Is(err, ErrNotFound) {
			if f != nil {
				f.Close()
			}
			t.Errorf("Open(%q) = %v, want ErrNotFound", id, err)
		}
		if err := s.Remove("alice", id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Remove(%q) = %v, want ErrNotFound", id, err)
		}
	}
	if err := s.Remove("../alice", m.ID); !errors.Is(err, ErrBadRecipient) {
		t.Errorf("Remove(../alice) = %v", err)
	}
	for _, p := range sentinels {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("sentinel %s touched: %v", p, err)
		}
	}
	if l, _ := s.List("alice", 0); len(l) != 1 || s.Used("alice") != 5 {
		t.Errorf("queue changed: %v, used %d", l, s.Used("alice"))
	}
}

func TestBadRecipients(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, Options{})
	bad := []string{"../x", "a/b", "", strings.Repeat("a", 100), strings.Repeat("a", 16), ".tmp", ".", "..",
		"al ice", "alice\x00", "élise", "a-b", `a\b`, "quit", "New_Target"}
	for _, r := range bad {
		if _, err := s.Begin("bob", r, "f", 1); !errors.Is(err, ErrBadRecipient) {
			t.Errorf("Begin to %q = %v", r, err)
		}
		if _, err := s.Begin(r, "alice", "f", 1); !errors.Is(err, ErrBadRecipient) {
			t.Errorf("Begin from %q = %v", r, err)
		}
		if _, err := s.List(r, 0); !errors.Is(err, ErrBadRecipient) {
			t.Errorf("List(%q) = %v", r, err)
		}
		if _, _, err := s.Open(r, "0000000000000001deadbeef"); !errors.Is(err, ErrBadRecipient) {
			t.Errorf("Open(%q) = %v", r, err)
		}
		if err := s.Remove(r, "0000000000000001deadbeef"); !errors.Is(err, ErrBadRecipient) {
			t.Errorf("Remove(%q) = %v", r, err)
		}
		if s.Used(r) != 0 {
			t.Errorf("Used(%q) != 0", r)
		}
	}
	for _, r := range []string{"a", strings.Repeat("Z", 15), "User_01"} {
		if u, err := s.Begin(r, r, "f", 0); err != nil {
			t.Errorf("Begin(%q) = %v", r, err)
		} else {
			u.Abort()
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("spool root has %d entries, want only .tmp", len(ents))
	}
	if e := tmpEntries(t, dir); len(e) != 0 {
		t.Errorf(".tmp not empty: %v", e)
	}
}

func TestOpenOptions(t *testing.T) {
	if _, err := Open(t.TempDir(), Options{Quota: -1}); err == nil {
		t.Error("negative quota accepted")
	}
	dir := filepath.Join(t.TempDir(), "nested", "spool")
	s := openSpool(t, dir, Options{})
	if s.maxFile != DefaultMaxFileSize || s.quota != DefaultQuota || s.maxFiles != DefaultMaxQueuedFiles ||
		s.maxTotal != 0 || s.minFree != DefaultMinFreeDisk || s.MaxQueuedFiles() != DefaultMaxQueuedFiles {
		t.Errorf("defaults not applied: %d %d %d %d %d", s.maxFile, s.quota, s.maxFiles, s.maxTotal, s.minFree)
	}
	off := openSpool(t, t.TempDir(), Options{MaxQueuedFiles: NoLimit, MinFreeDisk: NoLimit, MaxTotalBytes: -5})
	if off.maxFiles != 0 || off.minFree != 0 || off.maxTotal != 0 || off.MaxQueuedFiles() != 0 {
		t.Errorf("NoLimit not applied: %d %d %d", off.maxFiles, off.minFree, off.maxTotal)
	}
	if _, err := os.Stat(filepath.Join(dir, ".tmp")); err != nil {
		t.Errorf(".tmp not created: %v", err)
	}
	if _, err := s.Begin("bob", "alice", "x", DefaultMaxFileSize+1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("default max not enforced: %v", err)
	}
}

// TestStoredNames checks that the spool stores the name wire.CleanFileName
// makes of a client's file name, cut to MaxNameBytes.
func TestStoredNames(t *testing.T) {
	s := openSpool(t, t.TempDir(), Options{})
	cases := []struct{ in, want string }{
		{"../../etc/passwd", "passwd"},
		{"..", "file"},
		{"", "file"},
		{`C:\x\evil.exe`, "evil.exe"},
		{"résumé 日本.pdf", "résumé 日本.pdf"},
		{"evil\u202Etxt.exe", "eviltxt.exe"},
		{"red\x1b[31mname", "red[31mname"},
		{"  . hidden .  ", "hidden"},
		{"bad\xffutf8", "bad\uFFFDutf8"},
		{"nul\x00byte\n", "nulbyte"},
		{"line\u2028sep", "linesep"},
		{strings.Repeat("é", 500) + ".pdf", wire.CleanFileName(strings.Repeat("é", 500)+".pdf", MaxNameBytes)},
		{strings.Repeat("x", 1000), strings.Repeat("x", MaxNameBytes)},
	}
	for _, c := range cases {
		m := put(t, s, "bob", "alice", c.in, nil, 0)
		if m.Name != c.want {
			t.Errorf("stored name of %q = %q, want %q", c.in, m.Name, c.want)
		}
		if len(m.Name) > MaxNameBytes || !utf8.ValidString(m.Name) {
			t.Errorf("stored name of %q: %d bytes, valid UTF-8 %v", c.in, len(m.Name), utf8.ValidString(m.Name))
		}
		if l, _ := s.List("alice", 0); l[len(l)-1].Name != m.Name {
			t.Errorf("listed name %q, committed %q", l[len(l)-1].Name, m.Name)
		}
	}
	if got := put(t, s, "bob", "alice", strings.Repeat("é", 500)+".pdf", nil, 0).Name; !strings.HasSuffix(got, "é.pdf") {
		t.Errorf("extension lost in the cut: %q", got)
	}
}

func TestRemoveAll(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, Options{})
	for i := range 3 {
		u, err := s.Begin("bob", "alice", fmt.Sprintf("f%d", i), 3)
		if err != nil {
			t.Fatal(err)
		}
		u.Write([]byte("abc"))
		if _, err := u.Commit(""); err != nil {
			t.Fatal(err)
		}
	}
	keep, _ := s.Begin("alice", "bob", "keep", 0)
	if _, err := keep.Commit(""); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RemoveAll("Alice"); err != nil || n != 3 {
		t.Fatalf("RemoveAll = %d, %v", n, err)
	}
	if m, _ := s.List("alice", 0); len(m) != 0 || s.Used("alice") != 0 || s.Queued("alice") != 0 {
		t.Fatalf("left for alice: %d files, %d bytes", len(m), s.Used("alice"))
	}
	if m, _ := s.List("bob", 0); len(m) != 1 {
		t.Fatalf("bob's queue touched: %d files", len(m))
	}
}
