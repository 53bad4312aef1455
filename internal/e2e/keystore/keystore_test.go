package keystore

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age/armor"
)

// testLogN is the scrypt work factor of files written by tests: 2^10
// keeps each Create/Open at a millisecond instead of a second.
const testLogN = 10

const (
	envLoopDir  = "KEYSTORE_TEST_SAVE_LOOP_DIR"
	envLoopPass = "KEYSTORE_TEST_SAVE_LOOP_PASS"
	loopStateSz = 1 << 20
)

func TestMain(m *testing.M) {
	scryptLogN = testLogN
	if dir := os.Getenv(envLoopDir); dir != "" {
		saveLoop(dir, os.Getenv(envLoopPass))
		return
	}
	os.Exit(m.Run())
}

// loopState is the i-th state the save loop writes: i as 8 bytes, then
// the byte i%251 repeated, loopStateSz bytes in all.
func loopState(i uint64) []byte {
	b := bytes.Repeat([]byte{byte(i % 251)}, loopStateSz)
	binary.BigEndian.PutUint64(b, i)
	return b
}

// checkLoopState returns the counter of a state the loop wrote, or an
// error when the state is not one of them.
func checkLoopState(b []byte) (uint64, error) {
	if len(b) == 0 {
		return 0, nil // the empty state of Create
	}
	if len(b) != loopStateSz {
		return 0, fmt.Errorf("state of %d bytes", len(b))
	}
	i := binary.BigEndian.Uint64(b)
	if !bytes.Equal(b, loopState(i)) {
		return 0, fmt.Errorf("state %d is mixed", i)
	}
	return i, nil
}

// saveLoop runs in a child process: it opens the store and saves states
// with increasing counters, printing each counter once its save returned,
// until it is killed.
func saveLoop(dir, pass string) {
	s, err := Open(dir, pass)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	st, err := s.LoadState()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	i, err := checkLoopState(st)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for {
		i++
		if err := s.SaveState(loopState(i)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Printf("%d\n", i)
	}
}

func create(t *testing.T, dir, pass string, secrets []byte) *Store {
	t.Helper()
	s, err := Create(dir, pass, secrets)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCreateOpenSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cert", "alice")
	secrets := []byte("identity secrets \x00\xff")
	s := create(t, dir, "correct horse", secrets)
	if !bytes.Equal(s.Secrets(), secrets) || s.Dir() != dir {
		t.Fatalf("Secrets %q Dir %q", s.Secrets(), s.Dir())
	}
	s.Secrets()[0] = 'X' // a copy
	st, err := s.LoadState()
	if err != nil || st == nil || len(st) != 0 {
		t.Fatalf("fresh state %q, %v; want empty", st, err)
	}
	if err := s.SaveState([]byte("state one")); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveState([]byte("state two")); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s2.Secrets(), secrets) {
		t.Fatalf("reopened secrets %q", s2.Secrets())
	}
	if st, err := s2.LoadState(); err != nil || string(st) != "state two" {
		t.Fatalf("reopened state %q, %v", st, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Fatalf("files in the store: %v", ents)
	}
}

func TestWrongPassphrase(t *testing.T) {
	dir := t.TempDir()
	create(t, dir, "right passphrase", []byte("k"))
	_, err := Open(dir, "wrong passphrase")
	if !errors.Is(err, ErrPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if !strings.Contains(err.Error(), "wrong passphrase") {
		t.Fatalf("message %q", err)
	}
	if _, err := Open(dir, ""); !errors.Is(err, ErrEmptyPassphrase) {
		t.Fatalf("empty passphrase: %v", err)
	}
	if _, err := Create(t.TempDir(), "", []byte("k")); !errors.Is(err, ErrEmptyPassphrase) {
		t.Fatalf("create with empty passphrase: %v", err)
	}
}

func TestOpenMissing(t *testing.T) {
	for _, dir := range []string{t.TempDir(), filepath.Join(t.TempDir(), "nope")} {
		_, err := Open(dir, "pass")
		if !errors.Is(err, ErrNoIdentity) || !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Open(%s): %v", dir, err)
		}
	}
}

func TestCreateRefusesExistingIdentity(t *testing.T) {
	dir := t.TempDir()
	s := create(t, dir, "pass-one", []byte("first"))
	if err := s.SaveState([]byte("kept")); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(dir, "pass-two", []byte("second")); !errors.Is(err, ErrExists) {
		t.Fatalf("second Create: %v", err)
	}
	s2, err := Open(dir, "pass-one")
	if err != nil || string(s2.Secrets()) != "first" {
		t.Fatalf("after refused Create: %v %q", err, s2.Secrets())
	}
	if st, err := s2.LoadState(); err != nil || string(st) != "kept" {
		t.Fatalf("state after refused Create: %q, %v", st, err)
	}
}

func TestCreateRefusesBadSecrets(t *testing.T) {
	for _, n := range []int{0, MaxSecretsBytes + 1} {
		if _, err := Create(t.TempDir(), "pass", make([]byte, n)); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%d-byte secrets: %v", n, err)
		}
	}
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestModes: files 0600 and the directory 0700 whatever the umask and
// the directory's earlier mode; Open refuses a store others can read.
func TestModes(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "user")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := create(t, dir, "pass", []byte("k"))
	if err := s.SaveState([]byte("x")); err != nil {
		t.Fatal(err)
	}
	idPath, statePath := filepath.Join(dir, IdentityFile), filepath.Join(dir, StateFile)
	if m := mode(t, dir); m != 0o700 {
		t.Fatalf("dir mode %04o", m)
	}
	for _, p := range []string{idPath, statePath} {
		if m := mode(t, p); m != 0o600 {
			t.Fatalf("%s mode %04o", p, m)
		}
	}
	var exp bytes.Buffer
	if err := s.Export(&exp, "export pass"); err != nil {
		t.Fatal(err)
	}
	dir2 := filepath.Join(t.TempDir(), "a", "b")
	if _, err := Import(&exp, "export pass", dir2, "pass", false); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]fs.FileMode{dir2: 0o700, filepath.Dir(dir2): 0o700, filepath.Join(dir2, IdentityFile): 0o600, filepath.Join(dir2, StateFile): 0o600} {
		if m := mode(t, p); m != want {
			t.Fatalf("imported %s mode %04o, want %04o", p, m, want)
		}
	}

	for _, c := range []struct {
		path string
		bad  fs.FileMode
		good fs.FileMode
	}{{dir, 0o755, 0o700}, {dir, 0o701, 0o700}, {idPath, 0o644, 0o600}, {idPath, 0o640, 0o600}, {statePath, 0o604, 0o600}} {
		os.Chmod(c.path, c.bad)
		_, err := Open(dir, "pass")
		if !errors.Is(err, ErrPermissions) || !strings.Contains(err.Error(), c.path) {
			t.Errorf("%s at %04o: %v", c.path, c.bad, err)
		}
		os.Chmod(c.path, c.good)
	}
	if _, err := Open(dir, "pass"); err != nil {
		t.Fatalf("restored modes: %v", err)
	}
}

// TestStateDamageRefused: every single-bit flip and every truncation of
// the state file, a state sealed for another identity and a missing file
// are errors, and LoadState leaves the file as it found it.
func TestStateDamageRefused(t *testing.T) {
	dir := t.TempDir()
	s := create(t, dir, "pass", []byte("k"))
	if err := s.SaveState([]byte("replay window 42")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, StateFile)
	good, _ := os.ReadFile(path)
	try := func(what string, data []byte, want error) {
		t.Helper()
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := s.LoadState()
		if !errors.Is(err, want) || st != nil {
			t.Fatalf("%s: %q, %v; want %v", what, st, err, want)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(after, data) {
			t.Fatalf("%s: LoadState changed the file", what)
		}
	}
	for i := range good {
		for _, bit := range []byte{0x01, 0x80} {
			b := bytes.Clone(good)
			b[i] ^= bit
			try(fmt.Sprintf("flip %#x at %d", bit, i), b, ErrStateCorrupt)
		}
	}
	for n := 0; n < len(good); n++ {
		try(fmt.Sprintf("cut to %d", n), good[:n], ErrStateCorrupt)
	}
	try("appended byte", append(bytes.Clone(good), 0), ErrStateCorrupt)

	other := create(t, t.TempDir(), "pass", []byte("k"))
	if err := other.SaveState([]byte("replay window 42")); err != nil {
		t.Fatal(err)
	}
	foreign, _ := os.ReadFile(filepath.Join(other.Dir(), StateFile))
	try("another identity's state", foreign, ErrStateCorrupt)

	os.Remove(path)
	if _, err := s.LoadState(); !errors.Is(err, ErrNoState) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing state: %v", err)
	}
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if st, err := s.LoadState(); err != nil || string(st) != "replay window 42" {
		t.Fatalf("restored: %q, %v", st, err)
	}
}

func TestStateTooLarge(t *testing.T) {
	s := create(t, t.TempDir(), "pass", []byte("k"))
	if err := s.SaveState(make([]byte, MaxStateBytes+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized state: %v", err)
	}
	if st, err := s.LoadState(); err != nil || len(st) != 0 {
		t.Fatalf("state after refused save: %d bytes, %v", len(st), err)
	}
}

// TestIdentityDamageRefused: a flipped byte anywhere in identity.age
// makes Open fail; it never yields other secrets.
func TestIdentityDamageRefused(t *testing.T) {
	dir := t.TempDir()
	create(t, dir, "pass", []byte("the secrets"))
	path := filepath.Join(dir, IdentityFile)
	good, _ := os.ReadFile(path)
	for i := 0; i < len(good); i += 3 {
		b := bytes.Clone(good)
		b[i] ^= 0x04
		os.WriteFile(path, b, 0o600)
		if s, err := Open(dir, "pass"); err == nil {
			t.Fatalf("flip at %d opened: %q", i, s.Secrets())
		}
	}
}

// TestWorkFactor: the default is the documented 2^16 (exports 2^18); files
// carry the factor they were written at, and a file asking for more than
// MaxWorkFactor is refused before any scrypt work.
func TestWorkFactor(t *testing.T) {
	if WorkFactor != 16 || ExportWorkFactor != 18 || MaxWorkFactor != 22 {
		t.Fatalf("WorkFactor %d ExportWorkFactor %d MaxWorkFactor %d", WorkFactor, ExportWorkFactor, MaxWorkFactor)
	}
	dir := t.TempDir()
	create(t, dir, "pass", []byte("k"))
	path := filepath.Join(dir, IdentityFile)
	data, _ := os.ReadFile(path)
	i := bytes.IndexByte(data, '\n')
	j := bytes.IndexByte(data[i+1:], '\n') + i + 1
	stanza := string(data[i+1 : j])
	if !strings.HasPrefix(stanza, "-> scrypt ") || !strings.HasSuffix(stanza, " "+strconv.Itoa(testLogN)) {
		t.Fatalf("stanza %q", stanza)
	}
	heavy := bytes.Replace(data, []byte(stanza), []byte(strings.TrimSuffix(stanza, strconv.Itoa(testLogN))+"30"), 1)
	os.WriteFile(path, heavy, 0o600)
	start := time.Now()
	_, err := Open(dir, "pass")
	if err == nil || errors.Is(err, ErrPassphrase) || !strings.Contains(err.Error(), "work factor") {
		t.Fatalf("work factor 30: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("refusal took %v", d)
	}
}

// TestWorkFactorFromFile: a store written at another work factor (as the
// stores written at the old default 2^18 are) opens: the factor is read
// from the file's scrypt stanza, not assumed; opening does not rewrite it.
func TestWorkFactorFromFile(t *testing.T) {
	defer func() { scryptLogN = testLogN }()
	dir := t.TempDir()
	scryptLogN = testLogN + 3
	create(t, dir, "pass", []byte("old store"))
	before, _ := os.ReadFile(filepath.Join(dir, IdentityFile))
	scryptLogN = testLogN
	s, err := Open(dir, "pass")
	if err != nil || string(s.Secrets()) != "old store" {
		t.Fatalf("a store written at 2^%d: %v", testLogN+3, err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, IdentityFile))
	if !bytes.Equal(before, after) || !bytes.Contains(after, []byte(" "+strconv.Itoa(testLogN+3)+"\n")) {
		t.Fatal("the identity file was rewritten or does not carry its factor")
	}
	var exp bytes.Buffer
	if err := s.Export(&exp, "x"); err != nil {
		t.Fatal(err)
	}
	bin, err := io.ReadAll(armor.NewReader(bytes.NewReader(exp.Bytes())))
	if err != nil || !bytes.Contains(bin, []byte(" "+strconv.Itoa(testLogN+ExportWorkFactor-WorkFactor)+"\n")) {
		t.Fatalf("the export is not written at the export work factor: %v", err)
	}
}

func TestExportImportRoundTrip(t *testing.T) {
	src := create(t, t.TempDir(), "device one", []byte("identity"))
	if err := src.SaveState([]byte("prekeys and counters")); err != nil {
		t.Fatal(err)
	}
	var exp bytes.Buffer
	if err := src.Export(&exp, "moving day"); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(exp.String(), armor.Header+"\n") {
		t.Fatalf("export not armored: %.60q", exp.String())
	}
	if bytes.Contains(exp.Bytes(), []byte("identity")) || bytes.Contains(exp.Bytes(), []byte("prekeys")) {
		t.Fatal("export holds plaintext")
	}
	binExp, err := io.ReadAll(armor.NewReader(bytes.NewReader(exp.Bytes())))
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][]byte{"armored": exp.Bytes(), "binary": binExp} {
		dir := filepath.Join(t.TempDir(), "dev2")
		if _, err := Import(bytes.NewReader(in), "wrong", dir, "device two", false); !errors.Is(err, ErrPassphrase) {
			t.Fatalf("%s: wrong export passphrase: %v", name, err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s: failed import created %s", name, dir)
		}
		if _, err := Import(bytes.NewReader(in), "moving day", dir, "device two", false); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		dst, err := Open(dir, "device two")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		st, err := dst.LoadState()
		if err != nil || string(st) != "prekeys and counters" || string(dst.Secrets()) != "identity" {
			t.Fatalf("%s: imported %q %q %v", name, dst.Secrets(), st, err)
		}
		if _, err := Open(dir, "device one"); !errors.Is(err, ErrPassphrase) {
			t.Fatalf("%s: old passphrase opens the import: %v", name, err)
		}
	}
}

func TestImportRefusesExistingUnlessForced(t *testing.T) {
	src := create(t, t.TempDir(), "pass", []byte("new identity"))
	var exp bytes.Buffer
	if err := src.Export(&exp, "xp"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	old := create(t, dir, "local", []byte("old identity"))
	old.SaveState([]byte("old state"))
	if _, err := Import(bytes.NewReader(exp.Bytes()), "xp", dir, "local", false); !errors.Is(err, ErrExists) {
		t.Fatalf("import over identity: %v", err)
	}
	s, err := Open(dir, "local")
	if err != nil || string(s.Secrets()) != "old identity" {
		t.Fatalf("after refused import: %v %q", err, s.Secrets())
	}
	if st, _ := s.LoadState(); string(st) != "old state" {
		t.Fatalf("state after refused import: %q", st)
	}
	if _, err := Import(bytes.NewReader(exp.Bytes()), "xp", dir, "local", true); err != nil {
		t.Fatalf("forced import: %v", err)
	}
	s, err = Open(dir, "local")
	if err != nil || string(s.Secrets()) != "new identity" {
		t.Fatalf("after forced import: %v %q", err, s.Secrets())
	}
	if st, err := s.LoadState(); err != nil || len(st) != 0 {
		t.Fatalf("state after forced import: %q %v", st, err)
	}
}

func TestImportRefusesGarbage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "x")
	for _, in := range []string{"", "hello", armor.Header + "\nAAAA\n", "age-encryption.org/v1\n-> scrypt AAAA 10\n\n--- x\n"} {
		if _, err := Import(strings.NewReader(in), "xp", dir, "pass", false); err == nil {
			t.Fatalf("Import(%q) succeeded", in)
		}
	}
	// An age file for the right passphrase but not an export.
	var b bytes.Buffer
	if err := encryptTo(&b, "xp", []byte("just some file"), testLogN); err != nil {
		t.Fatal(err)
	}
	if _, err := Import(&b, "xp", dir, "pass", false); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("non-export: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("failed imports created the directory")
	}
}

// TestKillDuringSaves runs this test binary as a child that saves 1 MiB
// states in a loop; after it reported some saves, the parent waits until a
// temporary state file exists (a save in progress) and kills the child
// with SIGKILL. Each time the store opens, the state is whole and at least
// as new as the last save the child reported done, and Open removes the
// leftover. Rounds go on until two kills left a temporary file (at most
// 20 rounds); none at all fails the test.
func TestKillDuringSaves(t *testing.T) {
	dir := t.TempDir()
	create(t, dir, "pass", []byte("k"))
	var last uint64
	midWrite := 0
	round := 0
	for ; round < 20 && midWrite < 2; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envLoopDir+"="+dir, envLoopPass+"=pass")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		reported := 0
		for reported < 3 && sc.Scan() {
			n, err := strconv.ParseUint(sc.Text(), 10, 64)
			if err != nil || n <= last {
				cmd.Process.Kill()
				t.Fatalf("child printed %q after %d", sc.Text(), last)
			}
			last = n
			reported++
		}
		if reported < 3 {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child stopped after %d saves: %s", reported, stderr.String())
		}
		// The pipe must keep draining or the child blocks on a print.
		lastc := make(chan uint64, 1)
		go func() {
			l := last
			for sc.Scan() {
				if n, err := strconv.ParseUint(sc.Text(), 10, 64); err == nil {
					l = n
				}
			}
			lastc <- l
		}()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			if hasTemp(t, dir) {
				break
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		werr := cmd.Wait()
		last = <-lastc
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("child not killed: %v %s", werr, stderr.String())
		}
		if hasTemp(t, dir) {
			midWrite++
		}

		s, err := Open(dir, "pass")
		if err != nil {
			t.Fatalf("round %d: Open: %v", round, err)
		}
		st, err := s.LoadState()
		if err != nil {
			t.Fatalf("round %d: LoadState: %v", round, err)
		}
		n, err := checkLoopState(st)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if n != last && n != last+1 {
			t.Fatalf("round %d: state %d, last reported save %d", round, n, last)
		}
		last = n
		if hasTemp(t, dir) {
			t.Fatalf("round %d: Open left a temporary file", round)
		}
	}
	if midWrite == 0 {
		t.Fatalf("no kill in %d rounds landed during a write", round)
	}
	t.Logf("%d rounds, %d kills during a write", round, midWrite)
}

func hasTemp(t *testing.T, dir string) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "."+StateFile) {
			return true
		}
	}
	return false
}

func FuzzOpenState(f *testing.F) {
	key := bytes.Repeat([]byte{7}, 32)
	for _, st := range [][]byte{nil, []byte("state"), make([]byte, 300)} {
		sealed, err := sealState(key, st)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(sealed)
	}
	f.Add([]byte("sslm-st\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := openState(key, data)
		if err != nil {
			if !errors.Is(err, ErrStateCorrupt) || st != nil {
				t.Fatalf("error %v with state %q", err, st)
			}
			return
		}
		if len(st) != len(data)-stateOverhead {
			t.Fatalf("%d-byte file opened to %d bytes", len(data), len(st))
		}
	})
}

func FuzzParseExport(f *testing.F) {
	p := append(append([]byte(nil), exportMagic...), make([]byte, masterSize)...)
	p = binary.BigEndian.AppendUint32(p, 3)
	p = append(p, "abc"...)
	p = binary.BigEndian.AppendUint32(p, 2)
	p = append(p, "st"...)
	f.Add(p)
	f.Add(exportMagic)
	f.Fuzz(func(t *testing.T, data []byte) {
		master, secrets, state, err := parseExport(data)
		if err != nil {
			return
		}
		again := append(append([]byte(nil), exportMagic...), master...)
		again = binary.BigEndian.AppendUint32(again, uint32(len(secrets)))
		again = append(again, secrets...)
		again = binary.BigEndian.AppendUint32(again, uint32(len(state)))
		again = append(again, state...)
		if !bytes.Equal(again, data) || len(master) != masterSize || len(secrets) == 0 {
			t.Fatalf("parse of %x is not its inverse", data)
		}
	})
}

func FuzzParseIdentity(f *testing.F) {
	f.Add(append(append([]byte(nil), identityMagic...), make([]byte, masterSize+1)...))
	f.Add(identityMagic)
	f.Fuzz(func(t *testing.T, data []byte) {
		master, secrets, err := parseIdentity(data)
		if err != nil {
			return
		}
		if len(master) != masterSize || len(secrets) == 0 || !bytes.Equal(append(append(append([]byte(nil), identityMagic...), master...), secrets...), data) {
			t.Fatalf("parse of %x is not its inverse", data)
		}
	})
}

// BenchmarkOpenWorkFactor measures Open (one scrypt, r=8, p=1: 2^logN
// × 1 KiB of memory) of a store written at each candidate work factor.
func BenchmarkOpenWorkFactor(b *testing.B) {
	defer func() { scryptLogN = testLogN }()
	for _, logN := range []int{15, 16, 17, 18} {
		scryptLogN = logN
		dir := b.TempDir()
		if _, err := Create(dir, "pass", []byte("k")); err != nil {
			b.Fatal(err)
		}
		b.Run("logN="+strconv.Itoa(logN), func(b *testing.B) {
			for b.Loop() {
				if _, err := Open(dir, "pass"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpenDefaultWorkFactor measures Open (one scrypt at the
// production work factor, 256 MiB) and SaveState of a 64 KiB state.
func BenchmarkOpenDefaultWorkFactor(b *testing.B) {
	scryptLogN = WorkFactor
	defer func() { scryptLogN = testLogN }()
	dir := b.TempDir()
	if _, err := Create(dir, "pass", []byte("k")); err != nil {
		b.Fatal(err)
	}
	b.Run("Open", func(b *testing.B) {
		for b.Loop() {
			if _, err := Open(dir, "pass"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("SaveState64KiB", func(b *testing.B) {
		s, err := Open(dir, "pass")
		if err != nil {
			b.Fatal(err)
		}
		st := make([]byte, 64<<10)
		b.SetBytes(int64(len(st)))
		for b.Loop() {
			if err := s.SaveState(st); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// After a log-in password change the store follows: the new passphrase
// opens it, the old one no longer does, the state is untouched; a store
// with a passphrase of its own is left alone.
func TestRekey(t *testing.T) {
	dir := t.TempDir()
	s := create(t, dir, "old password", []byte("identity secrets"))
	if err := s.SaveState([]byte("state")); err != nil {
		t.Fatal(err)
	}
	if err := s.Rekey("not the passphrase", "new password"); !errors.Is(err, ErrPassphrase) {
		t.Fatalf("rekey with a wrong old passphrase: %v", err)
	}
	if _, err := Open(dir, "old password"); err != nil {
		t.Fatalf("a refused rekey changed the store: %v", err)
	}
	if err := s.Rekey("old password", "new password"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, "old password"); !errors.Is(err, ErrPassphrase) {
		t.Fatalf("the old passphrase still opens the store: %v", err)
	}
	s2, err := Open(dir, "new password")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := s2.LoadState(); err != nil || string(st) != "state" || string(s2.Secrets()) != "identity secrets" {
		t.Fatalf("after rekey: state %q, %v, secrets %q", st, err, s2.Secrets())
	}
	if err := checkPrivate(filepath.Join(dir, IdentityFile), FileMode, false); err != nil {
		t.Fatal(err)
	}
	if err := s.Rekey("new password", ""); !errors.Is(err, ErrEmptyPassphrase) {
		t.Fatalf("empty new passphrase: %v", err)
	}
}
