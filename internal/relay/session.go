package relay

import (
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"sslmessager/internal/accounts"
	"sslmessager/internal/wire"
)

// Lines the server sends verbatim, formatted once.
var (
	lineCheck        = wire.MustFormat(wire.Check{})
	lineBadLogin     = wire.MustFormat(wire.End{Reason: wire.ReasonBadLogin})
	lineElsewhere    = wire.MustFormat(wire.End{Fatal: true, Reason: "logged in elsewhere"})
	lineEndAccepted  = wire.MustFormat(wire.End{Reason: wire.ReasonEndAccepted})
	lineNotOnline    = wire.MustFormat(wire.NotOnline{Reason: wire.ReasonNotOnline})
	lineShutdown     = wire.MustFormat(wire.End{Reason: wire.ReasonShutdown})
	lineSlowConsumer = wire.MustFormat(wire.End{Fatal: true, Reason: wire.ReasonSlowConsumer})
	lineServerError  = wire.MustFormat(wire.End{Fatal: true, Reason: reasonServerError})
)

// format returns the bytes of a reply. Replies are built from constants,
// from what the server stores (names as registered, metadata) and from
// client words passed through wire.Quote, so formatting cannot fail; if it
// does anyway, the bug is logged and fallback (a line formatted once from
// constants) goes out instead. wire.MustFormat is only ever used on
// constants, at package level (TestMustFormatOnlyOnConstants).
func (c *session) format(q wire.Query, fallback []byte) []byte {
	b, err := wire.Format(q)
	if err != nil {
		c.logger().Error("reply cannot be formatted", "verb", q.Verb(), "err", err)
		return fallback
	}
	return b
}

// Reasons for ending a session because of what the client did.
const (
	reasonLineTooLong   = "line too long"
	reasonBadToken      = "invalid session token"
	reasonImpersonate   = "sender is not the logged-in user"
	reasonTooMany       = "too many log-in attempts"
	reasonServerError   = wire.ReasonServerError
	reasonLoginTimeout  = "log-in timed out"
	reasonUploadTimeout = "upload timed out: no data for too long"
)

// session is one connection. Its reader goroutine (readLoop) parses and
// dispatches every query. Lines reach the connection through its outbound
// queue; whoever holds the queue's writer role writes them: the session's
// writer goroutine (writeLoop), or, for a moment and without ever waiting
// for the socket, the reader of a session that queued them (flushHeld).
// Other sessions reach it only through send and relay, which never block.
type session struct {
	srv        *Server
	conn       *tls.Conn
	bc         *batchConn
	r          *wire.Reader
	out        *outbound
	writerDone chan struct{}
	remote     string
	since      time.Time // when the connection was accepted

	// Set once by login before the session joins the hub; read-only after.
	user  string // as registered
	key   string // wire.FoldName(user)
	token string
	in    bool // logged in: on the hub

	ext       bool        // the client negotiated ALPN sslm/2 or sslm/3: it speaks our extensions; set before the reader starts
	uploading bool        // reader goroutine only: reads have an idle deadline
	holding   bool        // reader goroutine only: an upload holds part of a buffer (files.go)
	carbons   atomic.Bool // the client asked for copies of its user's DMs from other sessions
	push      atomic.Bool // the client asked for uploads to its user streamed as they arrive (stream.go)

	// The key directory (keys.go).
	keys    bool         // the client negotiated ALPN sslm/3; set before the reader starts
	setKeys setKeyBudget // reader goroutine only: how many SETKEYs it may still have checked

	// pending are the sessions whose writer role this session's reader
	// took by queuing lines for them (relay) and must give up by writing
	// those lines or starting their writer goroutine (flushPending).
	// Reader goroutine only.
	pending []*session
}

func newSession(s *Server, conn *tls.Conn, bc *batchConn) *session {
	proto := conn.ConnectionState().NegotiatedProtocol
	c := &session{
		srv:        s,
		conn:       conn,
		bc:         bc,
		writerDone: make(chan struct{}),
		remote:     bc.RemoteAddr().String(),
		since:      time.Now(),
		ext:        proto == wire.ALPN || proto == wire.ALPNKeys,
		keys:       proto == wire.ALPNKeys,
	}
	maxQueue := s.conf().MaxQueueBytes
	c.out = newOutbound(func() { s.goTracked(c.writeLoop) }, maxQueue, maxQueue/4)
	c.r = wire.NewReader(c, readBufferSize)
	bc.beforeRead = c.flushPending
	return c
}

// cleanup ends the session: off the hub, the queue closed and drained by
// its writer, which closes the connection; then the server forgets it.
func (c *session) cleanup() {
	c.flushPending()
	if c.in {
		c.srv.hub.remove(c)
		c.logger().Info("logged out")
	}
	c.out.close(nil, true)
	<-c.writerDone
	c.srv.offline.leave(c) // offline.go: another session takes over the backlog
	c.srv.keys.leave(c)    // keys.go: it watches no more keys
	c.srv.untrack(c)
	c.srv.nconns.Add(-1)
}

// readLoop is the reader goroutine after log-in: it reads, checks and
// dispatches queries until the session ends.
func (c *session) readLoop() {
	for {
		q, ok := c.next()
		if !ok {
			return
		}
		aq, ok := q.(wire.Authenticated)
		if !ok {
			c.fail(wire.ReasonProtocol, "query not allowed after log-in", q.Verb())
			return
		}
		if subtle.ConstantTimeCompare([]byte(aq.SessionToken()), []byte(c.token)) != 1 {
			c.fail(reasonBadToken, "wrong token", q.Verb())
			return
		}
		switch q.(type) {
		case wire.Msg, wire.GroupMsg:
		default:
			// What this query does may take a while (a disk write, a
			// password hash): the lines already relayed go first.
			c.flushPending()
		}
		if !c.dispatch(q) {
			return
		}
	}
}

// next reads and parses one query. On any failure it ends the session as
// the failure deserves and returns false.
func (c *session) next() (wire.Query, bool) {
	line, err := c.r.ReadLine()
	if err != nil {
		switch {
		case errors.Is(err, wire.ErrLineTooLong):
			c.fail(reasonLineTooLong, "line too long", "")
		case errors.Is(err, os.ErrDeadlineExceeded):
			// Only the log-in phase reads under a deadline here.
			c.fail(reasonLoginTimeout, "log-in deadline passed", "")
		case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		default:
			c.logger().Debug("read failed", "err", err)
		}
		return nil, false
	}
	q, err := wire.ParseClient(line)
	if err != nil {
		c.fail(wire.ReasonProtocol, err.Error(), "")
		return nil, false
	}
	return q, true
}

// login runs the log-in phase under its deadline. Only the answer to each
// AUTH or PUT is sent; nothing else reaches the client before ACCEPT.
func (c *session) login() bool {
	c.conn.SetReadDeadline(time.Now().Add(c.srv.conf().LoginTimeout))
	for range c.srv.cfg.MaxLoginTries {
		q, ok := c.next()
		if !ok {
			return false
		}
		switch q := q.(type) {
		case wire.Auth: // AUTH user pass
			u, ok := c.authenticate(q)
			if !ok {
				return false
			}
			c.srv.events.LoggedIn(LoginAuth)
			return c.admit(u)
		case wire.SignUp: // PUT user pass
			u, ok, goOn := c.signUp(q)
			if ok {
				c.srv.events.LoggedIn(LoginSignUp)
				return c.admit(u)
			}
			if !goOn {
				return false
			}
		default:
			c.fail(wire.ReasonProtocol, "log in first", q.Verb())
			return false
		}
	}
	c.fail(reasonTooMany, "too many attempts", "")
	return false
}

// admit makes u's session live: a new token, the hub entry and ACCEPT,
// queued under the hub's lock so that no message can overtake it. At the
// user's session cap the oldest session is ended, never this log-in
// refused: a frozen client cannot lock its owner out.
func (c *session) admit(u accounts.User) bool {
	if c.userBanned(u) {
		return false
	}
	var b [32]byte
	rand.Read(b[:])
	c.user, c.key, c.token = u.Name, wire.FoldName(u.Name), hex.EncodeToString(b[:])
	accept, err := wire.Format(wire.Accept{User: c.user, Token: c.token})
	if err != nil { // cannot happen: a registered name and a hex token
		c.fail(reasonServerError, err.Error(), "")
		return false
	}
	maxSessions := c.srv.conf().MaxSessionsPerUser
	evicted := c.srv.hub.add(c, maxSessions, func() { c.send(accept); c.sendRole(u) })
	for _, e := range evicted {
		e.logger().Info("session ended: the user logged in elsewhere at the session cap", "max", maxSessions)
		e.end(lineElsewhere, true)
	}
	// A ban, deletion or password change made while this log-in was
	// checked ended the sessions it found on the hub; this one joined
	// after, so it finds the change here.
	if c.userBanned(u) || !c.accountStillCurrent(u) {
		c.srv.hub.remove(c)
		return false
	}
	c.in = true
	c.logger().Info("logged in")
	c.conn.SetReadDeadline(time.Time{})
	c.srv.offline.offer(c) // offline.go: stored messages follow ACCEPT
	return true
}

// send queues line for this session's client. A client whose queue
// overflows is dropped as a slow consumer. The channel, if not nil, closes
// when the queue has drained below its high-water mark.
func (c *session) send(line []byte) <-chan struct{} {
	res, stall := c.out.enqueue(line)
	if res == overflow {
		c.dropSlow()
	}
	return stall
}

// relay queues line for t (another session, or c itself) from c's reader
// as send does, but leaves the writing to c: when no writer is on t's
// queue, c takes the writer's role and t joins c.pending, to be flushed
// once c has handled what its last read returned. Reader goroutine only.
func (c *session) relay(t *session, line []byte) <-chan struct{} {
	res, stall, held := t.out.enqueueHeld(line)
	switch {
	case res == overflow:
		t.dropSlow()
	case held:
		c.pending = append(c.pending, t)
	}
	return stall
}

// readerFlushBudget is how long a reader spends writing for the sessions
// it relayed to before it leaves the rest to their writer goroutines; the
// writes never wait for a socket, so this bounds encryption work, which a
// large group would otherwise put on one reader alone. 2 ms covers a group
// line to about 100 members (make bench: group paced 100/s to 100 members
// went from 1.55x the floor relay's CPU per message at 500 µs to
// 0.97-1.14x); larger fan-outs go on in their writer goroutines.
const readerFlushBudget = 2 * time.Millisecond

// flushPending writes out the queues whose writer role this reader took
// (relay): before each read from the socket, before the reader waits
// (stall) or does slow work, and at its end. Within readerFlushBudget each
// queue is written by this reader (flushHeld); past it, and where that is
// not possible at once, the queue's writer goroutine is started instead.
// Reader goroutine only.
func (c *session) flushPending() {
	if len(c.pending) == 0 {
		return
	}
	var deadline time.Time
	if len(c.pending) > 1 {
		deadline = time.Now().Add(readerFlushBudget)
	}
	over := false
	for i, t := range c.pending {
		c.pending[i] = nil
		if t == nil {
			continue // left by a flush a panic cut short
		}
		if !over && i%8 == 7 && time.Now().After(deadline) {
			over = true // out of budget: the rest go to their writer goroutines
		}
		if over {
			c.srv.handOffs.Add(1)
			t.out.start()
			continue
		}
		t.flushHeld()
	}
	if cap(c.pending) > 64 {
		c.pending = nil // a large group's list: idle sessions keep none
	} else {
		c.pending = c.pending[:0]
	}
}

// flushHeld writes c's queued lines from the reader of another session
// (or c's own) that holds c's writer role, without waiting: only when c's
// connection is free at once (tryBeginBatch), the lines are few enough to
// encrypt without a socket write (takeHeld), and only as much as the
// socket takes at once (endBatchNow). Otherwise, and when lines remain or
// arrived meanwhile, it starts c's writer goroutine, which takes over the
// role and what is left, in order.
func (c *session) flushHeld() {
	if !c.bc.tryBeginBatch() {
		c.srv.handOffs.Add(1)
		c.out.start()
		return
	}
	batch, ok := c.out.takeHeld()
	if !ok {
		c.bc.endBatch() // nothing was written into it
		c.srv.handOffs.Add(1)
		c.out.start()
		return
	}
	var err error
	n := 0
	for _, it := range batch {
		if err == nil {
			_, err = c.conn.Write(it.line)
		}
		n += it.cost()
	}
	left, ferr := c.bc.endBatchNow()
	if err == nil {
		err = ferr
	}
	c.out.recycle(batch)
	c.out.sent(n)
	c.srv.readerFlushes.Add(1)
	switch {
	case err != nil:
		// The writer goroutine logs the error (it is sticky) and closes
		// the connection; the session's reader then sees it closed and
		// takes it off the hub.
		c.out.close(nil, false)
		c.out.start()
	case left, !c.out.releaseHeld():
		c.srv.handOffs.Add(1)
		c.out.start()
	}
}

// dropSlow ends a session whose queue overflowed.
func (c *session) dropSlow() {
	c.logger().Warn("dropping slow consumer", "queue_bytes", c.out.max)
	c.srv.events.SlowConsumer()
	c.srv.hub.remove(c)
	c.end(lineSlowConsumer, false)
}

// stall pauses this session's reader, the producer, until a recipient's
// queue drains or StallWait passes.
func (c *session) stall(ch <-chan struct{}) {
	if ch == nil {
		return
	}
	c.flushPending() // the queue waited on may be one this reader holds
	t := time.NewTimer(c.srv.conf().StallWait)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-c.srv.done:
	}
}

// end closes the session after final. With flush, queued lines go first.
func (c *session) end(final []byte, flush bool) { c.out.close(final, flush) }

// fail ends the session because of the client: END * <reason>.
func (c *session) fail(reason, detail, verb string) {
	c.logger().Info("closing: protocol error", "reason", reason, "detail", detail, "verb", verb)
	if c.in {
		c.srv.hub.remove(c)
	}
	c.end(c.format(wire.End{Fatal: true, Reason: reason}, lineServerError), true)
}

// writeLoop is the writer goroutine, started by the outbound queue when
// it has work. It swaps out everything queued, writes each line as its own
// TLS record into the batch buffer beneath TLS, and flushes once the batch
// is done. It ends when the queue is empty; when the queue closes or a
// write fails it closes the connection and signals writerDone.
func (c *session) writeLoop() {
	// What a reader's write for this session left (flushHeld) goes first.
	if err := c.bc.flushLeft(); err != nil {
		c.srv.log.Info("closing: write failed", "remote", c.remote, "err", err)
		c.out.close(nil, false)
	}
	lingered := false
	for {
		batch, done := c.out.take(lingered)
		if len(batch) == 0 && !done {
			if lingered {
				return
			}
			// Under a steady stream the next line is usually a moment
			// away: yield once before ending, rather than end and have
			// the next line start a new goroutine.
			lingered = true
			runtime.Gosched()
			continue
		}
		lingered = false
		if len(batch) > 0 {
			c.bc.beginBatch()
			var err error
			n := 0
			for i, it := range batch {
				if it.get != nil {
					n += it.cost()
					if done {
						continue // ending: the files stay queued
					}
					// What follows the download waits in the queue, in
					// order, with what arrives while it streams.
					c.out.unget(batch[i+1:])
					err = c.sendFiles(it.get)
					break
				}
				_, err = c.conn.Write(it.line)
				n += it.cost()
				if err != nil {
					break
				}
			}
			if ferr := c.bc.endBatch(); err == nil {
				err = ferr
			}
			c.out.recycle(batch)
			c.out.sent(n)
			if err != nil {
				// The reader sees the closed connection and takes the
				// session off the hub. Only immutable fields here: this
				// batch may have been taken before log-in finished.
				c.srv.log.Info("closing: write failed", "remote", c.remote, "err", err)
				c.out.close(nil, false)
				c.finish()
				return
			}
		}
		if done {
			c.finish()
			return
		}
	}
}

// finish closes the connection once the last writer is done with it.
func (c *session) finish() {
	c.conn.Close()
	close(c.writerDone)
}

// logger is the server's logger with this session's address and user. It
// is made per use, not kept: logging is rare per session, and an idle
// session should hold as little as possible.
func (c *session) logger() *slog.Logger {
	if c.user == "" {
		return c.srv.log.With("remote", c.remote)
	}
	return c.srv.log.With("remote", c.remote, "user", c.user)
}
