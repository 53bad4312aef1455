package durable

import "os"

// WriteBehindStep is how much data a WriteBehind lets pile up in the page
// cache before it asks the kernel to start writing it to the disk.
const WriteBehindStep = 8 << 20

// WriteBehind writes a new file front to back and has the kernel write its
// data to the disk while the writing goes on (on Linux, sync_file_range
// every WriteBehindStep bytes), so that the File.Sync at the end, which
// still has to be called and is still what makes the data durable, waits
// for the last few megabytes only. With drop, the ranges already on the
// disk also leave the page cache (keeping a few steps' worth): the file
// then reuses the same few pages of memory rather than taking one new page
// per 4 KiB written, which on a machine whose spare memory is not already
// in use costs as much as the copy itself, and it does not push other data
// out of the cache. Use drop for a file nobody reads back soon (a
// download). Elsewhere than Linux a WriteBehind only writes.
//
// The hints never fail the write: their errors are ignored, and a disk
// error shows at the Sync.
type WriteBehind struct {
	f       *os.File
	drop    bool
	off     int64 // bytes written
	started int64 // bytes whose write-out was started
	dropped int64 // bytes dropped from the cache
}

// NewWriteBehind wraps f, which must be written from offset 0 onwards
// through the WriteBehind only.
func NewWriteBehind(f *os.File, drop bool) *WriteBehind {
	return &WriteBehind{f: f, drop: drop}
}

// Write writes p to the file (os.File.Write's errors) and passes the hints.
func (w *WriteBehind) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if err == nil && w.off-w.started >= WriteBehindStep {
		w.hint()
	}
	return n, err
}
