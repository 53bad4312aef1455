// Package spool keeps per-recipient file queues on disk: a sender uploads a
// file into the queue of a recipient, who lists, downloads and removes it
// later.
//
// # On-disk layout
//
//	dir/                      0700, the spool root
//	dir/.tmp/                 uploads in progress and metadata being written (random temp names, 0600)
//	dir/<recipient>/          0700, one per recipient, name folded to ASCII lower case
//	dir/<recipient>/<id>.data the file contents
//	dir/<recipient>/<id>.json its Meta, as JSON
//
// An id is 24 lower-case hex digits: 16 for the commit time in Unix
// nanoseconds (made strictly increasing within a process) followed by 8
// random ones, so sorting ids as strings sorts files oldest first. Files on
// disk are named only by id and recipient, both strictly validated
// (recipients follow wire.CheckUserName); the client-supplied file name is
// cleaned by wire.CleanFileName, cut to MaxNameBytes, and kept only in the
// metadata, so no client string ever becomes part of a path.
//
// # Crash safety
//
// A file is committed, and visible, exactly when dir/<r>/<id>.json exists
// next to its .data. Commit streams the upload into a temp file in .tmp and
// fsyncs it, writes the metadata to a second temp file in .tmp and fsyncs
// that, then renames the data into the recipient directory, then renames
// the metadata next to it (last: its presence makes the file visible), and
// finally fsyncs the recipient directory (a newly created recipient
// directory is fsynced into the root first). Renames within one file
// system are atomic, so after a crash at any point the disk holds some
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
// Once the metadata is renamed into place a reader can see the file, so
// Commit reports success from then on: if only the final directory fsync
// fails, the failure is logged and the file stays committed. (Reporting a
// failure for a file a reader may already have taken would make the sender
// send it again, a duplicate.) Remove deletes the .json first
// (un-committing the file) and then the .data; a crash in between leaves an
// orphan .data that the next Open deletes.
//
// # Limits
//
// Every upload is held against these limits from Begin on, so that
// concurrent uploads cannot together overshoot them: the maximum file size,
// the recipient's byte quota, the recipient's number of queued files
// (ErrTooManyFiles; the file counts from Begin), the bytes of the whole
// spool (ErrSpoolFull) and a floor of free disk space (ErrStorageFull,
// checked with statfs against the declared size and what other uploads in
// progress reserved but have not written yet). An upload of unknown size
// reserves its bytes as Write goes, 1 MiB ahead (or just what a write needs
// near a limit), and is checked against the byte limits and the floor with
// every reservation. The accounting lives in memory: Open
// recomputes it from the metadata, a failed or aborted upload releases its
// reservation, and a committed one keeps it until Remove.
package spool

import (
	"cmp"
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
	"strconv"
	"strings"
	"sync"
	"time"

	"sslmessager/internal/durable"
	"sslmessager/internal/wire"
)

// MaxNameBytes is the longest file name the spool stores, in bytes.
const MaxNameBytes = 255

// reserveChunk is how far ahead an upload of unknown size reserves bytes.
const reserveChunk = 1 << 20

// ErrUploadFinished is returned by Write, Commit and NewReader on an
// upload that was already committed or aborted.
var ErrUploadFinished = errors.New("spool: upload already finished")

const (
	tmpDirName   = ".tmp"
	dataSuffix   = ".data"
	metaSuffix   = ".json"
	idLen        = 24
	maxMetaBytes = 64 << 10 // metadata files are small; never read more
)

// Options configures a Spool. The zero value gives the defaults.
type Options struct {
	// MaxFileSize is the largest file accepted, in bytes; 0 means
	// DefaultMaxFileSize.
	MaxFileSize int64
	// Quota is the per-recipient limit on bytes queued; 0 means
	// DefaultQuota.
	Quota int64
	// MaxQueuedFiles is the per-recipient limit on the number of files
	// queued, uploads in progress included; 0 means DefaultMaxQueuedFiles,
	// NoLimit (or any negative value) means no limit.
	MaxQueuedFiles int
	// MaxTotalBytes is the limit on the bytes of the whole spool, all
	// recipients and uploads in progress together; 0 or negative means no
	// limit.
	MaxTotalBytes int64
	// MinFreeDisk is the free space, in bytes, an upload must leave on the
	// spool's file system; 0 means DefaultMinFreeDisk, NoLimit (or any
	// negative value) means no floor.
	MinFreeDisk int64
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
	// Name is the file name cleaned by wire.CleanFileName, at most
	// MaxNameBytes; metadata only.
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
	dir      string
	tmp      string
	maxFile  int64
	quota    int64
	maxFiles int   // 0: no limit
	maxTotal int64 // 0: no limit
	minFree  int64 // 0: no floor
	log      *slog.Logger
	now      func() time.Time

	mu        sync.Mutex
	used      map[string]usage // folded recipient -> committed + reserved; must hold s.mu
	total     int64            // sum of used bytes; must hold s.mu
	unwritten int64            // bytes reserved by uploads in progress and not yet written; must hold s.mu
	synced    map[string]bool  // recipient dirs known to be fsynced into dir; must hold s.mu
	lastNano  int64            // last time component handed out in an id; must hold s.mu
}

// Open opens (creating if needed) the spool rooted at dir and recovers it
// after a crash: it empties dir/.tmp, deletes .data files without .json and
// .json files without .data (and pairs whose metadata is unreadable or does
// not match the data), and recomputes every recipient's used bytes and
// file count.
func Open(dir string, opts Options) (*Spool, error) {
	if opts.MaxFileSize < 0 || opts.Quota < 0 {
		return nil, errors.New("spool: negative MaxFileSize or Quota")
	}
	s := &Spool{
		dir:      dir,
		tmp:      filepath.Join(dir, tmpDirName),
		maxFile:  cmp.Or(opts.MaxFileSize, DefaultMaxFileSize),
		quota:    cmp.Or(opts.Quota, DefaultQuota),
		maxFiles: max(cmp.Or(opts.MaxQueuedFiles, DefaultMaxQueuedFiles), 0),
		maxTotal: max(opts.MaxTotalBytes, 0),
		minFree:  max(cmp.Or(opts.MinFreeDisk, DefaultMinFreeDisk), 0),
		log:      opts.Logger,
		now:      opts.Now,
		used:     make(map[string]usage),
		synced:   make(map[string]bool),
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
		if !e.IsDir() || wire.CheckUserName(name) != nil || name != wire.FoldName(name) {
			s.log.Warn("spool: ignoring unexpected entry", "name", name)
			continue
		}
		u, err := s.recoverRecipient(name)
		if err != nil {
			return err
		}
		if u.files > 0 {
			s.used[name] = u
		}
		s.total += u.bytes
		s.synced[name] = true
	}
	return nil
}

func (s *Spool) recoverRecipient(r string) (usage, error) {
	rdir := filepath.Join(s.dir, r)
	ents, err := os.ReadDir(rdir)
	if err != nil {
		return usage{}, err
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

	var used usage
	orphans := 0
	for id, p := range ids {
		dataPath := filepath.Join(rdir, id+dataSuffix)
		metaPath := filepath.Join(rdir, id+metaSuffix)
		switch {
		case p.data && !p.meta:
			if err := removeIfExists(dataPath); err != nil {
				return usage{}, err
			}
			orphans++
			continue
		case p.meta && !p.data:
			if err := removeIfExists(metaPath); err != nil {
				return usage{}, err
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
				return usage{}, err
			}
			if err := removeIfExists(dataPath); err != nil {
				return usage{}, err
			}
			continue
		}
		used.bytes += m.Size
		used.files++
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
// until Commit. The file counts against the recipient's MaxQueuedFiles at
// once (ErrTooManyFiles). A known size is checked at once against the
// maximum file size (ErrTooLarge), the recipient's quota (ErrQuota), the
// spool's total (ErrSpoolFull) and the free-disk floor (ErrStorageFull);
// every size is reserved against those limits in chunks as Write goes, so
// that an upload holds only about what it sent, and a Write that no longer
// fits fails with the same errors. The caller must finish the upload with
// Commit or Abort.
func (s *Spool) Begin(sender, recipient, name string, size int64) (*Upload, error) {
	if wire.CheckUserName(sender) != nil {
		return nil, fmt.Errorf("%w: sender", ErrBadRecipient)
	}
	if wire.CheckUserName(recipient) != nil {
		return nil, ErrBadRecipient
	}
	if size > s.maxFile {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, size, s.maxFile)
	}
	key := wire.FoldName(recipient)
	declared := max(size, 0)
	free := s.freeSpace()
	// A declared size is checked whole now, so a file that cannot fit is
	// refused before its data is sent; but its bytes are reserved only as
	// they arrive (see Write), so an upload that declares much and sends
	// little holds no more of the shared limits than it sent.
	if err := s.fits(key, claim{bytes: declared, files: 1, unwritten: declared, free: free}); err != nil {
		return nil, err
	}
	first := min(declared, reserveChunk)
	if err := s.reserve(key, claim{bytes: first, files: 1, unwritten: first, free: free}); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(s.tmp, "up-*")
	if err != nil {
		s.release(key, first, 1, first)
		return nil, fmt.Errorf("spool: %w", err)
	}
	return &Upload{
		s:        s,
		key:      key,
		sender:   sender,
		name:     wire.CleanFileName(name, MaxNameBytes),
		declared: size,
		f:        f,
		wb:       durable.NewWriteBehind(f, false), // kept in the cache for the download
		tmpPath:  f.Name(),
		h:        sha256.New(),
		reserved: first,
		files:    1,
	}, nil
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
	name     string // cleaned
	declared int64  // < 0: unknown
	tmpPath  string
	h        hash.Hash

	mu       sync.Mutex
	f        *os.File             // nil once closed
	wb       *durable.WriteBehind // writes f, starting its write-out early
	written  int64
	reserved int64 // bytes held against the limits: written plus not yet written
	files    int   // 1 while the upload holds its place in the file count
	done     bool  // committed or aborted
	err      error // sticky Write error; the upload was aborted
}

// concurrentHashMin is the smallest Write whose hashing runs beside the
// file write rather than after it.
const concurrentHashMin = 64 << 10

// Write appends p to the upload and hashes it. It refuses (writing nothing)
// data that would exceed the declared size (ErrSizeMismatch) or the maximum
// file size (ErrTooLarge), or, for an upload of unknown size, the
// recipient's quota (ErrQuota), the spool's total (ErrSpoolFull) or the
// free-disk floor (ErrStorageFull). Any error aborts the upload: later
// Writes and Commit return the same error.
func (u *Upload) Write(p []byte) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err != nil {
		return 0, u.err
	}
	if u.done {
		return 0, ErrUploadFinished
	}
	n64 := int64(len(p))
	switch {
	case u.declared >= 0 && n64 > u.declared-u.written:
		return 0, u.fail(fmt.Errorf("%w: more than the declared %d bytes", ErrSizeMismatch, u.declared))
	case n64 > u.s.maxFile-u.written:
		return 0, u.fail(fmt.Errorf("%w: limit %d bytes", ErrTooLarge, u.s.maxFile))
	}
	if need := u.written + n64 - u.reserved; need > 0 {
		// Unknown size: reserve ahead in chunks, so that the limits and
		// the free space are checked once per chunk, not per write; near a
		// limit, reserve just what this write needs.
		limit := u.s.maxFile
		if u.declared >= 0 {
			limit = u.declared
		}
		chunk := max(need, min(reserveChunk, limit-u.reserved))
		err := u.s.reserve(u.key, claim{bytes: chunk, unwritten: chunk, free: u.s.freeSpace()})
		if err != nil && chunk > need {
			chunk = need
			err = u.s.reserve(u.key, claim{bytes: chunk, unwritten: chunk, free: u.s.freeSpace()})
		}
		if err != nil {
			return 0, u.fail(err)
		}
		u.reserved += chunk
	}
	var n int
	var err error
	if len(p) >= concurrentHashMin {
		// Hash while the kernel copies p into the page cache: each costs
		// about as much as the other, and the upload's reader is busy on
		// the other core only part of the time. A short write fails the
		// upload, so the hash of all of p does no harm then.
		var wg sync.WaitGroup
		wg.Go(func() { u.h.Write(p) })
		n, err = u.wb.Write(p)
		wg.Wait()
	} else {
		n, err = u.wb.Write(p)
		u.h.Write(p[:n])
	}
	u.written += int64(n)
	u.s.wrote(int64(n))
	if err != nil {
		return n, u.fail(fmt.Errorf("spool: %w", err))
	}
	return n, nil
}

// NewReader opens the upload's data for reading while it is still being
// written, so that it can be sent on as it arrives: bytes up to what Write
// has returned are readable (with ReadAt) at once. The file stays readable
// after Commit moves it into the queue and after Abort removes it; the
// caller closes it. It fails with ErrUploadFinished once the upload was
// committed or aborted.
func (u *Upload) NewReader() (*os.File, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done || u.err != nil {
		return nil, ErrUploadFinished
	}
	f, err := os.Open(u.tmpPath)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return f, nil
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
// upload is aborted and nothing appears in any queue. Once the file is
// visible Commit returns success, also when the last directory fsync fails
// (that is logged): see "Crash safety" in the package documentation.
func (u *Upload) Commit(wantSHA256 string) (Meta, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err != nil {
		return Meta{}, u.err
	}
	if u.done {
		return Meta{}, ErrUploadFinished
	}
	m, err := u.commit(wantSHA256)
	if err != nil {
		u.abortLocked()
		return Meta{}, err
	}
	u.done = true
	// The file keeps what it holds; a reservation made ahead goes back.
	excess := u.reserved - u.written
	u.s.release(u.key, excess, 0, excess)
	u.reserved = u.written
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
	// Visible from here on: a reader may have listed or even taken it.
	if err := durable.SyncDir(rdir); err != nil {
		s.log.Error("spool: file committed but its directory not synced; it may be lost in a crash",
			"recipient", u.key, "id", id, "err", err)
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
	known := s.synced[key]
	s.mu.Unlock()
	if known {
		return nil
	}
	if err := os.Mkdir(rdir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	// Whether we created it or another upload just did, sync the root so
	// the entry is on disk before our commit reports success.
	if err := durable.SyncDir(s.dir); err != nil {
		return err
	}
	s.mu.Lock()
	s.synced[key] = true
	s.mu.Unlock()
	return nil
}

// Abort discards the upload and releases its reservations. It is
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
	u.s.release(u.key, u.reserved, u.files, u.reserved-u.written)
	u.reserved, u.files = 0, 0
	return err
}

// List returns the metadata of the recipient's oldest committed files,
// oldest first, at most max of them (all if max <= 0), or nil if there are
// none. It reads only metadata and opens no data file: a caller that sends
// the files opens each with Open just before sending it and closes it
// after, so it never holds more than one open at a time.
func (s *Spool) List(recipient string, max int) ([]Meta, error) {
	if wire.CheckUserName(recipient) != nil {
		return nil, ErrBadRecipient
	}
	key := wire.FoldName(recipient)
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
		if max > 0 && len(out) == max {
			break
		}
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
	return out, nil
}

// Open opens the data of the recipient's committed file id for reading and
// returns it with its Meta. The caller closes the file. An id not in the
// exact format the spool generates, or a file removed meanwhile, is
// reported as ErrNotFound.
func (s *Spool) Open(recipient, id string) (*os.File, Meta, error) {
	if wire.CheckUserName(recipient) != nil {
		return nil, Meta{}, ErrBadRecipient
	}
	if !validID(id) {
		return nil, Meta{}, ErrNotFound
	}
	rdir := filepath.Join(s.dir, wire.FoldName(recipient))
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
// file stops being visible at once) and releases its bytes and its place
// in the file count. An id not in the exact format the spool generates is
// reported as ErrNotFound.
func (s *Spool) Remove(recipient, id string) error {
	if wire.CheckUserName(recipient) != nil {
		return ErrBadRecipient
	}
	if !validID(id) {
		return ErrNotFound
	}
	key := wire.FoldName(recipient)
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
	s.release(key, m.Size, 1, 0)
	if err := removeIfExists(filepath.Join(rdir, id+dataSuffix)); err != nil {
		// Un-committed already; the next Open removes the orphan.
		return fmt.Errorf("spool: %w", err)
	}
	if err := durable.SyncDir(rdir); err != nil {
		s.log.Warn("spool: fsync after remove", "recipient", key, "err", err)
	}
	return nil
}

// Used returns the recipient's queued bytes: committed files plus
// reservations of uploads in progress (an upload of unknown size reserves
// up to 1 MiB ahead of its data). It is 0 for an invalid name.
func (s *Spool) Used(recipient string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used[wire.FoldName(recipient)].bytes
}

// Queued returns the number of the recipient's files: committed ones plus
// uploads in progress. It is 0 for an invalid name.
func (s *Spool) Queued(recipient string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used[wire.FoldName(recipient)].files
}

// TotalBytes returns the bytes of the whole spool: committed files plus
// reservations of uploads in progress.
func (s *Spool) TotalBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// MaxQueuedFiles returns the per-recipient limit on queued files in force,
// 0 for none.
func (s *Spool) MaxQueuedFiles() int { return s.maxFiles }

// MaxFileSize returns the largest file accepted, in bytes.
func (s *Spool) MaxFileSize() int64 { return s.maxFile }

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

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
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

// RemoveAll removes every committed file queued for recipient (for an
// account that is deleted) and returns how many it removed. Uploads to the
// recipient still under way are not touched: their Commit will still
// queue them, so the caller deletes the account first (no new Begin can
// name it) and calls RemoveAll after.
func (s *Spool) RemoveAll(recipient string) (int, error) {
	metas, err := s.List(recipient, 0)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range metas {
		if err := s.Remove(recipient, m.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return n, err
		}
		n++
	}
	return n, nil
}
