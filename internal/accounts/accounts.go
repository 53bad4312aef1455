// Package accounts is SSL-Messager's account store: a users.csv file with a
// header row and one row per user, loaded into memory at Open and extended
// by durable appends.
//
// A Store owns its file: only one Store (in one process) may have a given
// users.csv open at a time.
//
// Identity is case-insensitive: "Alice" and "alice" are one account (see
// wire.FoldName), while the name is kept as registered. The name and
// password rules are wire.CheckUserName and wire.CheckPassword. Passwords
// are stored as bcrypt hashes.
//
// # Durability
//
// An account returned by Create without error has been written and fsynced,
// so it survives a crash; a Create that returns an error (also one racing
// with Close) has written no row. Rows are only ever appended, and a crash
// during an append can only leave an unterminated last line: Open skips it
// with a warning and repairs the file. Every other malformed line, the last
// one included when it ends in a newline, is an error naming the file and
// line. Before any rewrite (today only that repair) the previous file is
// copied, fsynced, to users.csv.bak next to it. An empty (0-byte) file is a
// new store: Open writes the header row into it.
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
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gocarina/gocsv"
	"golang.org/x/crypto/bcrypt"

	"sslmessager/internal/durable"
	"sslmessager/internal/wire"
)

// DefaultCost is the bcrypt cost used for new hashes when Options.Cost is
// zero.
const DefaultCost = 10

// BackupSuffix is appended to the account file's path to name the copy of
// the previous file that is kept before any rewrite.
const BackupSuffix = ".bak"

// Roles an account can have.
const (
	roleUser  = "user"
	roleAdmin = "admin"
)

// Errors returned by the store and the validators. Test with errors.Is.
var (
	// ErrInvalidName means a user name breaks the naming rules. It is
	// wire.ErrUserName, so errors.Is matches either.
	ErrInvalidName = wire.ErrUserName
	// ErrReservedName means a user name is a command word. It is
	// wire.ErrReservedName.
	ErrReservedName = wire.ErrReservedName
	// ErrTaken means the name is already registered (case-insensitively).
	ErrTaken = errors.New("accounts: user name already taken")
	// ErrInvalidPassword means a password breaks the password rules. It is
	// wire.ErrPassword.
	ErrInvalidPassword = wire.ErrPassword
	// ErrBadCredentials means an unknown user or a wrong password; the two
	// cases are deliberately not distinguished.
	ErrBadCredentials = errors.New("accounts: bad user name or password")
)

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
	users   map[string]User     // wire.FoldName(name) -> committed user; must hold s.mu
	pending map[string]struct{} // names reserved by in-flight Creates; must hold s.mu
	closed  bool                // must hold s.mu
}

// Open loads the account file at path, creating it (with just the header
// row, mode 0600) if it does not exist or is empty. An unterminated last
// line, which only a crash during an append leaves, is skipped with a
// logged warning and removed from the file (after a copy of the file is
// kept in path+BackupSuffix); any other malformed content is an error
// naming the file and line, and the file is left as it is.
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

	// A crash during a rewrite leaves its temporary file: never read, so
	// it goes.
	if err := durable.RemoveTemps(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) || err == nil && len(data) == 0:
		// A new store. An empty file holds nothing to back up.
		if err := saveUsers(path, nil); err != nil {
			return nil, fmt.Errorf("accounts: create: %w", err)
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
				"file", path, "line", torn.line, "reason", torn.reason, "backup", path+BackupSuffix)
			if err := rewrite(path, data, users); err != nil {
				return nil, fmt.Errorf("accounts: repair: %w", err)
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
		s.users[wire.FoldName(u.Name)] = u
	}
	return s, nil
}

// Create registers a new account with role "user". It checks name
// (ErrInvalidName, ErrReservedName) and password (ErrInvalidPassword),
// reserves the name (ErrTaken if it exists in any case), hashes the
// password, appends the row and fsyncs the file. Only then is the account
// visible to Lookup and Authenticate. A Create racing with Close either
// returns nil with the row fsynced or an error matching os.ErrClosed with
// no row written.
func (s *Store) Create(name, password string) (User, error) {
	if err := wire.CheckUserName(name); err != nil {
		return User{}, err
	}
	if err := wire.CheckPassword(password); err != nil {
		return User{}, err
	}
	key := wire.FoldName(name)

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

// followRenameLocked makes sure appends go to the file now at s.path: an
// operator who edits users.csv by hand and saves it by renaming a new file
// over it leaves s.f on the old, unlinked file, where a sign-up would be
// written and then lost at the next Reload. When the two differ, the file
// at the path is opened for appending in place of the old one. Must hold
// s.fileMu.
func (s *Store) followRenameLocked() error {
	open, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	now, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	if os.SameFile(open, now) {
		return nil
	}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	s.log.Info("accounts: users.csv was replaced on disk; appending to the new file", "file", s.path)
	s.f.Close()
	s.f = f
	return nil
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
	if err := s.followRenameLocked(); err != nil {
		return err
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
	if len(password) > wire.MaxPasswordBytes {
		return User{}, ErrBadCredentials
	}
	s.mu.RLock()
	u, ok := s.users[wire.FoldName(name)]
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
	u, ok := s.users[wire.FoldName(name)]
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
// in file order and, if the last line is unterminated (torn by a crash
// during an append), a description of it. A newline-terminated line that
// fails to parse is an error wherever it is.
func parseFile(path string, data []byte) ([]User, *tornRow, error) {
	lineErr := func(line int, format string, args ...any) error {
		return fmt.Errorf("accounts: %s:%d: %s", path, line, fmt.Sprintf(format, args...))
	}

	var torn *tornRow
	body := data
	lastNL := bytes.LastIndexByte(data, '\n')
	if lastNL < 0 {
		// The header is written whole by an atomic rename, never appended:
		// an unterminated first line is damage, not a torn append.
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
			return nil, nil, lineErr(lineNo, "%v", err)
		}
		key := wire.FoldName(u.Name)
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
	if err := wire.CheckUserName(u.Name); err != nil {
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

// saveUsers atomically replaces path with a users.csv (mode 0600) holding
// the header and users.
func saveUsers(path string, users []User) error {
	if users == nil {
		users = []User{}
	}
	return durable.WriteFile(path, 0o600, func(w io.Writer) error {
		return gocsv.MarshalCSV(users, gocsv.NewSafeCSVWriter(csv.NewWriter(w)))
	})
}

// rewrite replaces the account file at path, whose current content is old,
// with one holding users, after keeping old in path+BackupSuffix. Both
// writes are atomic and fsynced, so after a crash at any point path holds
// either the old or the new content, and a backup exists once path has
// changed.
func rewrite(path string, old []byte, users []User) error {
	if err := durable.WriteFile(path+BackupSuffix, 0o600, func(w io.Writer) error {
		_, err := w.Write(old)
		return err
	}); err != nil {
		return fmt.Errorf("back up: %w", err)
	}
	return saveUsers(path, users)
}
