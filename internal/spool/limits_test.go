package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFileCountLimit checks the per-recipient limit on the number of
// files: committed files and uploads in progress count, of either form
// (declared size or not), other recipients are not affected, and Remove
// and Abort give the place back.
func TestFileCountLimit(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, Options{MaxQueuedFiles: 5})
	var ids []string
	for i := range 3 {
		ids = append(ids, put(t, s, "bob", "alice", fmt.Sprint(i), nil, 0).ID)
	}
	// Two uploads in progress, one of unknown size, fill the queue.
	held, err := s.Begin("bob", "alice", "held", 10)
	if err != nil {
		t.Fatal(err)
	}
	unknown, err := s.Begin("carol", "Alice", "unknown", -1)
	if err != nil {
		t.Fatal(err)
	}
	if q := s.Queued("alice"); q != 5 {
		t.Fatalf("Queued = %d, want 5", q)
	}
	for _, size := range []int64{0, 1, -1} {
		if _, err := s.Begin("dave", "ALICE", "x", size); !errors.Is(err, ErrTooManyFiles) {
			t.Errorf("Begin(size %d) on a full queue = %v, want ErrTooManyFiles", size, err)
		}
	}
	if s.Used("alice") != 10 || s.Queued("alice") != 5 {
		t.Errorf("a refused Begin changed the accounting: %d bytes, %d files", s.Used("alice"), s.Queued("alice"))
	}
	// Another recipient is not affected.
	put(t, s, "bob", "carol", "c", []byte("c"), 1)

	// Abort gives a place back; the next upload takes it.
	if err := unknown.Abort(); err != nil {
		t.Fatal(err)
	}
	put(t, s, "bob", "alice", "after-abort", []byte("ab"), -1)
	if _, err := s.Begin("bob", "alice", "x", 0); !errors.Is(err, ErrTooManyFiles) {
		t.Errorf("Begin = %v, want ErrTooManyFiles", err)
	}
	// A held upload commits into its reserved place.
	held.Write([]byte("0123456789"))
	if _, err := held.Commit(""); err != nil {
		t.Fatalf("Commit of a reserved upload: %v", err)
	}
	if s.Queued("alice") != 5 {
		t.Errorf("Queued = %d, want 5", s.Queued("alice"))
	}
	// Remove gives a place back.
	if err := s.Remove("alice", ids[0]); err != nil {
		t.Fatal(err)
	}
	put(t, s, "bob", "alice", "after-remove", nil, 0)
	if _, err := s.Begin("bob", "alice", "x", 0); !errors.Is(err, ErrTooManyFiles) {
		t.Errorf("Begin = %v, want ErrTooManyFiles", err)
	}
	// The count survives a restart.
	s2 := openSpool(t, dir, Options{MaxQueuedFiles: 5})
	if s2.Queued("alice") != 5 || s2.Queued("carol") != 1 {
		t.Errorf("after reopen: Queued alice %d carol %d, want 5 and 1", s2.Queued("alice"), s2.Queued("carol"))
	}
	if _, err := s2.Begin("bob", "alice", "x", 0); !errors.Is(err, ErrTooManyFiles) {
		t.Errorf("Begin after reopen = %v, want ErrTooManyFiles", err)
	}
	if e := tmpEntries(t, dir); len(e) != 0 {
		t.Errorf(".tmp not empty: %v", e)
	}
}

// TestDefaultFileCountLimit sends 2000 empty files to one recipient with
// the default options: the first DefaultMaxQueuedFiles are queued, every
// later one is refused with ErrTooManyFiles and leaves nothing behind.
func TestDefaultFileCountLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("commits 1000 files")
	}
	dir := t.TempDir()
	s := openSpool(t, dir, Options{})
	queued, refused := 0, 0
	for i := range 2000 {
		u, err := s.Begin("mallory", "alice", fmt.Sprint(i), 0)
		if errors.Is(err, ErrTooManyFiles) {
			refused++
			continue
		}
		if err != nil {
			t.Fatalf("Begin %d: %v", i, err)
		}
		if _, err := u.Commit(""); err != nil {
			t.Fatalf("Commit %d: %v", i, err)
		}
		queued++
	}
	if queued != DefaultMaxQueuedFiles || refused != 2000-DefaultMaxQueuedFiles {
		t.Errorf("queued %d, refused %d; want %d and %d", queued, refused, DefaultMaxQueuedFiles, 2000-DefaultMaxQueuedFiles)
	}
	if l, err := s.List("alice", 0); err != nil || len(l) != DefaultMaxQueuedFiles {
		t.Errorf("List = %d files, %v", len(l), err)
	}
	if e := tmpEntries(t, dir); len(e) != 0 {
		t.Errorf(".tmp holds %d entries", len(e))
	}
}

// TestConcurrentFileCount starts many uploads to one recipient at the same
// instant, all held open until every Begin has answered: exactly the limit
// get through, so concurrent uploads cannot overshoot it.
func TestConcurrentFileCount(t *testing.T) {
	for _, known := range []bool{true, false} {
		t.Run(fmt.Sprint("known=", known), func(t *testing.T) {
			dir := t.TempDir()
			const limit, n = 7, 40
			s := openSpool(t, dir, Options{MaxQueuedFiles: limit})
			size := int64(3)
			if !known {
				size = -1
			}
			var begun, refused atomic.Int32
			var answered, wg sync.WaitGroup
			release := make(chan struct{})
			start := make(chan struct{})
			answered.Add(n)
			for i := range n {
				wg.Go(func() {
					<-start
					u, err := s.Begin("bob", "alice", fmt.Sprint(i), size)
					answered.Done()
					if err != nil {
						if !errors.Is(err, ErrTooManyFiles) {
							t.Errorf("Begin: %v", err)
						}
						refused.Add(1)
						return
					}
					begun.Add(1)
					<-release
					if _, err := u.Write([]byte("abc")); err != nil {
						t.Errorf("Write: %v", err)
					}
					if _, err := u.Commit(""); err != nil {
						t.Errorf("Commit: %v", err)
					}
				})
			}
			close(start)
			answered.Wait()
			if s.Queued("alice") > limit {
				t.Errorf("Queued = %d during uploads, limit %d", s.Queued("alice"), limit)
			}
			close(release)
			wg.Wait()
			if begun.Load() != limit || refused.Load() != n-limit {
				t.Errorf("%d begun, %d refused; want %d and %d", begun.Load(), refused.Load(), limit, n-limit)
			}
			if l, _ := s.List("alice", 0); len(l) != limit || s.Queued("alice") != limit || s.Used("alice") != 3*limit {
				t.Errorf("List %d, Queued %d, Used %d", len(l), s.Queued("alice"), s.Used("alice"))
			}
		})
	}
}

// TestSpoolMax checks the limit on the bytes of the whole spool: it spans
// recipients, holds uploads in progress (declared at Begin, unknown as data
// arrives) and is given back by Abort and Remove.
func TestSpoolMax(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir, Options{MaxTotalBytes: 300})
	a := put(t, s, "bob", "alice", "a", make([]byte, 100), 100)
	put(t, s, "bob", "carol", "c", make([]byte, 100), -1)
	held, err := s.Begin("bob", "dave", "d", 60)
	if err != nil {
		t.Fatal(err)
	}
	if s.TotalBytes() != 260 {
		t.Errorf("TotalBytes = %d, want 260", s.TotalBytes())
	}
	if _, err := s.Begin("bob", "erin", "e", 41); !errors.Is(err, ErrSpoolFull) {
		t.Errorf("Begin(41) = %v, want ErrSpoolFull", err)
	}
	// Data of unknown size is refused once it would overshoot.
	u, err := s.Begin("bob", "erin", "e", -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Write(make([]byte, 40)); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Write(make([]byte, 1)); !errors.Is(err, ErrSpoolFull) {
		t.Errorf("Write past the spool's limit = %v, want ErrSpoolFull", err)
	}
	if _, err := u.Commit(""); !errors.Is(err, ErrSpoolFull) {
		t.Errorf("Commit after ErrSpoolFull = %v", err)
	}
	if s.TotalBytes() != 260 {
		t.Errorf("TotalBytes after refused upload = %d, want 260", s.TotalBytes())
	}
	held.Abort()
	assertNothingQueued(t, s, dir, "erin")
	put(t, s, "bob", "erin", "e", make([]byte, 100), 100)
	if _, err := s.Begin("bob", "erin", "e", 1); !errors.Is(err, ErrSpoolFull) {
		t.Errorf("Begin on a full spool = %v, want ErrSpoolFull", err)
	}
	if err := s.Remove("alice", a.ID); err != nil {
		t.Fatal(err)
	}
	put(t, s, "bob", "erin", "e2", make([]byte, 100), 100)
	// The total survives a restart.
	s2 := openSpool(t, dir, Options{MaxTotalBytes: 300})
	if s2.TotalBytes() != 300 {
		t.Errorf("TotalBytes after reopen = %d, want 300", s2.TotalBytes())
	}
	if _, err := s2.Begin("bob", "alice", "x", 1); !errors.Is(err, ErrSpoolFull) {
		t.Errorf("Begin after reopen = %v, want ErrSpoolFull", err)
	}
}

// TestConcurrentSpoolMax races uploads of unknown size to many recipients
// against the spool's limit: the total never exceeds it.
func TestConcurrentSpoolMax(t *testing.T) {
	dir := t.TempDir()
	const limit, size, n = 10_000, 3_000, 12
	s := openSpool(t, dir, Options{MaxTotalBytes: limit})
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			u, err := s.Begin("bob", fmt.Sprintf("user%d", i), "f", -1)
			if err != nil {
				t.Errorf("Begin: %v", err)
				return
			}
			for range size / 500 {
				if _, err = u.Write(make([]byte, 500)); err != nil {
					break
				}
				if s.TotalBytes() > limit {
					t.Errorf("TotalBytes %d > %d", s.TotalBytes(), limit)
				}
			}
			if err == nil {
				_, err = u.Commit("")
			}
			switch {
			case err == nil:
				ok.Add(1)
			case !errors.Is(err, ErrSpoolFull):
				t.Errorf("upload: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() == 0 || ok.Load()*size > limit || s.TotalBytes() != ok.Load()*size {
		t.Errorf("%d uploads of %d bytes committed, TotalBytes %d, limit %d", ok.Load(), size, s.TotalBytes(), limit)
	}
}

// TestDiskFloor checks the free-disk floor against the real free space of
// the test's file system (statfs): the floor is set some way below it, and
// declared sizes that would cross it are refused, counting what uploads in
// progress declared and have not written yet.
func TestDiskFloor(t *testing.T) {
	dir := t.TempDir()
	free, err := diskFree(dir)
	if err != nil {
		t.Fatalf("statfs: %v", err)
	}
	const margin = 512 << 20
	if free < 2*margin {
		t.Fatalf("the test needs %d MiB free in %s, there are %d MiB", 2*margin>>20, dir, free>>20)
	}
	// The floor leaves room for 512 MiB of uploads; other processes may
	// write or free a little meanwhile, so the sizes keep ~100 MiB away.
	s := openSpool(t, dir, Options{MinFreeDisk: free - margin, MaxFileSize: 1 << 40, Quota: 1 << 40})
	if _, err := s.Begin("bob", "alice", "big", 1<<30); !errors.Is(err, ErrStorageFull) {
		t.Errorf("Begin(1 GiB) = %v, want ErrStorageFull", err)
	}
	a, err := s.Begin("bob", "alice", "a", 200<<20)
	if err != nil {
		t.Fatalf("Begin(200 MiB): %v", err)
	}
	b, err := s.Begin("bob", "carol", "b", 200<<20)
	if err != nil {
		t.Fatalf("second Begin(200 MiB): %v", err)
	}
	// Declared sizes are checked whole but held only as data arrives: a
	// third 200 MiB upload is taken while the first two have sent nothing,
	// so uploads that declare much and send little cannot shut others out.
	c, err := s.Begin("bob", "dave", "c", 200<<20)
	if err != nil {
		t.Fatalf("third Begin(200 MiB) while nothing is written: %v", err)
	}
	chunk := make([]byte, 1<<20)
	for range 8 {
		if _, err := a.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	unwritten := s.unwritten
	s.mu.Unlock()
	if unwritten > 3*reserveChunk {
		t.Errorf("%d bytes promised to three uploads that sent 8 MiB, want at most %d", unwritten, 3*reserveChunk)
	}
	a.Abort()
	b.Abort()
	c.Abort()
	s.mu.Lock()
	unwritten = s.unwritten
	s.mu.Unlock()
	if unwritten != 0 {
		t.Errorf("unwritten = %d after every upload ended", unwritten)
	}
	if e := tmpEntries(t, dir); len(e) != 0 {
		t.Errorf(".tmp not empty: %v", e)
	}

	// Data of unknown size is checked as it arrives: raise the floor above
	// the free space in the middle of an upload.
	u, err := s.Begin("bob", "erin", "e", -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Write(chunk); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.minFree = free + 1<<40
	s.mu.Unlock()
	if _, err := u.Write(chunk); !errors.Is(err, ErrStorageFull) {
		t.Errorf("Write under the floor = %v, want ErrStorageFull", err)
	}
	assertNothingQueued(t, s, dir, "erin")
	if _, err := s.Begin("bob", "erin", "e", 0); !errors.Is(err, ErrStorageFull) {
		t.Errorf("Begin under the floor = %v, want ErrStorageFull", err)
	}
	// With no floor, the same spool takes files again.
	off := openSpool(t, dir, Options{MinFreeDisk: NoLimit})
	put(t, off, "bob", "erin", "e", []byte("x"), -1)
}

// TestListMax checks that List returns the oldest files up to the maximum
// and reads only metadata: a file whose data is gone is still listed (List
// did not open it) and Open reports it as not found.
func TestListMax(t *testing.T) {
	dir := t.TempDir()
	var tick atomic.Int64
	s := openSpool(t, dir, Options{Now: func() time.Time { return time.Unix(1_700_000_000+tick.Add(1), 0) }})
	var ids []string
	for i := range 10 {
		ids = append(ids, put(t, s, "bob", "alice", fmt.Sprint(i), []byte{byte(i)}, 1).ID)
	}
	for _, c := range []struct{ max, want int }{{3, 3}, {1, 1}, {10, 10}, {100, 10}, {0, 10}, {-1, 10}} {
		l, err := s.List("alice", c.max)
		if err != nil || len(l) != c.want {
			t.Fatalf("List(max %d) = %d files, %v; want %d", c.max, len(l), err, c.want)
		}
		for i, m := range l {
			if m.ID != ids[i] {
				t.Errorf("List(max %d)[%d] = %s, want %s (oldest first)", c.max, i, m.ID, ids[i])
			}
		}
	}
	if err := os.Remove(filepath.Join(dir, "alice", ids[0]+".data")); err != nil {
		t.Fatal(err)
	}
	l, _ := s.List("alice", 2)
	if len(l) != 2 || l[0].ID != ids[0] {
		t.Errorf("List after the data went = %v", l)
	}
	if _, _, err := s.Open("alice", ids[0]); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open of a file without data = %v, want ErrNotFound", err)
	}
	got, _ := readBack(t, s, "alice", ids[1])
	if len(got) != 1 || got[0] != 1 {
		t.Errorf("Open(%s) = %v", ids[1], got)
	}
}

// TestUnknownSizeReservesAhead checks the accounting of an upload of
// unknown size: it holds up to reserveChunk bytes ahead of its data, which
// count against the free space too, and gives back the excess at Commit
// and everything at Abort.
func TestUnknownSizeReservesAhead(t *testing.T) {
	s := openSpool(t, t.TempDir(), Options{})
	unwritten := func() int64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.unwritten
	}
	u, err := s.Begin("bob", "alice", "x", -1)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if _, err := u.Write([]byte("0123456789")); err != nil {
			t.Fatal(err)
		}
	}
	if s.Used("alice") != reserveChunk || unwritten() != reserveChunk-1000 {
		t.Errorf("after 1000 bytes: Used %d, unwritten %d; want %d and %d", s.Used("alice"), unwritten(), reserveChunk, reserveChunk-1000)
	}
	// A write across the reserved chunk reserves the next one.
	if _, err := u.Write(make([]byte, reserveChunk)); err != nil {
		t.Fatal(err)
	}
	if s.Used("alice") != 2*reserveChunk || unwritten() != reserveChunk-1000 {
		t.Errorf("Used = %d, unwritten %d; want %d and %d", s.Used("alice"), unwritten(), 2*reserveChunk, reserveChunk-1000)
	}
	if _, err := u.Commit(""); err != nil {
		t.Fatal(err)
	}
	if s.Used("alice") != reserveChunk+1000 || s.TotalBytes() != reserveChunk+1000 || unwritten() != 0 {
		t.Errorf("after Commit: Used %d, TotalBytes %d, unwritten %d", s.Used("alice"), s.TotalBytes(), unwritten())
	}
	u, _ = s.Begin("bob", "carol", "x", -1)
	u.Write([]byte("abc"))
	u.Abort()
	if s.Used("carol") != 0 || s.Queued("carol") != 0 || unwritten() != 0 {
		t.Errorf("after Abort: Used %d, Queued %d, unwritten %d", s.Used("carol"), s.Queued("carol"), unwritten())
	}
}
