// Package spool keeps per-recipient file queues on disk: a sender uploads a
// file into the queue of a recipient, who lists, downloads and removes it
// later.
//
// # On-disk layout
//
//	dir/                      0700, the spool root
//	dir/.tmp/                 uploads in progress (random temp names, 0600)
//	dir/<recipient>/          0700, one per recipient, name folded to ASCII lower case
//	dir/<recipient>/<id>.data the file contents
//	dir/<recipient>/<id>.json its Meta, as JSON
//
// An id is 24 lower-case hex digits: 16 for the commit time in Unix
// nanoseconds (made strictly increasing within a process) followed by 8
// random ones, so sorting ids as strings sorts files oldest first. Files on
// disk are named only by id and recipient, both strictly validated; the
// client-supplied file name is sanitized (see SanitizeName) and kept only in
// the metadata, so no client string ever becomes part of a path.
//
// # Crash safety
//
// A file is committed, and visible, exactly when dir/<r>/<id>.json exists
// next to its .data. Commit streams the upload into a temp file in .tmp,
// fsyncs it, writes the metadata to a second temp file and fsyncs that, then
// renames the data into the recipient directory, then renames the metadata
// next to it, and finally fsyncs the recipient directory (a newly created
// recipient directory is fsynced into the root first). Renames within one
// file system are atomic, so after a crash at any point the disk holds some
// prefix of these steps, possibly with the two renames reordered by the
// file system if the crash came before the final directory fsync:
//
//   - temp files in .tmp: the upload never committed; Open deletes all of .tmp;
//   - <id>.data without <id>.json: crash between the renames; Open deletes it;
//   - <id>.json without <id>.data: only possible if the file system persisted
//     the second rename but not the first; Open deletes it;
//   - both present: the contents were fsynced before either rename, so the
//     file is complete, and Open counts it.
//
// Commit reports success only after the directory fsync, so a reported
// success survives a crash. Remove deletes the .json first (un-committing
// the file) and then the .data; a crash in between leaves an orphan .data
// that the next Open deletes.
//
// Quota accounting lives in memory: Open recomputes it from the metadata,
// Begin reserves the declared size (uploads of unknown size reserve as they
// write), a failed or aborted upload releases its reservation, and a
// committed one keeps it until Remove.
package spool

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

const (
	// DefaultMaxFileSize is the largest single file accepted when
	// Options.MaxFileSize is 0.
	DefaultMaxFileSize = 1 << 30 // 1 GiB
	// DefaultQuota is the per-recipient limit on bytes queued (committed plus
	// reserved by uploads in progress) when Options.Quota is 0.
	DefaultQuota = 10 << 30 // 10 GiB
	// MaxNameBytes is the longest sanitized file name, in bytes.
	MaxNameBytes = 255
)

// Errors returned by the spool. They may be wrapped with more detail; test
// with errors.Is.
var (
	// ErrTooLarge: the file is, or grows, larger than the maximum file size.
	ErrTooLarge = errors.New("spool: file too large")
	// ErrQuota: the recipient's queue has no room for the file.
	ErrQuota = errors.New("spool: recipient quota exceeded")
	// ErrSizeMismatch: the bytes written differ from the declared size.
	ErrSizeMismatch = errors.New("spool: size does not match declared size")
	// ErrHashMismatch: the SHA-256 of the bytes written differs from the
	// expected one.
	ErrHashMismatch = errors.New("spool: sha256 mismatch")
	// ErrNotFound: no committed file with that id in that queue.
	ErrNotFound = errors.New("spool: file not found")
	// ErrBadRecipient: a recipient (or sender) is not a valid user name.
	ErrBadRecipient = errors.New("spool: invalid user name")
)

// errFinished is returned by Write and Commit on an upload that was already
// committed or aborted.
var errFinished = errors.New("spool: upload already finished")

const (
	tmpDirName   = ".tmp"
	dataSuffix   = ".data"
	metaSuffix   = ".json"
	idLen        = 24
	maxUserBytes = 64
	maxMetaBytes = 64 << 10 // metadata files are small; never read more
	maxExtBytes  = 16       // extensions up to this long survive SanitizeName's cut
)

// Options configures a Spool. The zero value gives the defaults.
type Options struct {
	// MaxFileSize is the largest file accepted, in bytes; 0 means
	// DefaultMaxFileSize.
	MaxFileSize int64
	// Quota is the per-recipient limit on bytes queued; 0 means
	// DefaultQuota.
	Quota int64
	// Logger receives recovery and housekeeping messages; nil discards them.
	Logger *slog.Logger
	// Now is the clock used for ids and Meta.Time; nil means time.Now.
	Now func() time.Time
}

// Meta describes one committed file. It is stored as <id>.json next to the
// data.
type Meta struct {
	// ID names the file in its queue; ids sort oldest first.
	ID string `json:"id"`
	// Sender is the user name of the uploader, as given to Begin.
	Sender string `json:"sender"`
	// Recipient is the recipient's user name folded to lower case.
	Recipient string `json:"recipient"`
	// Name is the sanitized file name (see SanitizeName); metadata only.
	Name string `json:"name"`
	// Size is the length of the data in bytes.
	Size int64 `json:"size"`
	// SHA256 is the lower-case hex SHA-256 of the data.
	SHA256 string `json:"sha256"`
	// Time is when the file was committed (UTC).
	Time time.Time `json:"time"`
}

// Spool is a set of per-recipient file queues rooted in one directory. It
// is safe for concurrent use; a directory must be used by one Spool at a
// time.
type Spool struct {
	dir     string
	tmp     string
	maxFile int64
	quota   int64
	log     *slog.Logger
	now     func() time.Time

	mu       sync.Mutex
	used     map[string]int64 // folded recipient -> committed + reserved bytes
	durable  map[string]bool  // recipient dirs known to be fsynced into dir
	lastNano int64            // last time component handed out in an id
}

// Open opens (creating if needed) the spool rooted at dir and recovers it
// after a crash: it empties dir/.tmp, deletes .data files without .json and
// .json files without .data (and pairs whose metadata is unreadable or does
// not match the data), and recomputes every recipient's used bytes.
func Open(dir string, opts Options) (*Spool, error) {
	if opts.MaxFileSize < 0 || opts.Quota < 0 {
		return nil, errors.New("spool: negative MaxFileSize or Quota")
	}
	s := &Spool{
		dir:     dir,
		tmp:     filepath.Join(dir, tmpDirName),
		maxFile: opts.MaxFileSize,
		quota:   opts.Quota,
		log:     opts.Logger,
		now:     opts.Now,
		used:    make(map[string]int64),
		durable: make(map[string]bool),
	}
	if s.maxFile == 0 {
		s.maxFile = DefaultMaxFileSize
	}
	if s.quota == 0 {
		s.quota = DefaultQuota
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if err := os.MkdirAll(s.tmp, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	// The root may have existed with looser permissions; the queues are
	// private to the server.
	for _, d := range []string{dir, s.tmp} {
		if err := os.Chmod(d, 0o700); err != nil {
			s.log.Warn("spool: cannot restrict permissions", "dir", d, "err", err)
		}
	}
	if err := s.recover(); err != nil {
		return nil, fmt.Errorf("spool: recovery: %w", err)
	}
	return s, nil
}

// recover runs at Open, before the Spool is shared, so it needs no locking.
func (s *Spool) recover() error {
	ents, err := os.ReadDir(s.tmp)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(s.tmp, e.Name())); err != nil {
			return err
		}
	}
	if len(ents) > 0 {
		s.log.Info("spool: removed interrupted uploads", "count", len(ents))
	}

	top, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	for _, e := range top {
		name := e.Name()
		if name == tmpDirName {
			continue
		}
		if !e.IsDir() || !validUser(name) || name != foldUser(name) {
			s.log.Warn("spool: ignoring unexpected entry", "name", name)
			continue
		}
		used, err := s.recoverRecipient(name)
		if err != nil {
			return err
		}
		s.used[name] = used
		s.durable[name] = true
	}
	return nil
}

func (s *Spool) recoverRecipient(r string) (int64, error) {
	rdir := filepath.Join(s.dir, r)
	ents, err := os.ReadDir(rdir)
	if err != nil {
		return 0, err
	}
	type pair struct{ data, meta bool }
	ids := make(map[string]*pair)
	for _, e := range ents {
		name := e.Name()
		id, isData := strings.CutSuffix(name, dataSuffix)
		isMeta := false
		if !isData {
			id, isMeta = strings.CutSuffix(name, metaSuffix)
		}
		if (!isData && !isMeta) || !validID(id) || !e.Type().IsRegular() {
			s.log.Warn("spool: ignoring unexpected entry", "recipient", r, "name", name)
			continue
		}
		p := ids[id]
		if p == nil {
			p = new(pair)
			ids[id] = p
		}
		if isData {
			p.data = true
		} else {
			p.meta = true
		}
	}

	var used int64
	orphans := 0
	for id, p := range ids {
		dataPath := filepath.Join(rdir, id+dataSuffix)
		metaPath := filepath.Join(rdir, id+metaSuffix)
		switch {
		case p.data && !p.meta:
			if err := removeIfExists(dataPath); err != nil {
				return 0, err
			}
			orphans++
			continue
		case p.meta && !p.data:
			if err := removeIfExists(metaPath); err != nil {
				return 0, err
			}
			orphans++
			continue
		}
		m, err := readMeta(metaPath)
		var st fs.FileInfo
		if err == nil {
			st, err = os.Stat(dataPath)
		}
		if err == nil && (m.ID != id || m.Size != st.Size() || m.Size < 0) {
			err = errors.New("metadata does not match data")
		}
		if err != nil {
			s.log.Warn("spool: removing corrupt file", "recipient", r, "id", id, "err", err)
			if err := removeIfExists(metaPath); err != nil {
				return 0, err
			}
			if err := removeIfExists(dataPath); err != nil {
				return 0, err
			}
			continue
		}
		used += m.Size
		if nano, err := strconv.ParseUint(id[:16], 16, 64); err == nil && int64(nano) > s.lastNano {
			s.lastNano = int64(nano)
		}
	}
	if orphans > 0 {
		s.log.Info("spool: removed half-committed files", "recipient", r, "count", orphans)
	}
	return used, nil
}

// Begin starts an upload of a file called name from sender to recipient.
// size is the exact length the caller will write, or negative if unknown
// until Commit. A known size is checked against the maximum file size
// (ErrTooLarge) and reserved against the recipient's quota (ErrQuota) at
// once; an unknown size is reserved as Write goes. The caller must finish
// the upload with Commit or Abort.
func (s *Spool) Begin(sender, recipient, name string, size int64) (*Upload, error) {
	if !validUser(sender) {
		return nil, fmt.Errorf("%w: sender", ErrBadRecipient)
	}
	if !validUser(recipient) {
		return nil, ErrBadRecipient
	}
	if size > s.maxFile {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, size, s.maxFile)
	}
	key := foldUser(recipient)
	reserve := max(size, 0)
	if err := s.reserve(key, reserve); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(s.tmp, "up-*")
	if err != nil {
		s.release(key, reserve)
		return nil, fmt.Errorf("spool: %w", err)
	}
	return &Upload{
		s:        s,
		key:      key,
		sender:   sender,
		name:     SanitizeName(name),
		declared: size,
		f:        f,
		tmpPath:  f.Name(),
		h:        sha256.New(),
		reserved: reserve,
	}, nil
}

// reserve adds n bytes to the recipient's usage if that stays within quota.
func (s *Spool) reserve(key string, n int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n > s.quota-s.used[key] {
		return fmt.Errorf("%w: %d bytes used of %d", ErrQuota, s.used[key], s.quota)
	}
	s.used[key] += n
	return nil
}

func (s *Spool) release(key string, n int64) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used[key] -= n
	if s.used[key] <= 0 {
		delete(s.used, key)
	}
}

// newID returns a fresh id and the time it stands for. The time component
// is strictly increasing within the Spool, so ids sort in commit order.
func (s *Spool) newID() (string, time.Time) {
	now := s.now()
	nano := max(now.UnixNano(), 0)
	s.mu.Lock()
	if nano <= s.lastNano {
		nano = s.lastNano + 1
	}
	s.lastNano = nano
	s.mu.Unlock()
	var rnd [4]byte
	rand.Read(rnd[:]) // never fails (crypto/rand guarantees it)
	return fmt.Sprintf("%016x%s", uint64(nano), hex.EncodeToString(rnd[:])), now.UTC().Round(0)
}

// Upload is a file being written into a queue, created by Spool.Begin. Its
// methods may be called from different goroutines but are serialized.
type Upload struct {
	s        *Spool
	key      string // folded recipient
	sender   string
	name     string // sanitized
	declared int64  // < 0: unknown
	tmpPath  string
	h        hash.Hash

	mu       sync.Mutex
	f        *os.File // nil once closed
	written  int64
	reserved int64 // bytes held against the recipient's quota
	done     bool  // committed or aborted
	err      error // sticky Write error; the upload was aborted
}

// Write appends p to the upload and hashes it. It refuses (writing nothing)
// data that would exceed the declared size (ErrSizeMismatch) or the maximum
// file size (ErrTooLarge), or, for an upload of unknown size, the
// recipient's quota (ErrQuota). Any error aborts the upload: later Writes
// and Commit return the same error.
func (u *Upload) Write(p []byte) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err != nil {
		return 0, u.err
	}
	if u.done {
		return 0, errFinished
	}
	n64 := int64(len(p))
	switch {
	case u.declared >= 0 && n64 > u.declared-u.written:
		return 0, u.fail(fmt.Errorf("%w: more than the declared %d bytes", ErrSizeMismatch, u.declared))
	case n64 > u.s.maxFile-u.written:
		return 0, u.fail(fmt.Errorf("%w: limit %d bytes", ErrTooLarge, u.s.maxFile))
	}
	if u.declared < 0 && n64 > 0 {
		if err := u.s.reserve(u.key, n64); err != nil {
			return 0, u.fail(err)
		}
		u.reserved += n64
	}
	n, err := u.f.Write(p)
	u.h.Write(p[:n])
	u.written += int64(n)
	if err != nil {
		return n, u.fail(fmt.Errorf("spool: %w", err))
	}
	return n, nil
}

// fail records err as the upload's sticky error and aborts it.
func (u *Upload) fail(err error) error {
	u.err = err
	u.abortLocked()
	return err
}

// Commit finishes the upload: it checks the size against the declared one
// (ErrSizeMismatch) and, if wantSHA256 is not "", the hash against it,
// ignoring case (ErrHashMismatch); then it makes the file durable and
// visible in the recipient's queue and returns its Meta. On any error the
// upload is aborted and nothing appears in any queue.
func (u *Upload) Commit(wantSHA256 string) (Meta, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err != nil {
		return Meta{}, u.err
	}
	if u.done {
		return Meta{}, errFinished
	}
	m, err := u.commit(wantSHA256)
	if err != nil {
		u.abortLocked()
		return Meta{}, err
	}
	u.done = true
	return m, nil
}

func (u *Upload) commit(want string) (Meta, error) {
	if u.declared >= 0 && u.written != u.declared {
		return Meta{}, fmt.Errorf("%w: wrote %d of %d bytes", ErrSizeMismatch, u.written, u.declared)
	}
	sum := hex.EncodeToString(u.h.Sum(nil))
	if want != "" && !strings.EqualFold(want, sum) {
		return Meta{}, fmt.Errorf("%w: got %s", ErrHashMismatch, sum)
	}
	if err := u.f.Sync(); err != nil {
		return Meta{}, fmt.Errorf("spool: %w", err)
	}
	err := u.f.Close()
	u.f = nil
	if err != nil {
		return Meta{}, fmt.Errorf("spool: %w", err)
	}

	s := u.s
	id, now := s.newID()
	m := Meta{
		ID:        id,
		Sender:    u.sender,
		Recipient: u.key,
		Name:      u.name,
		Size:      u.written,
		SHA256:    sum,
		Time:      now,
	}
	metaTmp, err := writeTempMeta(s.tmp, m)
	if err != nil {
		return Meta{}, fmt.Errorf("spool: %w", err)
	}
	rdir := filepath.Join(s.dir, u.key)
	if err := s.ensureRecipientDir(u.key, rdir); err != nil {
		os.Remove(metaTmp)
		return Meta{}, fmt.Errorf("spool: %w", err)
	}
	dataPath := filepath.Join(rdir, id+dataSuffix)
	metaPath := filepath.Join(rdir, id+metaSuffix)
	if err := os.Rename(u.tmpPath, dataPath); err != nil {
		os.Remove(metaTmp)
		return Meta{}, fmt.Errorf("spool: %w", err)
	}
	if err := os.Rename(metaTmp, metaPath); err != nil {
		os.Remove(metaTmp)
		os.Remove(dataPath)
		return Meta{}, fmt.Errorf("spool: %w", err)
	}
	if err := syncDir(rdir); err != nil {
		os.Remove(metaPath)
		os.Remove(dataPath)
		return Meta{}, fmt.Errorf("spool: %w", err)
	}
	return m, nil
}

// writeTempMeta writes m as JSON to a fresh fsynced temp file in dir and
// returns its path.
func writeTempMeta(dir string, m Meta) (string, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, "meta-*")
	if err != nil {
		return "", err
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// ensureRecipientDir creates rdir if needed and makes sure its entry in the
// root is durable before any file is committed into it.
func (s *Spool) ensureRecipientDir(key, rdir string) error {
	s.mu.Lock()
	known := s.durable[key]
	s.mu.Unlock()
	if known {
		return nil
	}
	if err := os.Mkdir(rdir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	// Whether we created it or another upload just did, sync the root so
	// the entry is on disk before our commit reports success.
	if err := syncDir(s.dir); err != nil {
		return err
	}
	s.mu.Lock()
	s.durable[key] = true
	s.mu.Unlock()
	return nil
}

// Abort discards the upload and releases its quota reservation. It is
// idempotent and a no-op after Commit.
func (u *Upload) Abort() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return nil
	}
	return u.abortLocked()
}

func (u *Upload) abortLocked() error {
	u.done = true
	if u.f != nil {
		u.f.Close()
		u.f = nil
	}
	err := removeIfExists(u.tmpPath)
	u.s.release(u.key, u.reserved)
	u.reserved = 0
	return err
}

// List returns the metadata of the recipient's committed files, oldest
// first, or nil if there are none.
func (s *Spool) List(recipient string) ([]Meta, error) {
	if !validUser(recipient) {
		return nil, ErrBadRecipient
	}
	key := foldUser(recipient)
	rdir := filepath.Join(s.dir, key)
	ents, err := os.ReadDir(rdir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	var out []Meta
	for _, e := range ents { // ReadDir sorts by name, hence by id
		id, ok := strings.CutSuffix(e.Name(), metaSuffix)
		if !ok || !validID(id) {
			continue
		}
		m, err := readMeta(filepath.Join(rdir, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil || m.ID != id {
			s.log.Warn("spool: skipping unreadable metadata", "recipient", key, "id", id, "err", err)
			continue
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Meta) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Open opens the data of the recipient's committed file id for reading and
// returns it with its Meta. The caller closes the file. An id not in the
// exact format the spool generates is reported as ErrNotFound.
func (s *Spool) Open(recipient, id string) (*os.File, Meta, error) {
	if !validUser(recipient) {
		return nil, Meta{}, ErrBadRecipient
	}
	if !validID(id) {
		return nil, Meta{}, ErrNotFound
	}
	rdir := filepath.Join(s.dir, foldUser(recipient))
	m, err := readMeta(filepath.Join(rdir, id+metaSuffix))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Meta{}, ErrNotFound
	}
	if err != nil {
		return nil, Meta{}, fmt.Errorf("spool: %w", err)
	}
	f, err := os.Open(filepath.Join(rdir, id+dataSuffix))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Meta{}, ErrNotFound // removed meanwhile
	}
	if err != nil {
		return nil, Meta{}, fmt.Errorf("spool: %w", err)
	}
	return f, m, nil
}

// Remove deletes the recipient's committed file id (metadata first, so the
// file stops being visible at once) and releases its bytes from the quota.
// An id not in the exact format the spool generates is reported as
// ErrNotFound.
func (s *Spool) Remove(recipient, id string) error {
	if !validUser(recipient) {
		return ErrBadRecipient
	}
	if !validID(id) {
		return ErrNotFound
	}
	key := foldUser(recipient)
	rdir := filepath.Join(s.dir, key)
	metaPath := filepath.Join(rdir, id+metaSuffix)
	m, err := readMeta(metaPath)
	if errors.Is(err, fs.ErrNotExist) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	// Of concurrent Removes of one id only one deletes the metadata; only
	// that one releases the bytes.
	if err := os.Remove(metaPath); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return ErrNotFound
		}
		return fmt.Errorf("spool: %w", err)
	}
	s.release(key, m.Size)
	if err := removeIfExists(filepath.Join(rdir, id+dataSuffix)); err != nil {
		// Un-committed already; the next Open removes the orphan.
		return fmt.Errorf("spool: %w", err)
	}
	if err := syncDir(rdir); err != nil {
		s.log.Warn("spool: fsync after remove", "recipient", key, "err", err)
	}
	return nil
}

// Used returns the recipient's queued bytes: committed files plus
// reservations of uploads in progress. It is 0 for an invalid name.
func (s *Spool) Used(recipient string) int64 {
	if !validUser(recipient) {
		return 0
	}
	key := foldUser(recipient)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used[key]
}

func readMeta(path string) (Meta, error) {
	f, err := os.Open(path)
	if err != nil {
		return Meta{}, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMetaBytes+1))
	if err != nil {
		return Meta{}, err
	}
	if len(b) > maxMetaBytes {
		return Meta{}, errors.New("metadata file too large")
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return Meta{}, err
	}
	return m, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// validUser reports whether s is 1..64 bytes of ASCII letters, digits and
// underscores.
func validUser(s string) bool {
	if len(s) == 0 || len(s) > maxUserBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// foldUser lower-cases a valid user name (ASCII only).
func foldUser(s string) string {
	return strings.ToLower(s)
}

// validID reports whether id is exactly idLen lower-case hex digits.
func validID(id string) bool {
	if len(id) != idLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// SanitizeName turns a client-supplied file name into one that is safe as
// a single path element and safe to print. It keeps the part after the
// last '/' or '\' (ignoring trailing ones), drops control and format
// characters (Unicode Cc, Cf, which include bidi overrides such as U+202E,
// and the line and paragraph separators Zl, Zp), replaces invalid UTF-8
// with U+FFFD, and trims white space and dots at both ends. An empty result
// becomes "file". Names longer than MaxNameBytes are cut on a rune boundary,
// keeping an extension of up to 16 bytes. SanitizeName is idempotent.
func SanitizeName(name string) string {
	name = strings.TrimRight(name, `/\`)
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	var b strings.Builder
	for _, r := range name { // invalid UTF-8 yields utf8.RuneError = U+FFFD
		if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) {
			continue
		}
		b.WriteRune(r)
	}
	name = trimName(b.String())
	if name == "" || name == "." || name == ".." {
		return "file"
	}
	if len(name) <= MaxNameBytes {
		return name
	}
	if i := strings.LastIndexByte(name, '.'); i > 0 && len(name)-i <= maxExtBytes {
		ext := name[i:]
		return cutRunes(name[:i], MaxNameBytes-len(ext)) + ext
	}
	// The first rune survives the cut and is neither space nor dot, so the
	// result is not empty.
	return trimName(cutRunes(name, MaxNameBytes))
}

func trimName(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return r == '.' || unicode.IsSpace(r) })
}

// cutRunes returns the longest prefix of s of at most n bytes that ends on
// a rune boundary.
func cutRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
