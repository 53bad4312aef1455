package accounts

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"sslmessager/internal/wire"
)

// testOpen opens (or creates) path with the cheapest bcrypt cost.
func testOpen(t *testing.T, path string, logger *slog.Logger) *Store {
	t.Helper()
	s, err := Open(path, Options{Cost: bcrypt.MinCost, Logger: logger})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users.csv")
	return testOpen(t, path, nil), path
}

func mustCreate(t *testing.T, s *Store, name, pw string) User {
	t.Helper()
	u, err := s.Create(name, pw)
	if err != nil {
		t.Fatalf("Create(%q): %v", name, err)
	}
	return u
}

// fileLines returns the lines of the file at path (without the final "\n").
func fileLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(data, []byte("\n")) {
		t.Fatalf("%s does not end in a newline: %q", path, data)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// TestCreateRules checks that Create applies the wire rules for names and
// passwords and that its errors match both the accounts and the wire
// sentinels.
func TestCreateRules(t *testing.T) {
	s, _ := newStore(t)
	names := []struct {
		name       string
		want, wire error
	}{
		{strings.Repeat("x", wire.MaxUserNameBytes+1), ErrInvalidName, wire.ErrUserName},
		{"", ErrInvalidName, wire.ErrUserName},
		{"élodie", ErrInvalidName, wire.ErrUserName},
		{"al ice", ErrInvalidName, wire.ErrUserName},
		{"alice\n", ErrInvalidName, wire.ErrUserName},
		{"QUIT", ErrReservedName, wire.ErrReservedName},
		{"New_Target", ErrReservedName, wire.ErrReservedName},
	}
	for _, c := range names {
		_, err := s.Create(c.name, "good-password")
		if !errors.Is(err, c.want) || !errors.Is(err, c.wire) {
			t.Errorf("Create(%q) = %v, want %v (= %v)", c.name, err, c.want, c.wire)
		}
	}
	pws := []string{"", "1234567", strings.Repeat("p", wire.MaxPasswordBytes+1), strings.Repeat("é", 37),
		"pass word", "pass\tword", "pass\x00word", "pass\x7fword", "pass\xffword", "pass\u00a0word"}
	for _, pw := range pws {
		if _, err := s.Create("bob", pw); !errors.Is(err, ErrInvalidPassword) || !errors.Is(err, wire.ErrPassword) {
			t.Errorf("Create(bob, %q) = %v, want ErrInvalidPassword", pw, err)
		}
	}
	if s.Len() != 0 {
		t.Fatalf("Len = %d after refused Creates", s.Len())
	}
	for _, name := range []string{"a", strings.Repeat("x", wire.MaxUserNameBytes), "Bob_42", "getter"} {
		mustCreate(t, s, name, "good-password")
	}
}

// TestPasswordLengths checks that every password of 8 to 72 bytes works
// through Create and Authenticate, also multi-byte ones, and that the 73rd
// byte matters: a password differing only there does not log in.
func TestPasswordLengths(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.csv")
	s := testOpen(t, path, nil)
	pws := map[string]string{
		"min":    "12345678",
		"max":    strings.Repeat("p", 71) + "q",
		"euro":   strings.Repeat("€", 24),             // 72 bytes, 24 runes
		"mixed":  "x" + strings.Repeat("ü", 35) + "y", // 72 bytes
		"emoji":  strings.Repeat("🔑", 18),             // 72 bytes
		"unicde": "pässwörd✓",
	}
	for name, pw := range pws {
		if len(pw) < wire.MinPasswordBytes || len(pw) > wire.MaxPasswordBytes {
			t.Fatalf("test password %s has %d bytes", name, len(pw))
		}
		mustCreate(t, s, name, pw)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := testOpen(t, path, nil)
	for name, pw := range pws {
		if _, err := s2.Authenticate(name, pw); err != nil {
			t.Errorf("Authenticate(%s, %d-byte password): %v", name, len(pw), err)
		}
		// One byte less never matches; one more is over the limit.
		if _, err := s2.Authenticate(name, pw[:len(pw)-1]); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("Authenticate(%s, shortened) = %v", name, err)
		}
		if _, err := s2.Authenticate(name, pw+"x"); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("Authenticate(%s, longer) = %v", name, err)
		}
	}
	if _, err := s2.Create("long", strings.Repeat("p", 73)); !errors.Is(err, ErrInvalidPassword) {
		t.Errorf("Create with 73 bytes = %v, want ErrInvalidPassword", err)
	}
	if _, err := s2.Create("long", strings.Repeat("€", 24)+"x"); !errors.Is(err, ErrInvalidPassword) {
		t.Errorf("Create with 73 multi-byte bytes = %v, want ErrInvalidPassword", err)
	}
}

func TestOpenOptions(t *testing.T) {
	dir := t.TempDir()
	for _, cost := range []int{-1, 1, bcrypt.MinCost - 1, bcrypt.MaxCost + 1} {
		if s, err := Open(filepath.Join(dir, "users.csv"), Options{Cost: cost}); err == nil {
			_ = s.Close()
			t.Errorf("Open with cost %d succeeded, want error", cost)
		}
	}
	s := testOpen(t, filepath.Join(dir, "users.csv"), nil)
	if c, err := bcrypt.Cost(s.dummy); err != nil || c != bcrypt.MinCost {
		t.Errorf("dummy hash cost = %d, %v; want %d", c, err, bcrypt.MinCost)
	}
	if cap(s.sem) != runtime.GOMAXPROCS(0) {
		t.Errorf("semaphore slots = %d, want %d", cap(s.sem), runtime.GOMAXPROCS(0))
	}
}

func TestNewFile(t *testing.T) {
	s, path := newStore(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("new file mode = %o, want 600", mode)
	}
	if got := fileLines(t, path); len(got) != 1 || got[0] != "name,password_hash,created,role" {
		t.Errorf("new file lines = %q, want just the header", got)
	}
	if s.Len() != 0 {
		t.Errorf("Len = %d, want 0", s.Len())
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only users.csv", len(entries))
	}
}

func TestCreateAuthenticate(t *testing.T) {
	s, _ := newStore(t)
	u := mustCreate(t, s, "Alice", "s3cret-pass")
	if u.Name != "Alice" || u.Role != "user" || u.Created.IsZero() || u.Created.Location().String() != "UTC" {
		t.Errorf("Create returned %+v", u)
	}
	if bcrypt.CompareHashAndPassword([]byte(u.Hash), []byte("s3cret-pass")) != nil {
		t.Error("stored hash does not match the password")
	}
	for _, name := range []string{"Alice", "alice", "ALICE"} {
		got, err := s.Authenticate(name, "s3cret-pass")
		if err != nil {
			t.Fatalf("Authenticate(%q): %v", name, err)
		}
		if got.Name != "Alice" {
			t.Errorf("Authenticate(%q).Name = %q, want Alice", name, got.Name)
		}
		lu, ok := s.Lookup(name)
		if !ok || lu.Name != "Alice" {
			t.Errorf("Lookup(%q) = %+v, %v", name, lu, ok)
		}
	}
	if _, ok := s.Lookup("bob"); ok {
		t.Error("Lookup(bob) found an unknown user")
	}
	if s.Len() != 1 {
		t.Errorf("Len = %d, want 1", s.Len())
	}
}

func TestBadCredentials(t *testing.T) {
	s, _ := newStore(t)
	mustCreate(t, s, "alice", "s3cret-pass")
	cases := []struct{ name, pw string }{
		{"alice", "wrong-pass"},
		{"alice", ""},
		{"alice", "s3cret-pass" + strings.Repeat("x", wire.MaxPasswordBytes)},
		{"bob", "s3cret-pass"},
		{"", "s3cret-pass"},
		{"quit", "whatever1"},
	}
	for _, c := range cases {
		u, err := s.Authenticate(c.name, c.pw)
		if !errors.Is(err, ErrBadCredentials) {
			t.Errorf("Authenticate(%q, %q) error = %v, want ErrBadCredentials", c.name, c.pw, err)
		}
		if u != (User{}) {
			t.Errorf("Authenticate(%q, %q) returned user %+v on failure", c.name, c.pw, u)
		}
	}
}

func TestCreateErrors(t *testing.T) {
	s, path := newStore(t)
	mustCreate(t, s, "Alice", "s3cret-pass")
	cases := []struct {
		name, pw string
		want     error
	}{
		{"alice", "other-pass", ErrTaken},
		{"ALICE", "other-pass", ErrTaken},
		{"bad name", "other-pass", ErrInvalidName},
		{"Help", "other-pass", ErrReservedName},
		{"bob", "short", ErrInvalidPassword},
		{"bob", "has space!", ErrInvalidPassword},
	}
	for _, c := range cases {
		if _, err := s.Create(c.name, c.pw); !errors.Is(err, c.want) {
			t.Errorf("Create(%q, %q) = %v, want %v", c.name, c.pw, err, c.want)
		}
	}
	if s.Len() != 1 {
		t.Errorf("Len = %d, want 1", s.Len())
	}
	if got := fileLines(t, path); len(got) != 2 {
		t.Errorf("file has %d lines, want header + 1 row: %q", len(got), got)
	}
	// A failed Create must not keep the name reserved.
	mustCreate(t, s, "bob", "good-password")
}

func TestPersistence(t *testing.T) {
	s, path := newStore(t)
	created := mustCreate(t, s, "Carol", "carol-pass")
	mustCreate(t, s, "dave", "dave-pass1")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create("eve", "eve-pass1"); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Create after Close = %v, want os.ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}

	s2 := testOpen(t, path, nil)
	if s2.Len() != 2 {
		t.Fatalf("reopened Len = %d, want 2", s2.Len())
	}
	u, err := s2.Authenticate("carol", "carol-pass")
	if err != nil {
		t.Fatalf("Authenticate after reopen: %v", err)
	}
	if u != created {
		t.Errorf("reloaded user = %+v, want %+v", u, created)
	}
	if _, err := s2.Authenticate("DAVE", "dave-pass1"); err != nil {
		t.Errorf("Authenticate(DAVE) after reopen: %v", err)
	}
	if _, err := s2.Create("carol", "carol-pass"); !errors.Is(err, ErrTaken) {
		t.Errorf("Create of a reloaded name = %v, want ErrTaken", err)
	}
}

// writeUsers writes a users.csv with a header and the given rows.
func writeUsers(t *testing.T, path string, rows ...string) {
	t.Helper()
	content := "name,password_hash,created,role\n"
	for _, r := range rows {
		content += r + "\n"
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func hashOf(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestTornLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.csv")
	s := testOpen(t, path, nil)
	mustCreate(t, s, "alice", "alice-pass")
	mustCreate(t, s, "bob", "bob-pass1")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Simulate a crash in the middle of an append: half a row, no newline.
	half := "mallory," + hashOf(t, "mallory-pass")[:20]
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(half); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	var logBuf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s2 := testOpen(t, path, logger)
	logged := logBuf.String()
	if !strings.Contains(logged, "level=WARN") || !strings.Contains(logged, "torn") || !strings.Contains(logged, "line=4") {
		t.Errorf("expected a torn-line warning for line 4, log = %q", logged)
	}
	if strings.Contains(logged, "$2a$") {
		t.Errorf("log leaks a hash: %q", logged)
	}
	if s2.Len() != 2 {
		t.Errorf("Len after torn line = %d, want 2", s2.Len())
	}
	if _, ok := s2.Lookup("mallory"); ok {
		t.Error("torn row was loaded")
	}
	if _, err := s2.Authenticate("bob", "bob-pass1"); err != nil {
		t.Errorf("good row lost: %v", err)
	}
	// The file is repaired before any append, and the damaged one kept.
	if got := fileLines(t, path); len(got) != 3 {
		t.Errorf("repaired file has %d lines, want 3: %q", len(got), got)
	}
	bak, err := os.ReadFile(path + BackupSuffix)
	if err != nil || !strings.HasSuffix(string(bak), "\n"+half) || len(strings.Split(string(bak), "\n")) != 4 {
		t.Errorf("backup = %q, %v; want the file as it was, torn row included", bak, err)
	}
	if fi, err := os.Stat(path + BackupSuffix); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode: %v, %v", fi, err)
	}
	mustCreate(t, s2, "carol", "carol-pass")
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}

	logBuf.Reset()
	s3 := testOpen(t, path, logger)
	if logBuf.Len() != 0 {
		t.Errorf("unexpected log on clean reopen: %q", logBuf.String())
	}
	if s3.Len() != 3 {
		t.Errorf("reopened Len = %d, want 3", s3.Len())
	}
	for _, c := range []struct{ name, pw string }{{"alice", "alice-pass"}, {"bob", "bob-pass1"}, {"carol", "carol-pass"}} {
		if _, err := s3.Authenticate(c.name, c.pw); err != nil {
			t.Errorf("Authenticate(%s) after repair: %v", c.name, err)
		}
	}
	lines := fileLines(t, path)
	if len(lines) != 4 || !strings.HasPrefix(lines[3], "carol,") {
		t.Errorf("file after repair and append = %q", lines)
	}
}

// TestCompleteBadLastLineIsError checks that only an unterminated last
// line counts as torn: a newline-terminated last line that fails to parse
// is an error, and the file and its backup are left alone.
func TestCompleteBadLastLineIsError(t *testing.T) {
	good := "alice," + hashOf(t, "alice-pass") + ",2024-01-02T03:04:05Z,user"
	for _, last := range []string{
		"garbage,with,too,many,fields",
		"bob,nothash,2024-01-02T03:04:05Z,user",
		"mallory,$2a$04$abc", // a torn row that somehow got its newline
		"",                   // an empty last line
	} {
		t.Run(fmt.Sprintf("%q", last), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "users.csv")
			writeUsers(t, path, good, last)
			before, _ := os.ReadFile(path)
			s, err := Open(path, Options{Cost: bcrypt.MinCost})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded, want an error for line 3")
			}
			if !strings.Contains(err.Error(), path+":3:") {
				t.Errorf("error %q does not name %s:3", err, path)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
				t.Error("Open changed the file")
			}
			if _, err := os.Stat(path + BackupSuffix); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("backup written for a file not rewritten: %v", err)
			}
		})
	}
}

// TestEmptyFileIsNewStore checks that an existing 0-byte users.csv is a new
// store: Open writes the header, accounts can be created and survive a
// reopen, and no backup replaces an older one.
func TestEmptyFileIsNewStore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users.csv")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	oldBak := []byte("name,password_hash,created,role\n")
	if err := os.WriteFile(path+BackupSuffix, oldBak, 0o600); err != nil {
		t.Fatal(err)
	}
	s := testOpen(t, path, nil)
	if got := fileLines(t, path); len(got) != 1 || got[0] != "name,password_hash,created,role" {
		t.Fatalf("file = %q, want the header", got)
	}
	mustCreate(t, s, "alice", "alice-pass")
	s.Close()
	s2 := testOpen(t, path, nil)
	if _, err := s2.Authenticate("alice", "alice-pass"); err != nil {
		t.Errorf("Authenticate after reopen: %v", err)
	}
	if b, _ := os.ReadFile(path + BackupSuffix); !bytes.Equal(b, oldBak) {
		t.Errorf("backup replaced: %q", b)
	}
}

// TestErrorsNameTheFile checks that failures to create or open the file
// name users.csv, never a temporary file.
func TestErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no-such-dir", "users.csv")
	_, err := Open(missing, Options{Cost: bcrypt.MinCost})
	if err == nil || !strings.Contains(err.Error(), missing) || strings.Contains(err.Error(), ".tmp") {
		t.Errorf("Open(%s) = %v; want an error naming it and no temp file", missing, err)
	}
	asDir := filepath.Join(dir, "users.csv")
	if err := os.Mkdir(asDir, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err = Open(asDir, Options{Cost: bcrypt.MinCost})
	if err == nil || !strings.Contains(err.Error(), asDir) || strings.Contains(err.Error(), ".tmp") {
		t.Errorf("Open(directory) = %v; want an error naming %s", err, asDir)
	}
}

// TestCreateRacingClose runs many Creates against a Close, as a sign-up
// does against server shutdown, then reopens the file: every Create that
// returned nil is in it with its password, and no Create that failed left
// a row.
func TestCreateRacingClose(t *testing.T) {
	for round := range 5 {
		path := filepath.Join(t.TempDir(), "users.csv")
		s, err := Open(path, Options{Cost: bcrypt.MinCost})
		if err != nil {
			t.Fatal(err)
		}
		const n = 64
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				_, errs[i] = s.Create(fmt.Sprintf("user%d", i), fmt.Sprintf("password-%d", i))
			})
		}
		close(start)
		// Close once some Creates are done (the round decides how many),
		// with others in their hash or append.
		for deadline := time.Now().Add(10 * time.Second); s.Len() < round*8 && time.Now().Before(deadline); {
			runtime.Gosched()
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()

		s2 := testOpen(t, path, nil)
		acked := 0
		for i, err := range errs {
			name := fmt.Sprintf("user%d", i)
			_, found := s2.Lookup(name)
			switch {
			case err == nil:
				acked++
				if _, aerr := s2.Authenticate(name, fmt.Sprintf("password-%d", i)); aerr != nil {
					t.Errorf("round %d: acknowledged %s lost: %v", round, name, aerr)
				}
			case !errors.Is(err, os.ErrClosed):
				t.Errorf("round %d: Create(%s) = %v, want nil or os.ErrClosed", round, name, err)
			case found:
				t.Errorf("round %d: refused %s is in the file", round, name)
			}
		}
		if s2.Len() != acked {
			t.Errorf("round %d: file holds %d accounts, %d acknowledged", round, s2.Len(), acked)
		}
		t.Logf("round %d: %d of %d acknowledged", round, acked, n)
	}
}

func TestRoles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.csv")
	writeUsers(t, path,
		"alice,"+hashOf(t, "alice-pass")+",2024-01-02T03:04:05Z,",
		"Root,"+hashOf(t, "root-pass1")+",2024-01-02T03:04:05+02:00,admin")
	s := testOpen(t, path, nil)
	if u, _ := s.Lookup("alice"); u.Role != "user" {
		t.Errorf("empty role loaded as %q, want user", u.Role)
	}
	u, _ := s.Lookup("root")
	if u.Role != "admin" || u.Name != "Root" {
		t.Errorf("admin row loaded as %+v", u)
	}
	if u.Created.Location().String() != "UTC" || u.Created.Hour() != 1 {
		t.Errorf("created = %v, want 01:04:05 UTC", u.Created)
	}
}

func TestMalformedFiles(t *testing.T) {
	h := hashOf(t, "some-pass1")
	good := "alice," + h + ",2024-01-02T03:04:05Z,user"
	cases := []struct {
		desc    string
		content string
		line    string
	}{
		{"bad header", "user,hash,created,role\n" + good + "\n", ":1:"},
		{"reordered header", "password_hash,name,created,role\n", ":1:"},
		{"header without newline", "name,password_hash,created,role", ":1:"},
		{"bad middle row", "name,password_hash,created,role\nbob,x\n" + good + "\n", ":2:"},
		{"bad hash in middle", "name,password_hash,created,role\nbob,nothash,2024-01-02T03:04:05Z,user\n" + good + "\n", ":2:"},
		{"bad time in middle", "name,password_hash,created,role\nbob," + h + ",yesterday,user\n" + good + "\n", ":2:"},
		{"bad role in middle", "name,password_hash,created,role\nbob," + h + ",2024-01-02T03:04:05Z,root\n" + good + "\n", ":2:"},
		{"empty line in middle", "name,password_hash,created,role\n\n" + good + "\n", ":2:"},
		{"duplicate name", "name,password_hash,created,role\n" + good + "\nALICE," + h + ",2024-01-02T03:04:05Z,user\n", ":3:"},
		{"bad row before torn tail", "name,password_hash,created,role\n" + good + "\nbob,x\ncarol,", ":3:"},
		{"bad complete last row", "name,password_hash,created,role\n" + good + "\nbob,x\n", ":3:"},
		{"empty last line", "name,password_hash,created,role\n" + good + "\n\n", ":3:"},
		{"only a torn header", "name,passw", ":1:"},
	}
	for _, c := range cases {
		t.Run(c.desc, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "users.csv")
			if err := os.WriteFile(path, []byte(c.content), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(path, Options{Cost: bcrypt.MinCost})
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded, want error")
			}
			if !strings.Contains(err.Error(), path+c.line) {
				t.Errorf("error %q does not name %s%s", err, path, c.line)
			}
			if strings.Contains(err.Error(), "$2a$") {
				t.Errorf("error leaks a hash: %q", err)
			}
			after, rerr := os.ReadFile(path)
			if rerr != nil || string(after) != c.content {
				t.Errorf("Open modified a malformed file")
			}
		})
	}
}

func TestConcurrentCreateSameName(t *testing.T) {
	s, path := newStore(t)
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			name := "Zed"
			if i%2 == 1 {
				name = "zED"
			}
			_, errs[i] = s.Create(name, fmt.Sprintf("password-%d", i))
		})
	}
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, ErrTaken):
			t.Errorf("goroutine %d: %v, want nil or ErrTaken", i, err)
		}
	}
	if wins != 1 {
		t.Errorf("%d Creates succeeded, want exactly 1", wins)
	}
	if got := fileLines(t, path); len(got) != 2 {
		t.Errorf("file has %d lines, want header + 1 row: %q", len(got), got)
	}
	if s.Len() != 1 {
		t.Errorf("Len = %d, want 1", s.Len())
	}
}

func TestConcurrentCreateDifferentNames(t *testing.T) {
	s, path := newStore(t)
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.Create(fmt.Sprintf("user%d", i), fmt.Sprintf("password-%d", i))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Create(user%d): %v", i, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fileLines(t, path); len(got) != n+1 {
		t.Errorf("file has %d lines, want %d", len(got), n+1)
	}
	s2 := testOpen(t, path, nil)
	if s2.Len() != n {
		t.Fatalf("reopened Len = %d, want %d", s2.Len(), n)
	}
	for i := range n {
		if _, err := s2.Authenticate(fmt.Sprintf("USER%d", i), fmt.Sprintf("password-%d", i)); err != nil {
			t.Errorf("Authenticate(user%d) after reopen: %v", i, err)
		}
	}
}
