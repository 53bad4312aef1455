// Package keydir is the server's key directory on disk: one published key
// bundle per user, and an append-only log of every change.
//
// The directory holds NAME.key for each user with a bundle (NAME is the
// user name in lower case; the file holds the bundle word and a newline)
// and keys.log. A bundle is replaced atomically (durable.WriteFile: a
// crash leaves the old bundle or the new one, never a mix) and a removal
// fsyncs the directory. Every change is first appended to keys.log and
// fsynced, one line per change:
//
//	time=2026-11-30T10:00:00.123456789Z user=alice action=set new=SHA256HEX old=SHA256HEX
//
// with "-" for "no bundle" and action set, remove (the account was
// deleted) or undo (a change logged just before could not be made, or was
// taken back: new and old are the other way round). The hashes are
// SHA-256 of the bundle words, so the log shows when a user's key changed
// without holding the keys. keys.log is opened for each change, so an
// operator may rotate it by renaming it.
//
// The store checks only a bundle's shape (wire.ValidBundle); checking its
// signature and its owner is the caller's job. Every bundle is kept in
// memory as well: a fetch never touches the disk.
package keydir

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"sslmessager/internal/durable"
	"sslmessager/internal/wire"
)

// Defaults of Options.
const (
	// DefaultMaxChangesPerHour is how many times one user may change its
	// bundle within any hour.
	DefaultMaxChangesPerHour = 10
	// NoLimit, as Options.MaxChangesPerHour, turns the limit off.
	NoLimit = -1
	// LogFile is the name of the change log in the store's directory.
	LogFile = "keys.log"
)

const (
	keySuffix = ".key"
	// changeWindow is the window of Options.MaxChangesPerHour.
	changeWindow = time.Hour
	// sweepAt is how many users' recent changes are remembered before a
	// change drops those of every user whose last one is out of the
	// window.
	sweepAt = 1024
)

// Errors of Set and Remove.
var (
	// ErrInvalid: a name that is no user name, or a bundle word of the
	// wrong shape.
	ErrInvalid = errors.New("keydir: invalid user or bundle")
	// ErrTooManyChanges: the user changed its bundle
	// Options.MaxChangesPerHour times within the last hour. It is wrapped
	// in a *RateError that says how long to wait.
	ErrTooManyChanges = errors.New("keydir: too many key changes")
)

// RateError refuses a change for ErrTooManyChanges: the next one is
// allowed after Wait.
type RateError struct{ Wait time.Duration }

func (e *RateError) Error() string {
	return fmt.Sprintf("%v, the next is allowed in %v", ErrTooManyChanges, e.Wait.Round(time.Second))
}

func (e *RateError) Unwrap() error { return ErrTooManyChanges }

// Options shape a Store. Zero values take the defaults.
type Options struct {
	// MaxChangesPerHour bounds how many times one user may change its
	// bundle within any hour (NoLimit: no bound). Publishing the bundle
	// a user already has is no change and does not count. The count is
	// kept in memory: a restart forgets it.
	MaxChangesPerHour int
	Logger            *slog.Logger
	Now               func() time.Time // nil: time.Now
}

// Store is a directory of key bundles. It is safe for concurrent use.
// Changes are made one at a time (writeMu); reads never wait for a
// change's disk writes.
type Store struct {
	dir  string
	opts Options
	log  *slog.Logger

	writeMu sync.Mutex // serializes changes: held during their disk I/O

	mu      sync.Mutex
	bundles map[string]string      // guarded by mu; by file name stem
	recent  map[string][]time.Time // guarded by mu; times of each user's changes within changeWindow, oldest first
}

// Open opens the store in dir, creating it (0700) if needed. It removes
// temporary files a crash left and reads every bundle. A bundle file that
// is not a bundle word, or whose name is no user name, is an error that
// names it: the operator removes it (the user then publishes again).
func Open(dir string, opts Options) (*Store, error) {
	if opts.MaxChangesPerHour == 0 {
		opts.MaxChangesPerHour = DefaultMaxChangesPerHour
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("key directory: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("key directory: %w", err)
	}
	s := &Store{dir: dir, opts: opts, log: opts.Logger, bundles: make(map[string]string), recent: make(map[string][]time.Time)}
	for _, e := range entries {
		name := e.Name()
		switch {
		case durable.IsTemp(name):
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return nil, fmt.Errorf("key directory: %w", err)
			}
		case strings.HasSuffix(name, keySuffix):
			k := strings.TrimSuffix(name, keySuffix)
			if st, err := stem(k); err != nil || st != k || !e.Type().IsRegular() {
				return nil, fmt.Errorf("key directory: %s: not a user's bundle file (remove it)", filepath.Join(dir, name))
			}
			b, err := readBundle(filepath.Join(dir, name))
			if err != nil {
				return nil, fmt.Errorf("key directory: %w", err)
			}
			s.bundles[k] = b
		}
	}
	return s, nil
}

// readBundle reads one bundle file: a bundle word and a newline.
func readBundle(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, wire.MaxBundleBytes+2))
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	b, ok := strings.CutSuffix(string(data), "\n")
	if !ok || !wire.ValidBundle(b) {
		return "", fmt.Errorf("%s: not a bundle word and a newline (remove it; its user publishes again)", path)
	}
	return b, nil
}

// stem is the file name stem of a user: its name in lower case, which
// must follow the user-name rule.
func stem(name string) (string, error) {
	if err := wire.CheckUserName(name); err != nil {
		return "", fmt.Errorf("%w: user %q: %v", ErrInvalid, name, err)
	}
	return wire.FoldName(name), nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// Len is how many users have a bundle.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bundles)
}

// Get returns the bundle of user (any case), and false if there is none
// or user is no user name. It never touches the disk.
func (s *Store) Get(user string) (string, bool) {
	k, err := stem(user)
	if err != nil {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.bundles[k]
	return b, ok
}

// Hash is how keys.log names a bundle: the hex SHA-256 of its word, or
// "-" for "".
func Hash(bundle string) string {
	if bundle == "" {
		return "-"
	}
	h := sha256.Sum256([]byte(bundle))
	return hex.EncodeToString(h[:])
}

// Set makes bundle user's bundle, durably, and logs the change. It
// reports whether anything changed: setting the bundle a user already has
// changes nothing, logs nothing and is never refused for the rate.
// Errors: ErrInvalid, a *RateError (ErrTooManyChanges), or a disk error
// after which the old bundle stays.
func (s *Store) Set(user, bundle string) (changed bool, err error) {
	k, err := stem(user)
	if err != nil {
		return false, err
	}
	if !wire.ValidBundle(bundle) {
		return false, fmt.Errorf("%w: bundle word of %d bytes", ErrInvalid, len(bundle))
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	now := s.opts.Now()
	s.mu.Lock()
	old := s.bundles[k]
	if old == bundle {
		s.mu.Unlock()
		return false, nil
	}
	if wait, ok := s.allowLocked(k, now); !ok {
		s.mu.Unlock()
		return false, &RateError{Wait: wait}
	}
	s.mu.Unlock()

	if err := s.appendLog(now, user, "set", bundle, old); err != nil {
		return false, err
	}
	err = durable.WriteFile(s.path(k), 0o600, func(w io.Writer) error {
		_, err := io.WriteString(w, bundle+"\n")
		return err
	})
	if err != nil {
		s.undo(user, bundle, old)
		return false, fmt.Errorf("key directory: %w", err)
	}
	s.mu.Lock()
	s.bundles[k] = bundle
	s.recent[k] = append(s.recent[k], now)
	s.mu.Unlock()
	return true, nil
}

// allowLocked drops k's changes older than changeWindow and reports
// whether k may change once more at now, or how long until it may. Must
// hold s.mu.
func (s *Store) allowLocked(k string, now time.Time) (time.Duration, bool) {
	if len(s.recent) >= sweepAt {
		for u, times := range s.recent {
			if now.Sub(times[len(times)-1]) >= changeWindow {
				delete(s.recent, u)
			}
		}
	}
	times := s.recent[k]
	i := 0
	for i < len(times) && now.Sub(times[i]) >= changeWindow {
		i++
	}
	times = times[i:]
	if len(times) == 0 {
		delete(s.recent, k)
	} else {
		s.recent[k] = times
	}
	if s.opts.MaxChangesPerHour == NoLimit || len(times) < s.opts.MaxChangesPerHour {
		return 0, true
	}
	return times[len(times)-s.opts.MaxChangesPerHour].Add(changeWindow).Sub(now), false
}

// Remove removes user's bundle, if it has one, durably, and logs it with
// action "remove". It reports whether there was one.
func (s *Store) Remove(user string) (bool, error) { return s.remove(user, "", "remove") }

// RemoveIf removes user's bundle only if it is still bundle, and logs it
// with action "undo": it takes back a Set that must not stand (the
// account was deleted while it ran). It reports whether it removed it.
func (s *Store) RemoveIf(user, bundle string) (bool, error) {
	if bundle == "" {
		return false, nil
	}
	return s.remove(user, bundle, "undo")
}

func (s *Store) remove(user, only, action string) (bool, error) {
	k, err := stem(user)
	if err != nil {
		return false, nil // no user name has no bundle
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	old, ok := s.bundles[k]
	s.mu.Unlock()
	if !ok || only != "" && old != only {
		return false, nil
	}
	if err := s.appendLog(s.opts.Now(), user, action, "", old); err != nil {
		return false, err
	}
	if err := os.Remove(s.path(k)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.undo(user, "", old)
		return false, fmt.Errorf("key directory: %w", err)
	}
	if err := durable.SyncDir(s.dir); err != nil {
		// The file is gone from the directory as seen now; a crash may
		// bring it back, which the next removal handles.
		s.log.Error("key directory: removal not synced", "user", user, "err", err)
	}
	s.mu.Lock()
	delete(s.bundles, k)
	s.mu.Unlock()
	return true, nil
}

// undo logs that a change just logged (old -> now) was not made.
func (s *Store) undo(user, now, old string) {
	if err := s.appendLog(s.opts.Now(), user, "undo", old, now); err != nil {
		s.log.Error("key directory: a change that failed cannot be logged as undone", "user", user, "err", err)
	}
}

func (s *Store) path(k string) string { return filepath.Join(s.dir, k+keySuffix) }

// appendLog appends one change to keys.log and fsyncs it (and, when it
// creates the file, the directory).
func (s *Store) appendLog(now time.Time, user, action, newBundle, oldBundle string) error {
	path := filepath.Join(s.dir, LogFile)
	_, statErr := os.Lstat(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("key directory: %w", err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "time=%s user=%s action=%s new=%s old=%s\n",
		now.UTC().Format(time.RFC3339Nano), user, action, Hash(newBundle), Hash(oldBundle))
	err = w.Flush()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && statErr != nil {
		err = durable.SyncDir(s.dir)
	}
	if err != nil {
		return fmt.Errorf("key directory: %s: %w", path, err)
	}
	return nil
}
