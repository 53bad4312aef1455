package keydir

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func open(t *testing.T, dir string, max int, c *clock) *Store {
	t.Helper()
	s, err := Open(dir, Options{MaxChangesPerHour: max, Now: c.now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// logLines returns keys.log's lines.
func logLines(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, LogFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

var logLine = regexp.MustCompile(`^time=\S+Z user=[A-Za-z0-9_]+ action=(set|remove|undo) new=([0-9a-f]{64}|-) old=([0-9a-f]{64}|-)$`)

func TestSetGetRemoveAndLog(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)}
	s := open(t, dir, 0, c)
	if _, ok := s.Get("alice"); ok {
		t.Fatal("a bundle in an empty store")
	}
	for _, step := range []struct {
		user, bundle string
		changed      bool
	}{
		{"Alice", "bundle-one", true},
		{"alice", "bundle-one", false}, // the same again: no change
		{"ALICE", "bundle-two", true},
		{"bob", "bundle-b", true},
	} {
		changed, err := s.Set(step.user, step.bundle)
		if err != nil || changed != step.changed {
			t.Fatalf("Set(%s, %s) = %v, %v; want %v", step.user, step.bundle, changed, err, step.changed)
		}
	}
	if b, ok := s.Get("aLiCe"); !ok || b != "bundle-two" {
		t.Fatalf("Get = %q, %v", b, ok)
	}
	if removed, err := s.Remove("Alice"); err != nil || !removed {
		t.Fatalf("Remove = %v, %v", removed, err)
	}
	if removed, err := s.Remove("alice"); err != nil || removed {
		t.Fatalf("Remove again = %v, %v", removed, err)
	}
	if _, ok := s.Get("alice"); ok {
		t.Fatal("alice's bundle is still there")
	}
	if _, err := os.Stat(filepath.Join(dir, "alice.key")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("alice.key: %v", err)
	}
	lines := logLines(t, dir)
	want := []struct{ action, newB, oldB string }{
		{"set", "bundle-one", ""},
		{"set", "bundle-two", "bundle-one"},
		{"set", "bundle-b", ""},
		{"remove", "", "bundle-two"},
	}
	if len(lines) != len(want) {
		t.Fatalf("keys.log has %d lines, want %d:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	for i, w := range want {
		m := logLine.FindStringSubmatch(lines[i])
		if m == nil || m[1] != w.action || m[2] != Hash(w.newB) || m[3] != Hash(w.oldB) {
			t.Errorf("keys.log line %d = %q, want %s new=%s old=%s", i+1, lines[i], w.action, Hash(w.newB), Hash(w.oldB))
		}
	}
	if !strings.HasPrefix(lines[0], "time=2026-11-30T10:00:00Z user=Alice ") {
		t.Errorf("line 1 = %q", lines[0])
	}
	for _, name := range []string{LogFile, "bob.key"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v", name, fi.Mode(), err)
		}
	}

	// A new store on the same directory has bob's bundle and not alice's.
	s2 := open(t, dir, 0, c)
	if b, ok := s2.Get("BOB"); !ok || b != "bundle-b" {
		t.Errorf("after reopen: bob %q, %v", b, ok)
	}
	if _, ok := s2.Get("alice"); ok || s2.Len() != 1 {
		t.Errorf("after reopen: alice there, or %d bundles", s2.Len())
	}
}

func TestInvalid(t *testing.T) {
	s := open(t, t.TempDir(), 0, &clock{t: time.Now()})
	for _, c := range []struct{ user, bundle string }{
		{"../etc", "b"}, {"a.b", "b"}, {"", "b"}, {"help", "b"}, {"sixteen_letters_", "b"},
		{"alice", ""}, {"alice", "-"}, {"alice", "a b"}, {"alice", "a\nb"}, {"alice", strings.Repeat("x", 2049)},
	} {
		if _, err := s.Set(c.user, c.bundle); !errors.Is(err, ErrInvalid) {
			t.Errorf("Set(%q, %.20q) = %v, want ErrInvalid", c.user, c.bundle, err)
		}
	}
	if _, ok := s.Get("../etc"); ok {
		t.Error("Get of a path")
	}
	if removed, err := s.Remove("../x"); removed || err != nil {
		t.Errorf("Remove of a path = %v, %v", removed, err)
	}
	if entries, _ := os.ReadDir(s.Dir()); len(entries) != 0 {
		t.Errorf("files written: %v", entries)
	}
}

func TestRateLimit(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)}
	s := open(t, dir, 3, c)
	for i := range 3 {
		if _, err := s.Set("alice", "b"+string(rune('0'+i))); err != nil {
			t.Fatal(err)
		}
		c.add(10 * time.Minute)
	}
	// 10:30: the three changes were at 10:00, 10:10 and 10:20.
	_, err := s.Set("alice", "b3")
	var re *RateError
	if !errors.As(err, &re) || !errors.Is(err, ErrTooManyChanges) || re.Wait != 30*time.Minute {
		t.Fatalf("fourth change = %v, want a RateError of 30m", err)
	}
	// The same bundle again is no change and is not refused.
	if changed, err := s.Set("alice", "b2"); err != nil || changed {
		t.Fatalf("same bundle = %v, %v", changed, err)
	}
	// Another user is not held back; a removal is never refused.
	if _, err := s.Set("bob", "x"); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.Get("alice"); b != "b2" {
		t.Fatalf("refused change was made: %q", b)
	}
	c.add(30 * time.Minute) // 11:00: the 10:00 change is out of the window
	if _, err := s.Set("alice", "b3"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	if _, err := s.Set("alice", "b4"); !errors.Is(err, ErrTooManyChanges) {
		t.Fatalf("again at once: %v", err)
	}
	if n := len(logLines(t, dir)); n != 5 {
		t.Errorf("keys.log has %d lines, want 5 (refused changes are not logged)", n)
	}

	unlimited := open(t, t.TempDir(), NoLimit, c)
	for i := range 50 {
		if _, err := unlimited.Set("alice", strings.Repeat("x", i+1)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRemoveIf(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0, &clock{t: time.Now()})
	s.Set("alice", "new")
	if removed, _ := s.RemoveIf("alice", "other"); removed {
		t.Fatal("removed a bundle that was not the one named")
	}
	if removed, err := s.RemoveIf("alice", "new"); err != nil || !removed {
		t.Fatalf("RemoveIf = %v, %v", removed, err)
	}
	lines := logLines(t, dir)
	if len(lines) != 2 || !strings.Contains(lines[1], "action=undo new=- old="+Hash("new")) {
		t.Fatalf("keys.log:\n%s", strings.Join(lines, "\n"))
	}
}

func TestOpenRefusesDamage(t *testing.T) {
	for name, content := range map[string]string{
		"alice.key":  "no newline",
		"bob.key":    "two words\n",
		"carol.key":  "\n",
		"a.b.key":    "x\n",
		"HELP.key":   "x\n",
		"Upper.key":  "x\n", // stems are lower case
		"dave.key":   strings.Repeat("x", 2049) + "\n",
		"erin.key":   "-\n",
		"frank.key":  "x\x1b\n",
		"george.key": "x\ny\n",
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(dir, Options{})
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s %q: Open = %v, want an error naming the file", name, content, err)
		}
	}
	// Temporary files of a crash are removed; other files are left alone.
	dir := t.TempDir()
	for _, n := range []string{".alice.key.tmp-123", "README", "keys.log.1"} {
		os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600)
	}
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".alice.key.tmp-123")); !errors.Is(err, os.ErrNotExist) {
		t.Error("temporary file left")
	}
	if _, err := os.Stat(filepath.Join(dir, "README")); err != nil || s.Len() != 0 {
		t.Errorf("README: %v; %d bundles", err, s.Len())
	}
}

// TestFailedWriteIsUndone: when the bundle file cannot be written, the old
// bundle stays, and keys.log says the change logged was undone.
func TestFailedWriteIsUndone(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0, &clock{t: time.Now()})
	if _, err := s.Set("alice", "old"); err != nil {
		t.Fatal(err)
	}
	// A directory where bob's file goes makes the rename fail.
	if err := os.Mkdir(filepath.Join(dir, "bob.key"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Set("bob", "new"); err == nil {
		t.Fatal("Set over a directory succeeded")
	}
	if _, ok := s.Get("bob"); ok {
		t.Fatal("bob has a bundle after a failed write")
	}
	lines := logLines(t, dir)
	if len(lines) != 3 || !strings.Contains(lines[1], "user=bob action=set new="+Hash("new")+" old=-") ||
		!strings.Contains(lines[2], "user=bob action=undo new=- old="+Hash("new")) {
		t.Fatalf("keys.log:\n%s", strings.Join(lines, "\n"))
	}
}

func TestConcurrent(t *testing.T) {
	s := open(t, t.TempDir(), NoLimit, &clock{t: time.Now()})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := "u" + string(rune('0'+i%4))
			for j := range 20 {
				s.Set(user, strings.Repeat("b", j+1))
				s.Get(user)
				if j%7 == 0 {
					s.Remove(user)
				}
			}
		}()
	}
	wg.Wait()
	s2, err := Open(s.Dir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		u := "u" + string(rune('0'+i))
		a, okA := s.Get(u)
		b, okB := s2.Get(u)
		if a != b || okA != okB {
			t.Errorf("%s: memory %q %v, disk %q %v", u, a, okA, b, okB)
		}
	}
}
