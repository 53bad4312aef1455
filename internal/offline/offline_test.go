package offline

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"sslmessager/internal/wire"
)

func open(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustAppend(t *testing.T, s *Store, to, from, text string) Message {
	t.Helper()
	m, err := s.Append(to, from, text)
	if err != nil {
		t.Fatalf("Append(%s, %s, %.20q): %v", to, from, text, err)
	}
	return m
}

func readAll(t *testing.T, s *Store, user string, after uint64) []Message {
	t.Helper()
	var all []Message
	for {
		ms, err := s.Read(user, after, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 0 {
			return all
		}
		all = append(all, ms...)
		after = ms[len(ms)-1].Seq
	}
}

func texts(ms []Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Text)
	}
	return out
}

func TestAppendReadAckAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	clock := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	s := open(t, dir, Options{Now: func() time.Time { return clock }})
	var sent []Message
	for i := range 20 {
		// The same time for all: seqs still grow.
		sent = append(sent, mustAppend(t, s, "Carol", "alice", fmt.Sprintf("m%d\nline\x00\xff", i)))
	}
	mustAppend(t, s, "dave", "alice", "for dave")
	for i := 1; i < len(sent); i++ {
		if sent[i].Seq <= sent[i-1].Seq {
			t.Fatalf("seq %d after %d", sent[i].Seq, sent[i-1].Seq)
		}
	}
	if sent[0].Seq != uint64(clock.UnixMicro()) || !sent[0].Sent.Equal(clock) {
		t.Errorf("first message %+v", sent[0])
	}

	s = open(t, dir, Options{}) // as after a restart
	got := readAll(t, s, "carol", 0)
	if len(got) != 20 {
		t.Fatalf("read %d messages, want 20", len(got))
	}
	for i, m := range got {
		if m != sent[i] {
			t.Fatalf("message %d: %+v, want %+v", i, m, sent[i])
		}
	}
	if err := s.Ack("CAROL", sent[11].Seq); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Pending("carol"); n != 8 {
		t.Fatalf("pending %d after acking 12", n)
	}

	s = open(t, dir, Options{})
	got = readAll(t, s, "carol", 0)
	if len(got) != 8 || got[0] != sent[12] {
		t.Fatalf("after ack and reopen: %d messages from %v", len(got), texts(got))
	}
	// Reading after a seq skips what is at or below it.
	if got := readAll(t, s, "carol", sent[15].Seq); len(got) != 4 || got[0] != sent[16] {
		t.Fatalf("read after seq 15: %v", texts(got))
	}
	// Acking everything (and beyond) removes the files.
	if err := s.Ack("carol", sent[19].Seq+100); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"carol.log", "carol.ack"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there: %v", f, err)
		}
	}
	s = open(t, dir, Options{})
	if got := readAll(t, s, "carol", 0); len(got) != 0 {
		t.Fatalf("delivered messages came back: %v", texts(got))
	}
	if got := readAll(t, s, "dave", 0); len(got) != 1 || got[0].Text != "for dave" {
		t.Fatalf("dave's queue: %v", texts(got))
	}
}

func TestSeqGrowsWithinAStoreWhenTheClockGoesBack(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := open(t, t.TempDir(), Options{Now: func() time.Time { return now }})
	a := mustAppend(t, s, "bob", "alice", "1")
	if err := s.Ack("bob", a.Seq); err != nil {
		t.Fatal(err)
	}
	now = now.Add(-time.Hour)
	if b := mustAppend(t, s, "bob", "alice", "2"); b.Seq <= a.Seq {
		t.Fatalf("seq %d after %d", b.Seq, a.Seq)
	}
}

func TestPerRecipientBound(t *testing.T) {
	s := open(t, t.TempDir(), Options{MaxPerRecipient: 3})
	for i := range 3 {
		mustAppend(t, s, "bob", "alice", fmt.Sprint(i))
	}
	if _, err := s.Append("bob", "alice", "4th"); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("4th message: %v, want ErrQueueFull", err)
	}
	mustAppend(t, s, "carol", "alice", "another recipient")
	// Delivering one makes room for one.
	first := readAll(t, s, "bob", 0)[0]
	if err := s.Ack("bob", first.Seq); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "bob", "alice", "4th")
	if _, err := s.Append("bob", "alice", "5th"); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("5th message: %v, want ErrQueueFull", err)
	}
	if got := texts(readAll(t, s, "bob", 0)); strings.Join(got, ",") != "1,2,4th" {
		t.Fatalf("bob's queue %v", got)
	}
	// No limit.
	s = open(t, t.TempDir(), Options{MaxPerRecipient: NoLimit})
	for i := range 1100 {
		mustAppend(t, s, "bob", "alice", fmt.Sprint(i))
	}
}

func TestTotalBound(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{MaxTotalBytes: 420})
	text := strings.Repeat("x", 100)
	n := 0
	for ; n < 10; n++ {
		if _, err := s.Append(fmt.Sprint("u", n%3), "alice", text); err != nil {
			if !errors.Is(err, ErrStoreFull) {
				t.Fatal(err)
			}
			break
		}
	}
	if n != 3 || s.Bytes() > 420 {
		t.Fatalf("%d messages of 100 bytes fit in 420 (%d bytes stored)", n, s.Bytes())
	}
	// (Each takes 130 bytes and a new log 9 more: 417 in all.)
	// Reopened, the store counts what is on disk.
	s = open(t, dir, Options{MaxTotalBytes: 420})
	if _, err := s.Append("u9", "alice", text); !errors.Is(err, ErrStoreFull) {
		t.Fatalf("after reopen: %v, want ErrStoreFull", err)
	}
	// Delivering frees room.
	ms := readAll(t, s, "u0", 0)
	if err := s.Ack("u0", ms[len(ms)-1].Seq); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "u9", "alice", text)
}

func TestInvalid(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	for _, c := range [][3]string{
		{"../etc", "alice", "x"}, {"", "alice", "x"}, {"bob", "", "x"}, {"bob", "al ice", "x"},
		{"bob", "alice", strings.Repeat("y", wire.MaxTextRunes+1)},
	} {
		if _, err := s.Append(c[0], c[1], c[2]); !errors.Is(err, ErrInvalid) {
			t.Errorf("Append(%q, %q, %d bytes) = %v, want ErrInvalid", c[0], c[1], len(c[2]), err)
		}
	}
	mustAppend(t, s, "bob", "alice", strings.Repeat("日", wire.MaxTextRunes))
}

// TestTornTail cuts a log inside its last record at every position, as a
// crash during the append would, and checks that the record is dropped,
// the others kept, and the next append lands cleanly after them.
func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	mustAppend(t, s, "bob", "alice", "one")
	mustAppend(t, s, "bob", "alice", "two")
	path := filepath.Join(dir, "bob.log")
	whole, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "bob", "alice", "three, torn")
	full, _ := os.ReadFile(path)
	for cut := len(whole) + 1; cut < len(full); cut++ {
		if err := os.WriteFile(path, full[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		s := open(t, dir, Options{})
		if got := strings.Join(texts(readAll(t, s, "bob", 0)), ","); got != "one,two" {
			t.Fatalf("cut at %d: %q", cut, got)
		}
		mustAppend(t, s, "bob", "alice", "after")
		s = open(t, dir, Options{})
		if got := strings.Join(texts(readAll(t, s, "bob", 0)), ","); got != "one,two,after" {
			t.Fatalf("cut at %d, then an append: %q", cut, got)
		}
	}
	// A flipped byte in the last record fails its checksum: torn too.
	damaged := append([]byte(nil), full...)
	damaged[len(damaged)-2] ^= 0x20
	os.WriteFile(path, damaged, 0o600)
	if got := strings.Join(texts(readAll(t, open(t, dir, Options{}), "bob", 0)), ","); got != "one,two" {
		t.Fatalf("damaged last record: %q", got)
	}
	// A log cut inside its first line holds nothing.
	os.WriteFile(path, []byte(fileMagic[:4]), 0o600)
	s = open(t, dir, Options{})
	if got := readAll(t, s, "bob", 0); len(got) != 0 {
		t.Fatalf("log cut in its magic: %v", texts(got))
	}
	mustAppend(t, s, "bob", "alice", "fresh")
}

// TestDamageInTheMiddle: a damaged record followed by more than a record's
// worth of data is no torn append; that queue fails with an error naming
// the file, and nothing in it is dropped.
func TestDamageInTheMiddle(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	big := strings.Repeat("z", wire.MaxTextRunes)
	for range 6 {
		mustAppend(t, s, "bob", "alice", big)
	}
	mustAppend(t, s, "carol", "alice", "fine")
	path := filepath.Join(dir, "bob.log")
	b, _ := os.ReadFile(path)
	b[len(fileMagic)+20] ^= 1 // inside the first record
	os.WriteFile(path, b, 0o600)
	s = open(t, dir, Options{})
	_, err := s.Read("bob", 0, 10)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Read of a damaged log: %v", err)
	}
	if _, err := s.Append("bob", "alice", "x"); err == nil {
		t.Fatal("Append to a damaged log succeeded")
	}
	if after, _ := os.ReadFile(path); len(after) != len(b) {
		t.Fatalf("the damaged log changed: %d bytes, was %d", len(after), len(b))
	}
	if got := readAll(t, s, "carol", 0); len(got) != 1 {
		t.Fatal("another recipient's queue suffered")
	}
}

// TestConcurrentAppends appends from many goroutines to a few recipients
// while another delivers, then checks from a fresh store that every
// message not delivered is there once, in the order of its seq.
func TestConcurrentAppends(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{MaxPerRecipient: NoLimit})
	const writers, each = 8, 40
	var wg sync.WaitGroup
	seqs := make([][]Message, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				m, err := s.Append(fmt.Sprint("u", i%3), fmt.Sprint("w", w), fmt.Sprint(w, "-", i))
				if err != nil {
					t.Error(err)
					return
				}
				seqs[w] = append(seqs[w], m)
			}
		}()
	}
	// A reader delivers u0's messages while they come in.
	var delivered []Message
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		var after uint64
		for {
			ms, err := s.Read("u0", after, 5)
			if err != nil {
				t.Error(err)
				return
			}
			if len(ms) > 0 {
				after = ms[len(ms)-1].Seq
				if err := s.Ack("u0", after); err != nil {
					t.Error(err)
					return
				}
				delivered = append(delivered, ms...)
				continue
			}
			select {
			case <-stop:
				return
			default:
				time.Sleep(time.Millisecond)
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-readerDone

	s2 := open(t, dir, Options{})
	got := map[string]int{}
	for _, m := range delivered {
		got[m.Text]++
	}
	for _, u := range []string{"u0", "u1", "u2"} {
		ms := readAll(t, s2, u, 0)
		for i, m := range ms {
			got[m.Text]++
			if i > 0 && m.Seq <= ms[i-1].Seq {
				t.Fatalf("%s: seq %d after %d", u, m.Seq, ms[i-1].Seq)
			}
		}
	}
	for w := range writers {
		for i := range each {
			if n := got[fmt.Sprint(w, "-", i)]; n != 1 {
				t.Fatalf("message %d-%d seen %d times", w, i, n)
			}
		}
		// Each writer's messages to one recipient keep their order.
		for i := 3; i < len(seqs[w]); i++ {
			if seqs[w][i].Seq <= seqs[w][i-3].Seq {
				t.Fatalf("writer %d: seqs not growing", w)
			}
		}
	}
	if s.Bytes() != s2.Bytes() {
		t.Errorf("bytes counted %d, on disk %d", s.Bytes(), s2.Bytes())
	}
}

// TestCompaction: a long queue delivered in part is rewritten without the
// delivered part, and what is left reads on correctly.
func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	text := strings.Repeat("c", 1000)
	var ms []Message
	for range 100 {
		ms = append(ms, mustAppend(t, s, "bob", "alice", text))
	}
	path := filepath.Join(dir, "bob.log")
	before, _ := os.Stat(path)
	// Read a batch, then ack past the middle: the hint of the read must
	// not survive the rewrite.
	if _, err := s.Read("bob", 0, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack("bob", ms[69].Seq); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(path)
	if after.Size() >= before.Size()/2 {
		t.Fatalf("log not compacted: %d bytes, was %d", after.Size(), before.Size())
	}
	if s.Bytes() != after.Size() {
		t.Errorf("Bytes %d, log %d", s.Bytes(), after.Size())
	}
	got := readAll(t, s, "bob", ms[9].Seq)
	if len(got) != 30 || got[0] != ms[70] {
		t.Fatalf("after compaction: %d messages", len(got))
	}
	if got := readAll(t, open(t, dir, Options{}), "bob", 0); len(got) != 30 || got[29] != ms[99] {
		t.Fatalf("after reopen: %d messages", len(got))
	}
}

func TestRemoveAllAndTempFiles(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	mustAppend(t, s, "bob", "alice", "x")
	ms := readAll(t, s, "bob", 0)
	mustAppend(t, s, "bob", "alice", "y")
	if err := s.Ack("bob", ms[0].Seq); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveAll("BOB"); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Pending("bob"); n != 0 {
		t.Fatalf("%d pending after RemoveAll", n)
	}
	if s.Bytes() != 0 {
		t.Fatalf("%d bytes counted after RemoveAll", s.Bytes())
	}
	os.WriteFile(filepath.Join(dir, ".bob.ack.tmp-123"), []byte("9"), 0o600)
	open(t, dir, Options{})
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("left in the store: %v", entries)
	}
}
