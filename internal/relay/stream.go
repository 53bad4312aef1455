package relay

import (
	"errors"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"sslmessager/internal/accounts"
	"sslmessager/internal/spool"
	"sslmessager/internal/wire"
)

// Streaming a file to a recipient who is online (sslm/2 only; PROTOCOL.md,
// "Streamed files"). The upload writes to the spool as always and never
// waits for the recipient: the recipient's writer goroutine reads the
// bytes already written from the upload's temp file (woken by the upload
// after each write), so the server holds one buffer per stream whatever
// the file's size. At the end it sends the SHA-256 once the upload is
// committed and fsynced, and the client confirms with ACKF as for a
// download; if the upload breaks off it sends STREAMABORT. A recipient
// that disconnects or falls behind loses nothing: the file is queued.

// liveState is where a streamable upload stands.
type liveState int

const (
	liveRunning    liveState = iota
	liveCommitting           // Commit under way: the file may already be visible in the queue
	liveCommitted            // queued; meta is set
	liveAborted              // broke off or failed: nothing is queued
)

// liveUpload is a sized upload in progress, as its recipient's sessions
// see it.
type liveUpload struct {
	up     *spool.Upload
	key    string // recipient, folded
	name   string // cleaned as the spool keeps it
	sender string // as registered
	size   int64

	streamable bool                    // it has a size: a session may stream it
	owner      atomic.Pointer[session] // the session that streams it (claim)

	mu      sync.Mutex
	written int64         // guarded by mu; bytes the spool has taken
	state   liveState     // guarded by mu
	meta    spool.Meta    // guarded by mu; set when committed
	changed chan struct{} // guarded by mu; closed (and replaced) when written or state change
}

func newLiveUpload(up *spool.Upload, key, name, sender string, size int64) *liveUpload {
	return &liveUpload{up: up, key: key, name: name, sender: sender, size: size, streamable: size >= 0, changed: make(chan struct{})}
}

// claim makes c the one session that streams l, unless another session
// does. A session whose queue is closed (it is ending, or its connection
// broke) streams nothing more: its claim is void, so a stream it cut short
// or never began can go to another session of the recipient.
func (l *liveUpload) claim(c *session) bool {
	if !l.streamable {
		return false
	}
	for {
		cur := l.owner.Load()
		if cur != nil && !cur.out.isClosing() {
			return false
		}
		if l.owner.CompareAndSwap(cur, c) {
			return true
		}
	}
}

// signalLocked wakes whoever waits for a change. Must hold l.mu.
func (l *liveUpload) signalLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// wrote records n more bytes written to the spool.
func (l *liveUpload) wrote(n int) {
	if n <= 0 {
		return
	}
	l.mu.Lock()
	l.written += int64(n)
	l.signalLocked()
	l.mu.Unlock()
}

// setState moves the upload to s (committed with m). A finished upload
// stays finished.
func (l *liveUpload) setState(s liveState, m spool.Meta) {
	l.mu.Lock()
	if l.state < liveCommitted {
		l.state, l.meta = s, m
		l.signalLocked()
	}
	l.mu.Unlock()
}

// snapshot returns what the upload has written, its state, its metadata
// (when committed) and a channel that closes at its next change.
func (l *liveUpload) snapshot() (int64, liveState, spool.Meta, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.written, l.state, l.meta, l.changed
}

// liveUploads are the streamable uploads in progress, per recipient.
type liveUploads struct {
	mu sync.Mutex
	m  map[string][]*liveUpload // guarded by mu; recipient (folded) -> uploads, oldest first
}

func (u *liveUploads) add(l *liveUpload) {
	u.mu.Lock()
	if u.m == nil {
		u.m = make(map[string][]*liveUpload)
	}
	u.m[l.key] = append(u.m[l.key], l)
	u.mu.Unlock()
}

func (u *liveUploads) remove(l *liveUpload) {
	u.mu.Lock()
	// In place: every reader of a list clones it under u.mu.
	list := slices.DeleteFunc(u.m[l.key], func(x *liveUpload) bool { return x == l })
	if len(list) == 0 {
		delete(u.m, l.key)
	} else {
		u.m[l.key] = list
	}
	u.mu.Unlock()
}

// claimRunning claims, for c, the uploads to key that are still receiving
// data (not yet committing, so not in any list of queued files taken
// before) and not streamed to another session that goes on (claim); at
// most max.
func (u *liveUploads) claimRunning(c *session, key string, max int) []*liveUpload {
	u.mu.Lock()
	list := slices.Clone(u.m[key])
	u.mu.Unlock()
	var out []*liveUpload
	for _, l := range list {
		if len(out) == max {
			break
		}
		_, st, _, _ := l.snapshot()
		if st == liveRunning && l.claim(c) {
			out = append(out, l)
		}
	}
	return out
}

// startLive registers an upload to target, the account as looked up
// before the upload began, so that deleting the account aborts it
// (abortTo). A sized upload is also made streamable: it is offered to one
// session of the recipient that asked for pushes, and GETLIVE can claim
// it; one of unknown size (size < 0) is never streamed. The returned
// function ends it: committed with m when ok, else aborted.
func (c *session) startLive(up *spool.Upload, target accounts.User, name string, size int64) (l *liveUpload, finish func(ok bool, m spool.Meta)) {
	l = newLiveUpload(up, wire.FoldName(target.Name), wire.CleanFileName(name, spool.MaxNameBytes), c.user, size)
	c.srv.streams.add(l)
	finish = func(ok bool, m spool.Meta) {
		if ok {
			l.setState(liveCommitted, m)
		} else {
			l.setState(liveAborted, spool.Meta{})
		}
		c.srv.streams.remove(l)
	}
	// Deleted (and perhaps made again by someone else) since it was
	// looked up, before the deletion could find this upload registered:
	// nothing of it may reach whoever has the name now.
	if now, ok := c.srv.cfg.Accounts.Lookup(target.Name); !ok || now.Hash != target.Hash || !now.Created.Equal(target.Created) {
		l.abort()
		return l, finish
	}
	for _, r := range c.srv.hub.lookupKey(l.key) {
		if !r.ext || !r.push.Load() || !l.claim(r) {
			continue
		}
		if r.out.enqueueJob(&getJob{push: l}) == queued {
			break
		}
		l.owner.CompareAndSwap(r, nil) // that session is ending or full: try the next
	}
	return l, finish
}

// abort ends the upload for the account it was for was deleted: the spool
// refuses its further data and its Commit (the sender is told of a
// problem), and a stream of it ends with STREAMABORT.
func (l *liveUpload) abort() {
	l.up.Abort()
	l.setState(liveAborted, spool.Meta{})
}

// abortTo aborts the uploads to key (folded) under way: its account was
// deleted, and whoever signs up with the name next must get none of them.
func (u *liveUploads) abortTo(key string) {
	u.mu.Lock()
	list := slices.Clone(u.m[key])
	u.mu.Unlock()
	for _, l := range list {
		l.abort()
	}
}

// handlePush is PUSH token (sslm/2 only): uploads to this user that start
// from now on are streamed to a session that asked, as they arrive.
func (c *session) handlePush() bool {
	if !c.ext {
		c.fail(wire.ReasonProtocol, "PUSH without sslm/2", "PUSH")
		return false
	}
	c.push.Store(true)
	return true
}

// handleGetLive is GETLIVE token (sslm/2 only): CMD <get ack>, then the
// uploads to this user under way, streamed, all counted in one BEGIN.
func (c *session) handleGetLive() bool {
	if !c.ext {
		c.fail(wire.ReasonProtocol, "GETLIVE without sslm/2", "GETLIVE")
		return false
	}
	if c.srv.cfg.Spool == nil {
		c.send(lineBeginNone)
		c.send(lineSendComplete)
		return true
	}
	if c.out.enqueueJob(&getJob{ack: true, live: true}) == overflow {
		c.dropSlow()
		return false
	}
	return true
}

var (
	errStreamGone    = errors.New("relay: streamed file gone")
	errStreamAborted = errors.New("relay: streamed upload broke off")
)

// openLive opens l's data for streaming: the upload's temp file while it
// runs, else the queued file it became. It returns nil when there is
// nothing to send (it broke off, or another session took the queued file
// already).
func (c *session) openLive(l *liveUpload) (io.ReaderAt, io.Closer, error) {
	if f, err := l.up.NewReader(); err == nil {
		return f, f, nil
	}
	// Committed or aborted (or committing): wait for which.
	for {
		_, st, m, changed := l.snapshot()
		switch st {
		case liveCommitted:
			f, _, err := c.srv.cfg.Spool.Open(c.user, m.ID)
			if err != nil {
				return nil, nil, errStreamGone
			}
			return f, f, nil
		case liveAborted:
			return nil, nil, errStreamAborted
		}
		select {
		case <-changed:
		case <-c.srv.done:
			return nil, nil, errStreamGone
		}
	}
}

// streamFile runs in the writer goroutine: it sends l as a streamed file
// (STREAMF, CHUNKs, STREAMEND or STREAMABORT) as its bytes reach the
// spool, and the lines queued for the session between two chunks. counted
// says BEGIN announced it, so something must be sent even when there is
// nothing to stream. An error means the connection broke.
func (c *session) streamFile(l *liveUpload, counted bool, buf []byte) error {
	header, err := wire.Format(wire.StreamHeader{Name: l.name, Size: l.size, Sender: l.sender})
	if err != nil {
		return err
	}
	r, closer, err := c.openLive(l)
	if err != nil {
		if !counted {
			return nil
		}
		if _, err := c.conn.Write(header); err != nil {
			return err
		}
		line := lineStreamGone
		if errors.Is(err, errStreamAborted) {
			line = lineStreamAborted
		}
		_, err = c.conn.Write(line)
		return err
	}
	defer closer.Close()
	if _, err := c.conn.Write(header); err != nil {
		return err
	}
	c.out.setWake(true)
	defer c.out.setWake(false)
	var sent int64
	// A stream that has caught up holds the session's writer, so files
	// and other streams for it wait: an upload too slow to stream (less
	// than streamMinBytes in streamWindow) is left to the queue.
	mark, markAt := int64(0), time.Now()
	var stallTimer *time.Timer
	defer func() {
		if stallTimer != nil {
			stallTimer.Stop()
		}
	}()
	for {
		if c.out.isClosing() {
			// The session is ending: its END line follows, which tells the
			// client the file is incomplete; the file stays queued.
			return nil
		}
		written, st, m, changed := l.snapshot()
		if written > sent {
			n := int(min(written-sent, int64(len(buf))))
			if _, err := r.ReadAt(buf[:n], sent); err != nil {
				c.logger().Error("read streamed file", "err", err)
				return err
			}
			if _, err := c.conn.Write(c.format(wire.Chunk{Size: n}, nil)); err != nil {
				return err
			}
			if _, err := c.conn.Write(buf[:n]); err != nil {
				return err
			}
			sent += int64(n)
			if err := c.sendWaitingLines(); err != nil {
				return err
			}
			continue
		}
		switch {
		case st == liveAborted:
			c.logger().Info("streamed file aborted: the upload broke off", "bytes_sent", sent)
			_, err := c.conn.Write(lineStreamAborted)
			return err
		case st == liveCommitted && sent == m.Size:
			end, err := wire.Format(wire.StreamEnd{SHA256: m.SHA256, ID: m.ID})
			if err != nil {
				return err
			}
			if _, err := c.conn.Write(end); err != nil {
				return err
			}
			c.logger().Info("file streamed", "id", m.ID, "bytes", m.Size)
			c.srv.events.Sent(m.Size)
			return nil
		case st == liveCommitted:
			return errors.New("relay: streamed file shorter than its metadata")
		}
		if st == liveRunning {
			if since := time.Since(markAt); since >= streamWindow {
				if written-mark < streamMinBytes {
					c.logger().Info("stream given up: the upload is too slow; it stays in the queue", "bytes_sent", sent)
					_, err := c.conn.Write(lineStreamTooSlow)
					return err
				}
				mark, markAt = written, time.Now()
			}
		}
		// Caught up with the upload: send what the batch holds, then wait
		// for more data, the upload's end, or lines for the session.
		if err := c.bc.flush(); err != nil {
			return err
		}
		if stallTimer == nil {
			stallTimer = time.NewTimer(streamWindow - time.Since(markAt))
		} else {
			stallTimer.Reset(streamWindow - time.Since(markAt))
		}
		select {
		case <-changed:
		case <-c.out.wakeCh():
			if err := c.sendWaitingLines(); err != nil {
				return err
			}
		case <-stallTimer.C:
		case <-c.srv.done:
			return nil
		}
	}
}

// A stream waiting for its upload is given up (STREAMABORT; the file is
// queued once the upload completes) when less than streamMinBytes arrived
// in streamWindow.
var streamWindow = 15 * time.Second // a variable for tests only

const streamMinBytes = 64 << 10

var lineStreamTooSlow = wire.MustFormat(wire.StreamAbort{Reason: "the upload is too slow to stream; the file will wait in the queue"})

var (
	lineStreamAborted = wire.MustFormat(wire.StreamAbort{Reason: wire.ReasonUploadBrokeOff})
	lineStreamGone    = wire.MustFormat(wire.StreamAbort{Reason: "the file is no longer queued"})
)
