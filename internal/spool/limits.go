package spool

import (
	"errors"
	"fmt"
)

// Defaults of Options. The server's flags show the same values.
const (
	// DefaultMaxFileSize is the largest single file accepted when
	// Options.MaxFileSize is 0.
	DefaultMaxFileSize = 1 << 30 // 1 GiB
	// DefaultQuota is the per-recipient limit on bytes queued (committed plus
	// reserved by uploads in progress) when Options.Quota is 0.
	DefaultQuota = 10 << 30 // 10 GiB
	// DefaultMaxQueuedFiles is the per-recipient limit on the number of
	// files queued (committed plus uploads in progress) when
	// Options.MaxQueuedFiles is 0.
	DefaultMaxQueuedFiles = 1000
	// DefaultMinFreeDisk is the free space, in bytes, that uploads must
	// leave on the spool's file system when Options.MinFreeDisk is 0: room
	// for the accounts file, the logs and the rest of the system.
	DefaultMinFreeDisk = 1 << 30 // 1 GiB
	// NoLimit, as the value of a limit in Options that takes it, turns the
	// limit off.
	NoLimit = -1
)

// Errors returned by the spool. They may be wrapped with more detail; test
// with errors.Is.
var (
	// ErrTooLarge: the file is, or grows, larger than the maximum file size.
	ErrTooLarge = errors.New("spool: file too large")
	// ErrQuota: the recipient's queue has no room for the file's bytes.
	ErrQuota = errors.New("spool: recipient quota exceeded")
	// ErrTooManyFiles: the recipient's queue holds the most files it may
	// (uploads in progress included).
	ErrTooManyFiles = errors.New("spool: too many files queued for the recipient")
	// ErrSpoolFull: the whole spool has no room for the file's bytes.
	ErrSpoolFull = errors.New("spool: spool is full")
	// ErrStorageFull: the file would leave less free disk space than the
	// floor (Options.MinFreeDisk).
	ErrStorageFull = errors.New("spool: free disk space is below the floor")
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

// usage is what one recipient's queue holds against the limits.
type usage struct {
	bytes int64 // committed plus reserved
	files int   // committed plus uploads in progress
}

// claim is what an upload asks of the limits at once.
type claim struct {
	bytes     int64 // against the quota and the spool's total
	files     int   // against the recipient's file count
	unwritten int64 // reserved bytes not yet on disk, held against the free space
	free      int64 // free bytes on the file system now; < 0: unknown, no check
}

// reserve takes c from the limits of the recipient key, or takes nothing
// and returns the first limit it breaks.
func (s *Spool) reserve(key string, c claim) error { return s.claim(key, c, false) }

// fits reports, as reserve would, whether c fits the limits now, and takes
// nothing.
func (s *Spool) fits(key string, c claim) error { return s.claim(key, c, true) }

func (s *Spool) claim(key string, c claim, dry bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.used[key]
	switch {
	case c.files > 0 && s.maxFiles > 0 && u.files+c.files > s.maxFiles:
		return fmt.Errorf("%w: %d files queued, limit %d", ErrTooManyFiles, u.files, s.maxFiles)
	case c.bytes > s.quota-u.bytes:
		return fmt.Errorf("%w: %d bytes used of %d", ErrQuota, u.bytes, s.quota)
	case s.maxTotal > 0 && c.bytes > s.maxTotal-s.total:
		return fmt.Errorf("%w: %d bytes used of %d", ErrSpoolFull, s.total, s.maxTotal)
	case s.minFree > 0 && c.free >= 0 && c.free-s.unwritten-c.bytes < s.minFree:
		// c.bytes is the declared size at Begin, or the chunk reserved
		// for data of unknown size; s.unwritten is what uploads in
		// progress reserved and have not written yet.
		return fmt.Errorf("%w: %d bytes free, %d promised to uploads, floor %d", ErrStorageFull, c.free, s.unwritten, s.minFree)
	}
	if dry {
		return nil
	}
	u.bytes += c.bytes
	u.files += c.files
	s.used[key] = u
	s.total += c.bytes
	s.unwritten += c.unwritten
	return nil
}

// release gives back what reserve took (or part of it).
func (s *Spool) release(key string, bytes int64, files int, unwritten int64) {
	if bytes == 0 && files == 0 && unwritten == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.used[key]
	u.bytes -= bytes
	u.files -= files
	s.total -= bytes
	s.unwritten -= unwritten
	if u.bytes <= 0 && u.files <= 0 {
		delete(s.used, key)
	} else {
		s.used[key] = u
	}
}

// wrote records that n reserved bytes reached the disk.
func (s *Spool) wrote(n int64) {
	s.mu.Lock()
	s.unwritten -= n
	s.mu.Unlock()
}

// freeSpace returns the bytes free for unprivileged use on the spool's
// file system, or -1 when there is no floor or the system cannot tell.
func (s *Spool) freeSpace() int64 {
	if s.minFree <= 0 {
		return -1
	}
	free, err := diskFree(s.dir)
	if err != nil {
		s.log.Warn("spool: cannot read free disk space; the floor is not checked", "dir", s.dir, "err", err)
		return -1
	}
	return free
}
