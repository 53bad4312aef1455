// Package accounts is SSL-Messager's account store: a users.csv file with a
// header row and one row per user, loaded into memory at Open and extended
// by durable appends.
//
// A Store owns its file: only one Store (in one process) may have a given
// users.csv open at a time.
//
// Identity is case-insensitive: "Alice" and "alice" are one account (see
// Fold), while the name is kept as registered. Passwords are stored as bcrypt
// hashes. An account returned by Create without error has been written and
// fsynced, so it survives a crash; a row torn by a crash during an append is
// skipped and repaired by the next Open.
package accounts

import (
	"bytes"
	"crypto/rand"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gocarina/gocsv"
	"golang.org/x/crypto/bcrypt"
)

// Limits and defaults for names, passwords and hashing.
const (
	// MinNameLen is the shortest allowed user name, in bytes.
	MinNameLen = 1
	// MaxNameLen is the longest allowed user name, in bytes.
	MaxNameLen = 15
	// MinPasswordLen is the shortest allowed password, in bytes.
	MinPasswordLen = 8
	// MaxPasswordLen is the longest allowed password, in bytes (bcrypt's
	// limit).
	MaxPasswordLen = 72
	// DefaultCost is the bcrypt cost used for new hashes when Options.Cost
	// is zero.
	DefaultCost = 10
)

// Roles an account can have.
const (
	roleUser  = "user"
	roleAdmin = "admin"
)

// Errors returned by the store and the validators. Test with errors.Is.
var (
	// ErrInvalidName means a user name breaks the naming rules.
	ErrInvalidName = errors.New("accounts: invalid user name: use 1-15 ASCII letters, digits or '_'")
	// ErrReservedName means a user name is a reserved word.
	ErrReservedName = errors.New("accounts: user name is reserved")
	// ErrTaken means the name is already registered (case-insensitively).
	ErrTaken = errors.New("accounts: user name already taken")
	// ErrInvalidPassword means a password breaks the password rules.
	ErrInvalidPassword = errors.New("accounts: invalid password: use 8-72 bytes of UTF-8 without spaces or control characters")
	// ErrBadCredentials means an unknown user or a wrong password; the two
	// cases are deliberately not distinguished.
	ErrBadCredentials = errors.New("accounts: bad user name or password")
)

// reserved holds the folded words that cannot be user names.
var reserved = map[string]struct{}{
	"quit": {}, "status": {}, "toggle": {}, "admin": {}, "upload": {},
	"download": {}, "online": {}, "new_target": {}, "help": {}, "get": {},
	"group": {},
}

// header is the exact header row of users.csv, in column order.
var header = []string{"name", "password_hash", "created", "role"}

// User is one account row of users.csv.
type User struct {
	Name    string    `csv:"name"`          // as registered (case kept)
	Hash    string    `csv:"password_hash"` // bcrypt hash string (self-describing)
	Created time.Time `csv:"created"`       // RFC 3339, UTC
	Role    string    `csv:"role"`          // "user" (default) or "admin"
}

// Options configures Open.
type Options struct {
	// Cost is the bcrypt cost for new hashes; 0 means DefaultCost. It must
	// be within bcrypt.MinCost..bcrypt.MaxCost, else Open fails.
	Cost int
	// Logger receives warnings (never passwords or hashes); nil means
	// slog.Default().
	Logger *slog.Logger
}

// Store is an open users.csv. Its methods are safe for concurrent use.
//
// Lock rules: mu guards users, pending and closed; fileMu guards f and
// broken and serializes appends. The two are never held together, and
// neither is held while hashing. Hashing and comparing run under sem, which
// bounds concurrent bcrypt work to runtime.GOMAXPROCS(0).
type Store struct {
	path   string
	cost   int
	log    *slog.Logger
	dummy  []byte        // bcrypt hash of a random secret, for unknown users
	sem    chan struct{} // bcrypt slots
	fileMu sync.Mutex
	f      *os.File // opened O_APPEND; nil after Close; must hold s.fileMu
	broken error    // sticky: the file may hold a torn row; must hold s.fileMu

	mu      sync.RWMutex
	users   map[string]User     // Fold(name) -> committed user; must hold s.mu
	pending map[string]struct{} // names reserved by in-flight Creates; must hold s.mu
	closed  bool                // must hold s.mu
}

// Fold returns the identity key of a user name: its ASCII lower-case form.
// Non-ASCII bytes are left unchanged.
func Fold(name string) string {
	b := []byte(name)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}

// ValidateName reports whether name may be registered: 1 to 15 ASCII
// letters, digits or underscores (ErrInvalidName), and not a reserved word
// in any case (ErrReservedName).
func ValidateName(name string) error {
	if len(name) < MinNameLen || len(name) > MaxNameLen {
		return ErrInvalidName
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
		if !ok {
			return ErrInvalidName
		}
	}
	if _, bad := reserved[Fold(name)]; bad {
		return ErrReservedName
	}
	return nil
}

// ValidatePassword reports whether pw may be set as a password: valid UTF-8
// of 8 to 72 bytes with no spaces and no control characters (this includes
// bytes below 0x20, 0x7f, and Unicode space and control characters).
// Failures return ErrInvalidPassword.
func ValidatePassword(pw string) error {
	if len(pw) < MinPasswordLen || len(pw) > MaxPasswordLen || !utf8.ValidString(pw) {
		return ErrInvalidPassword
	}
	for _, r := range pw {
		if r < 0x20 || r == 0x7f || unicode.IsSpace(r) || unicode.IsControl(r) {
			return ErrInvalidPassword
		}
	}
	return nil
}

// Open loads the account file at path, creating it (with just the header
// row, mode 0600) if it does not exist. A torn last row left by a crash is
// skipped with a logged warning and removed from the file; any other
// malformed content is an error naming the file and line.
func Open(path string, opts Options) (*Store, error) {
	cost := opts.Cost
	if cost == 0 {
		cost = DefaultCost
	}
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("accounts: bcrypt cost %d out of range %d..%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}

	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := writeFileAtomic(path, nil); err != nil {
			return nil, fmt.Errorf("accounts: create %s: %w", path, err)
		}
		data = nil
	case err != nil:
		return nil, fmt.Errorf("accounts: %w", err)
	}

	var users []User
	if data != nil {
		var torn *tornRow
		users, torn, err = parseFile(path, data)
		if err != nil {
			return nil, err
		}
		if torn != nil {
			logger.Warn("accounts: skipping torn last row of account file",
				"file", path, "line", torn.line, "reason", torn.reason)
			if err := writeFileAtomic(path, users); err != nil {
				return nil, fmt.Errorf("accounts: repair %s: %w", path, err)
			}
		}
	}

	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte(rand.Text()), cost)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("accounts: dummy hash: %w", err)
	}

	s := &Store{
		path:    path,
		cost:    cost,
		log:     logger,
		dummy:   dummy,
		sem:     make(chan struct{}, max(1, runtime.GOMAXPROCS(0))),
		f:       f,
		users:   make(map[string]User, len(users)),
		pending: make(map[string]struct{}),
	}
	for _, u := range users {
		s.users[Fold(u.Name)] = u
	}
	return s, nil
}

// Create registers a new account with role "user". It validates name and
// password, reserves the name (ErrTaken if it exists in any case), hashes
// the password, appends the row and fsyncs the file. Only then is the
// account visible to Lookup and Authenticate.
func (s *Store) Create(name, password string) (User, error) {
	if err := ValidateName(name); err != nil {
		return User{}, err
	}
	if err := ValidatePassword(password); err != nil {
		return User{}, err
	}
	key := Fold(name)

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return User{}, errClosed()
	}
	_, exists := s.users[key]
	_, inFlight := s.pending[key]
	if exists || inFlight {
		s.mu.Unlock()
		return User{}, ErrTaken
	}
	s.pending[key] = struct{}{}
	s.mu.Unlock()

	committed := false
	defer func() {
		if !committed {
			s.mu.Lock()
			delete(s.pending, key)
			s.mu.Unlock()
		}
	}()

	s.sem <- struct{}{}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cost)
	<-s.sem
	if err != nil {
		return User{}, fmt.Errorf("accounts: hash password: %w", err)
	}

	u := User{
		Name:    name,
		Hash:    string(hash),
		Created: time.Now().UTC().Truncate(time.Second),
		Role:    roleUser,
	}
	if err := s.appendRow(u); err != nil {
		return User{}, err
	}

	s.mu.Lock()
	delete(s.pending, key)
	s.users[key] = u
	s.mu.Unlock()
	committed = true
	return u, nil
}

// appendRow writes u as one CSV row at the end of the file and fsyncs it.
// If the write or the fsync fails, it truncates the file back to its former
// size; if that fails too, the store refuses further appends so that no row
// can be glued onto a torn one.
func (s *Store) appendRow(u User) error {
	var buf bytes.Buffer
	w := gocsv.NewSafeCSVWriter(csv.NewWriter(&buf))
	if err := gocsv.MarshalCSVWithoutHeaders([]User{u}, w); err != nil {
		return fmt.Errorf("accounts: encode row: %w", err)
	}

	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	if s.f == nil {
		return errClosed()
	}
	if s.broken != nil {
		return fmt.Errorf("accounts: %s unusable until reopened: %w", s.path, s.broken)
	}
	fi, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	_, err = s.f.Write(buf.Bytes())
	if err == nil {
		err = s.f.Sync()
	}
	if err != nil {
		if terr := s.f.Truncate(fi.Size()); terr != nil {
			s.broken = err
		} else if serr := s.f.Sync(); serr != nil {
			s.broken = err
		}
		return fmt.Errorf("accounts: append to %s: %w", s.path, err)
	}
	return nil
}

// Authenticate checks name (case-insensitively) and password and returns
// the account as registered. An unknown user and a wrong password both give
// ErrBadCredentials and take about the same time. The password rules are
// not checked, except that more than 72 bytes always fails.
func (s *Store) Authenticate(name, password string) (User, error) {
	if len(password) > MaxPasswordLen {
		return User{}, ErrBadCredentials
	}
	s.mu.RLock()
	u, ok := s.users[Fold(name)]
	s.mu.RUnlock()

	hash := s.dummy
	if ok {
		hash = []byte(u.Hash)
	}
	s.sem <- struct{}{}
	err := bcrypt.CompareHashAndPassword(hash, []byte(password))
	<-s.sem
	if !ok || err != nil {
		return User{}, ErrBadCredentials
	}
	return u, nil
}

// Lookup returns the account registered under name, compared
// case-insensitively.
func (s *Store) Lookup(name string) (User, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.users[Fold(name)]
	return u, ok
}

// Len returns the number of registered accounts.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.users)
}

// Close closes the file. Later Creates fail with an error matching
// os.ErrClosed; Lookup, Len and Authenticate keep answering from memory.
// Closing twice is a no-op.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()

	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	if err != nil {
		return fmt.Errorf("accounts: close %s: %w", s.path, err)
	}
	return nil
}

func errClosed() error {
	return fmt.Errorf("accounts: store closed: %w", os.ErrClosed)
}

// tornRow describes a skipped last row.
type tornRow struct {
	line   int
	reason string
}

// parseFile parses the whole content of users.csv. It returns the good rows
// in file order and, if the last row is torn (unterminated, or the last
// terminated row fails to parse), a description of it.
func parseFile(path string, data []byte) ([]User, *tornRow, error) {
	lineErr := func(line int, format string, args ...any) error {
		return fmt.Errorf("accounts: %s:%d: %s", path, line, fmt.Sprintf(format, args...))
	}

	var torn *tornRow
	body := data
	lastNL := bytes.LastIndexByte(data, '\n')
	if lastNL < 0 {
		return nil, nil, lineErr(1, "bad header: missing or unterminated (want %q)", strings.Join(header, ","))
	}
	if lastNL != len(data)-1 {
		body = data[:lastNL+1]
	}
	lines := strings.Split(string(body[:len(body)-1]), "\n")
	if len(body) != len(data) {
		torn = &tornRow{line: len(lines) + 1, reason: "unterminated last line"}
	}

	hdr, err := splitRecord(lines[0])
	if err != nil || !slices.Equal(hdr, header) {
		return nil, nil, lineErr(1, "bad header: want %q", strings.Join(header, ","))
	}

	users := make([]User, 0, len(lines)-1)
	firstLine := make(map[string]int, len(lines)-1)
	for i := 1; i < len(lines); i++ {
		lineNo := i + 1
		u, err := parseRow(lines[i])
		if err != nil {
			if i == len(lines)-1 && torn == nil {
				torn = &tornRow{line: lineNo, reason: err.Error()}
				break
			}
			return nil, nil, lineErr(lineNo, "%v", err)
		}
		key := Fold(u.Name)
		if prev, dup := firstLine[key]; dup {
			return nil, nil, lineErr(lineNo, "duplicate user name %q (first on line %d)", u.Name, prev)
		}
		firstLine[key] = lineNo
		users = append(users, u)
	}
	return users, torn, nil
}

// splitRecord parses one CSV line into exactly one record.
func splitRecord(line string) ([]string, error) {
	r := csv.NewReader(strings.NewReader(line))
	r.FieldsPerRecord = len(header)
	rec, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("empty line")
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("bad CSV: %w", err)
	}
	if _, err := r.Read(); !errors.Is(err, io.EOF) {
		return nil, errors.New("bad CSV: more than one record")
	}
	return rec, nil
}

// rowReader feeds fixed rows to gocsv.
type rowReader struct{ rows [][]string }

// Read returns the next row or io.EOF.
func (r *rowReader) Read() ([]string, error) {
	if len(r.rows) == 0 {
		return nil, io.EOF
	}
	row := r.rows[0]
	r.rows = r.rows[1:]
	return row, nil
}

// ReadAll returns the remaining rows.
func (r *rowReader) ReadAll() ([][]string, error) {
	rows := r.rows
	r.rows = nil
	return rows, nil
}

// parseRow decodes and checks one data line. Its errors never include the
// password hash.
func parseRow(line string) (User, error) {
	rec, err := splitRecord(line)
	if err != nil {
		return User{}, err
	}
	var out []User
	if err := gocsv.UnmarshalCSV(&rowReader{rows: [][]string{header, rec}}, &out); err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) && pe.Column >= 1 && pe.Column <= len(header) {
			return User{}, fmt.Errorf("bad %s value", header[pe.Column-1])
		}
		return User{}, errors.New("cannot decode row")
	}
	if len(out) != 1 {
		return User{}, errors.New("cannot decode row")
	}
	u := out[0]
	if err := ValidateName(u.Name); err != nil {
		return User{}, fmt.Errorf("user name %q: %w", u.Name, err)
	}
	if _, err := bcrypt.Cost([]byte(u.Hash)); err != nil {
		return User{}, fmt.Errorf("user %q: malformed password hash", u.Name)
	}
	if u.Created.IsZero() {
		return User{}, fmt.Errorf("user %q: missing created time", u.Name)
	}
	u.Created = u.Created.UTC()
	switch u.Role {
	case "":
		u.Role = roleUser
	case roleUser, roleAdmin:
	default:
		return User{}, fmt.Errorf("user %q: unknown role %q", u.Name, u.Role)
	}
	return u, nil
}

// writeFileAtomic replaces path with a users.csv holding the header and
// users: it writes a temporary file (mode 0600) in the same directory,
// fsyncs it, renames it over path and fsyncs the directory.
func writeFileAtomic(path string, users []User) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()
	if err = tmp.Chmod(0o600); err != nil {
		return err
	}
	var buf bytes.Buffer
	if users == nil {
		users = []User{}
	}
	if err = gocsv.MarshalCSV(users, gocsv.NewSafeCSVWriter(csv.NewWriter(&buf))); err != nil {
		return err
	}
	if _, err = tmp.Write(buf.Bytes()); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmpName, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir fsyncs a directory so that a rename or create in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil {
		return serr
	}
	return cerr
}
