package durable

import "golang.org/x/sys/unix"

// hint starts the write-out of what was written since the last hint and,
// with drop, waits for the write-out of what lies more than two steps
// back and drops it from the page cache.
func (w *WriteBehind) hint() {
	fd := int(w.f.Fd())
	_ = unix.SyncFileRange(fd, w.started, w.off-w.started, unix.SYNC_FILE_RANGE_WRITE)
	w.started = w.off
	if !w.drop {
		return
	}
	end := w.started - 2*WriteBehindStep
	if end-w.dropped < 2*WriteBehindStep {
		return
	}
	_ = unix.SyncFileRange(fd, w.dropped, end-w.dropped,
		unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
	_ = unix.Fadvise(fd, w.dropped, end-w.dropped, unix.FADV_DONTNEED)
	w.dropped = end
}
