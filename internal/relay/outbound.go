package relay

import (
	"errors"
	"net"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"
)

// batchConn sits beneath TLS. Inside a batch (the writer's role between
// beginBatch and endBatch) the TLS records it is given collect in a buffer
// that goes out in one write when it fills or the batch ends: every line stays
// its own TLS record, but many records cost one syscall. Outside a batch
// (handshake, alerts, key updates) writes go straight through, after what
// an earlier batch left. Every write that may wait gets a fresh deadline, so
// a peer that stops reading is found within timeout of its last progress.
//
// A batch ended with endBatchNow (a reader writing for another session)
// never waits: it writes what the socket takes at once and keeps the rest
// for the session's writer goroutine, which writes it first (flushLeft).
type batchConn struct {
	net.Conn
	timeout time.Duration
	// beforeRead, if set, runs before each read from the socket, in the
	// reader goroutine: the session flushes what the previous read made it
	// queue for others (session.flushPending).
	beforeRead func()

	mu       sync.Mutex
	batching bool       // guarded by mu
	buf      []byte     // guarded by mu; from bufPool while batching or holding what endBatchNow left
	err      error      // guarded by mu; first write error, sticky
	deadline bool       // guarded by mu; a write deadline is set on the socket
	now      *nowWriter // guarded by mu; made by the first writeNowLocked
}

// nowWriter writes to the socket beneath a batchConn without waiting
// (writeNow). Its function is made once, with the argument and results
// kept beside it, so that a write allocates nothing.
type nowWriter struct {
	raw syscall.RawConn // nil where the platform or the connection offers none
	buf []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

// newBatchConn returns a batchConn over conn whose writes that may wait
// have timeout to make progress.
func newBatchConn(conn net.Conn, timeout time.Duration) *batchConn {
	return &batchConn{Conn: conn, timeout: timeout}
}

// rawConnOf is the socket beneath conn's wrappers, nil if there is none.
func rawConnOf(conn net.Conn) syscall.RawConn {
	for {
		switch c := conn.(type) {
		case *prefixConn:
			conn = c.Conn
		case *peerConn:
			conn = c.Conn
		case syscall.Conn:
			rc, err := c.SyscallConn()
			if err != nil || !canWriteNow {
				return nil
			}
			return rc
		default:
			return nil
		}
	}
}

// batchBufSize is the most a batch buffers before it writes.
const batchBufSize = 64 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, batchBufSize); return &b }}

func (c *batchConn) Read(p []byte) (int, error) {
	if c.beforeRead != nil {
		c.beforeRead()
	}
	return c.Conn.Read(p)
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if !c.batching {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		return c.writeLocked(p)
	}
	if len(c.buf)+len(p) > batchBufSize {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) >= batchBufSize {
			return c.writeLocked(p)
		}
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

// writeLocked must hold c.mu.
func (c *batchConn) writeLocked(p []byte) (int, error) {
	if c.timeout > 0 {
		c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
		c.deadline = true
	}
	n, err := c.Conn.Write(p)
	if err != nil {
		c.err = err
	}
	return n, err
}

// flushLocked must hold c.mu.
func (c *batchConn) flushLocked() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.writeLocked(c.buf)
	c.buf = c.buf[:0]
	return err
}

// flush writes what the batch holds so far and keeps batching.
func (c *batchConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.flushLocked(); err != nil {
		return err
	}
	return c.err
}

func (c *batchConn) beginBatch() {
	c.mu.Lock()
	c.batching = true
	if c.buf == nil {
		c.buf = (*bufPool.Get().(*[]byte))[:0]
	}
	c.mu.Unlock()
}

// tryBeginBatch begins a batch for a reader writing for this session, if
// that needs no waiting: nobody holds the connection's lock (a handshake
// message or alert of the session's own reader may be on its way out),
// no earlier batch left bytes behind, and no write failed.
func (c *batchConn) tryBeginBatch() bool {
	if !c.mu.TryLock() {
		return false
	}
	defer c.mu.Unlock()
	if c.err != nil || c.batching || len(c.buf) > 0 {
		return false
	}
	c.batching = true
	if c.buf == nil {
		c.buf = (*bufPool.Get().(*[]byte))[:0]
	}
	return true
}

// endBatch writes what the batch buffered and hands the buffer back, so an
// idle connection holds none.
func (c *batchConn) endBatch() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.flushLocked()
	c.batching = false
	c.putBufLocked()
	if err == nil {
		err = c.err
	}
	return err
}

// endBatchNow ends a batch begun with tryBeginBatch without waiting: it
// writes what the socket takes at once. left reports bytes it could not
// take; they stay buffered, and the session's writer goroutine must write
// them (flushLeft) before anything else goes out.
func (c *batchConn) endBatchNow() (left bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batching = false
	if c.err == nil && len(c.buf) > 0 {
		n, werr := c.writeNowLocked(c.buf)
		if werr != nil {
			c.err = werr
		}
		c.buf = c.buf[:copy(c.buf, c.buf[n:])]
	}
	if c.err != nil {
		c.buf = c.buf[:0]
	}
	c.putBufLocked()
	return len(c.buf) > 0, c.err
}

// flushLeft writes, waiting up to the timeout, what endBatchNow left.
func (c *batchConn) flushLeft() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	err := c.flushLocked()
	if !c.batching {
		c.putBufLocked()
	}
	return err
}

// putBufLocked hands an empty buffer back to the pool. Must hold c.mu.
func (c *batchConn) putBufLocked() {
	if c.buf != nil && len(c.buf) == 0 {
		b := c.buf[:0]
		bufPool.Put(&b)
		c.buf = nil
	}
}

// readerWriteWait is how long a write for another session may wait where
// the socket offers no write that never waits (nowWriter.raw is nil).
const readerWriteWait = 100 * time.Microsecond

// writeNowLocked writes what the socket takes of p without waiting for
// it to take more; a full socket is no error. Must hold c.mu.
func (c *batchConn) writeNowLocked(p []byte) (int, error) {
	if c.now == nil {
		w := &nowWriter{raw: rawConnOf(c.Conn)}
		w.fn = func(fd uintptr) bool {
			w.n, w.err = writeNow(fd, w.buf)
			return true // never wait for the socket
		}
		c.now = w
	}
	w := c.now
	if w.raw == nil {
		c.Conn.SetWriteDeadline(time.Now().Add(readerWriteWait))
		c.deadline = true
		n, err := c.Conn.Write(p)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = nil
		}
		return n, err
	}
	if c.deadline {
		// A deadline past would fail the write before it is tried.
		c.Conn.SetWriteDeadline(time.Time{})
		c.deadline = false
	}
	w.buf = p
	err := w.raw.Write(w.fn)
	n, werr := w.n, w.err
	w.buf, w.n, w.err = nil, 0, nil
	if err == nil {
		err = werr
	}
	return n, err
}

// item is one entry of an outbound queue: a line, or a download that the
// writer streams whole before it goes on to the next item, so that no line
// can land inside a file's bytes.
type item struct {
	line []byte
	get  *getJob
}

// jobCost is what a queued download counts against the queue's cap: not
// its data, which streams from disk, but enough that a client asking for
// downloads faster than it reads them overflows its own queue.
const jobCost = 1024

// cost is what it counts against the queue's cap.
func (it item) cost() int {
	if it.get != nil {
		return jobCost
	}
	return len(it.line)
}

// outbound is a session's queue of lines waiting for its writer.
// It is capped in bytes; enqueue never blocks and never does I/O. One
// writer at a time holds the queue's writer role (running): its writer
// goroutine, which runs only while there is something to send (the first
// item queued starts it, and it ends once it finds the queue empty, so an
// idle connection costs no goroutine for writing), or a reader that queued
// lines with enqueueHeld and writes them itself (takeHeld, releaseHeld)
// or starts the writer goroutine in its place.
type outbound struct {
	mu      sync.Mutex
	lines   []item        // guarded by mu
	spare   []item        // guarded by mu; the writer's last batch, reused
	size    int           // guarded by mu; bytes in lines
	stalled chan struct{} // guarded by mu; closed when size drops below high water
	closing bool          // guarded by mu; no more lines are taken
	flush   bool          // guarded by mu; with closing: send what is queued first
	final   []byte        // guarded by mu; the last line, sent after the rest
	running bool          // guarded by mu; the writer role is taken: a writer goroutine, or a reader (enqueueHeld)
	// downloading is set while the writer streams a download. backlog is
	// set with it and stays set after the download until the queue is
	// back under its cap: meanwhile lines wait without stalling their
	// producers, up to backlogFactor times the cap (see enqueue).
	downloading bool   // guarded by mu
	backlog     bool   // guarded by mu
	start       func() // starts a writer goroutine
	max         int    // the cap in bytes
	highWater   int    // above it producers are asked to wait

	// wake, while a streamed file waits for its upload (stream.go), gets a
	// signal when a line is queued or the queue closes.
	wake chan struct{} // guarded by mu
}

// newOutbound returns a queue capped at max bytes whose producers are
// asked to wait above highWater; start starts a writer goroutine.
func newOutbound(start func(), max, highWater int) *outbound {
	return &outbound{start: start, max: max, highWater: highWater}
}

// wakeLocked must hold o.mu; it reports whether the caller must call
// o.start once it has released the lock.
func (o *outbound) wakeLocked() bool {
	if o.running {
		return false
	}
	o.running = true
	return true
}

// enqueueResult says what happened to a line.
type enqueueResult int

const (
	queued   enqueueResult = iota
	closed                 // the session is ending; the line is dropped
	overflow               // the queue is full: the consumer is too slow
)

// backlogFactor is how many times its cap a queue may hold while its
// writer streams a download. The lines wait for the download, which makes
// progress (the write deadline ends it otherwise), so they are no sign of
// a slow consumer; this keeps the memory they take bounded all the same.
const backlogFactor = 4

// enqueue adds line, which must not be changed afterwards (several queues
// may share it). With a high-water mark crossed it also returns a channel
// that is closed once the queue drains, so a producer can wait on it.
//
// While a download is streaming, lines wait behind it: the queue may then
// hold up to backlogFactor*max bytes before it overflows, and no producer
// is asked to wait, since the consumer is reading.
func (o *outbound) enqueue(line []byte) (enqueueResult, <-chan struct{}) {
	res, stall, held := o.enqueueHeld(line)
	if held {
		o.start()
	}
	return res, stall
}

// enqueueHeld is enqueue for a session's reader that flushes what it
// queued itself (session.flushPending). When no writer is on the queue,
// held reports that the caller now holds the writer's role in its place:
// no writer goroutine starts, and the caller must either write the queue
// out (session.flushHeld) or call o.start, soon and in any case.
func (o *outbound) enqueueHeld(line []byte) (res enqueueResult, stall <-chan struct{}, held bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closing {
		return closed, nil, false
	}
	if o.size+len(line) > o.limitLocked() {
		return overflow, nil, false
	}
	o.lines = append(o.lines, item{line: line})
	o.size += len(line)
	o.wakeStreamLocked()
	if o.size > o.highWater && !o.backlog {
		if o.stalled == nil {
			o.stalled = make(chan struct{})
		}
		stall = o.stalled
	}
	return queued, stall, o.wakeLocked()
}

// enqueueJob adds a download, which counts jobCost against the cap.
func (o *outbound) enqueueJob(j *getJob) enqueueResult {
	o.mu.Lock()
	if o.closing {
		o.mu.Unlock()
		return closed
	}
	if o.size+jobCost > o.limitLocked() {
		o.mu.Unlock()
		return overflow
	}
	o.lines = append(o.lines, item{get: j})
	o.size += jobCost
	start := o.wakeLocked()
	o.mu.Unlock()
	if start {
		o.start()
	}
	return queued
}

// close stops the queue. With flush the queued lines still go out, then
// final; without, they are dropped and only final goes.
func (o *outbound) close(final []byte, flush bool) {
	o.mu.Lock()
	start := false
	if !o.closing {
		start = o.wakeLocked()
		o.closing, o.flush, o.final = true, flush, final
		o.size += len(final)
		if !flush {
			for _, it := range o.lines {
				o.size -= it.cost()
			}
			o.lines = nil
		}
		o.releaseStallLocked()
		o.wakeStreamLocked()
	}
	o.mu.Unlock()
	if start {
		o.start()
	}
}

// wakeStreamLocked signals a streamed file that waits. Must hold o.mu.
func (o *outbound) wakeStreamLocked() {
	if o.wake != nil {
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
}

// setWake makes (on) or drops the channel a streamed file waits on, so
// that an idle queue holds none.
func (o *outbound) setWake(on bool) {
	o.mu.Lock()
	if on {
		o.wake = make(chan struct{}, 1)
		if len(o.lines) > 0 || o.closing {
			o.wake <- struct{}{}
		}
	} else {
		o.wake = nil
	}
	o.mu.Unlock()
}

// wakeCh is the channel of setWake (the writer goroutine only).
func (o *outbound) wakeCh() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.wake
}

// releaseStallLocked must hold o.mu.
func (o *outbound) releaseStallLocked() {
	if o.stalled != nil {
		close(o.stalled)
		o.stalled = nil
	}
}

// take swaps out the queued lines for the writer, which calls sent with
// their bytes once they are written: until then they still count against
// the cap and the high-water mark. done reports that the queue is closed and
// these are the last lines (final included). With mayStop, an empty batch
// that is not done means the queue is empty: the writer must end, and the
// next item queued starts a new one.
func (o *outbound) take(mayStop bool) (batch []item, done bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	batch, o.lines, o.spare = o.lines, o.spare[:0], nil
	if o.closing {
		if o.final != nil {
			batch = append(batch, item{line: o.final})
			o.final = nil
		}
		return batch, true
	}
	if len(batch) == 0 && mayStop {
		o.running = false
	}
	return batch, false
}

// sent releases n written bytes and wakes stalled producers once the queue
// is below the high-water mark.
func (o *outbound) sent(n int) {
	o.mu.Lock()
	o.size -= n
	if o.backlog && !o.downloading && o.size <= o.max {
		o.backlog = false
	}
	if o.size <= o.highWater {
		o.releaseStallLocked()
	}
	o.mu.Unlock()
}

// limitLocked is the cap in force: backlogFactor times the cap while lines
// wait behind a download (they are no slowness), else the cap. Must hold
// o.mu.
func (o *outbound) limitLocked() int {
	if o.backlog {
		return backlogFactor * o.max
	}
	return o.max
}

// setDownloading marks the start and end of a download's stream.
func (o *outbound) setDownloading(on bool) {
	o.mu.Lock()
	o.downloading = on
	if on {
		o.backlog = true
		// Producers waiting on this queue need not wait any more.
		o.releaseStallLocked()
	} else if o.size <= o.max {
		o.backlog = false
	}
	o.mu.Unlock()
}

// unget puts items the writer took but has not written back at the front
// of the queue, in order, so lines queued later cannot overtake them.
func (o *outbound) unget(items []item) {
	if len(items) == 0 {
		return
	}
	o.mu.Lock()
	o.lines = append(slices.Clone(items), o.lines...)
	o.mu.Unlock()
}

// isClosing reports whether the queue was closed: the session is ending.
func (o *outbound) isClosing() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closing
}

// takeLines swaps out the lines queued, for the writer to send between
// two files of a download or two chunks of a streamed file; the writer
// calls sent with their bytes. Lines overtake the downloads and streamed
// files that wait in the queue (they must not wait for the file being
// sent, which may be a trickling upload's stream), but not stored
// messages (an offline job), which go before the lines queued after them.
// A closing queue yields nothing: its lines go out when the writer
// finishes.
func (o *outbound) takeLines() []item {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closing || len(o.lines) == 0 {
		return nil
	}
	var taken []item
	kept := o.lines[:0]
	ordered := false // past an offline job: the rest keep their place
	for _, it := range o.lines {
		if ordered || it.get != nil {
			ordered = ordered || it.get.offline != nil
			kept = append(kept, it)
			continue
		}
		taken = append(taken, it)
	}
	clear(o.lines[len(kept):])
	o.lines = kept
	return taken
}

// recycle gives a batch's slice back for the next take.
func (o *outbound) recycle(batch []item) {
	clear(batch)
	o.mu.Lock()
	if o.spare == nil && cap(batch) <= 64 {
		o.spare = batch[:0]
	}
	o.mu.Unlock()
}

// maxRecordOverhead is the most TLS adds to a record: header, explicit
// nonce and tag (TLS 1.2 AES-GCM); TLS 1.3 adds less.
const maxRecordOverhead = 29

// readerFlushMax bounds what a reader writes for another session: the
// records of the lines it takes, with their overhead, fit in a batch
// buffer with room to spare, so encrypting them never writes to the
// socket; more than that is a flood, where a writer goroutine of the
// recipient's own pays for its wake-up and runs beside the reader.
const readerFlushMax = batchBufSize * 3 / 4

// takeHeld is take for a reader that holds the writer's role
// (enqueueHeld): it swaps out the queued lines if they are few enough to
// write at once (readerFlushMax) and ok. It returns ok false, taking
// nothing, when the queue is closing, holds a download, or holds more:
// the caller must then start a writer goroutine, which keeps the role.
func (o *outbound) takeHeld() (batch []item, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closing || o.downloading {
		return nil, false
	}
	n := 0
	for _, it := range o.lines {
		if it.get != nil {
			return nil, false
		}
		if n += len(it.line) + maxRecordOverhead; n > readerFlushMax {
			return nil, false
		}
	}
	batch, o.lines, o.spare = o.lines, o.spare[:0], nil
	return batch, true
}

// releaseHeld gives up the writer's role a reader held. It reports false,
// keeping the role for a writer goroutine the caller must start, when
// lines arrived meanwhile or the queue is closing.
func (o *outbound) releaseHeld() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closing || len(o.lines) > 0 {
		return false
	}
	o.running = false
	return true
}
