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
	"time"

	"sslmessager/internal/accounts"
	"sslmessager/internal/wire"
)

// Lines the server sends verbatim, formatted once.
var (
	lineCheck         = wire.MustFormat(wire.Check{})
	lineBadLogin      = wire.MustFormat(wire.End{Reason: wire.ReasonBadLogin})
	lineAlreadyOnline = wire.MustFormat(wire.End{Fatal: true, Reason: wire.ReasonAlreadyOnline})
	lineEndAccepted   = wire.MustFormat(wire.End{Reason: wire.ReasonEndAccepted})
	lineNotOnline     = wire.MustFormat(wire.NotOnline{Reason: wire.ReasonNotOnline})
	lineShutdown      = wire.MustFormat(wire.End{Reason: "server shutting down"})
	lineSlowConsumer  = wire.MustFormat(wire.End{Fatal: true, Reason: "slow consumer: messages were not read in time"})
)

// Reasons for ending a session because of what the client did.
const (
	reasonLineTooLong = "line too long"
	reasonBadToken    = "invalid session token"
	reasonImpersonate = "sender is not the logged-in user"
	reasonTooMany     = "too many log-in attempts"
	reasonServerError = "server error, try again later"
)

// session is one connection. Its reader goroutine (run) parses and
// dispatches every query; its writer goroutine (writeLoop) is the only one
// that writes lines to the connection. Other sessions reach it only through
// send, which never blocks.
type session struct {
	srv        *Server
	conn       *tls.Conn
	bc         *batchConn
	r          *wire.Reader
	out        *outbound
	writerDone chan struct{}
	remote     string

	// Set once by login before the session joins the hub; read-only after.
	user  string // as registered
	key   string // accounts.Fold(user)
	token string
	in    bool // logged in: on the hub

	uploading bool // reader goroutine only: reads have an idle deadline
}

func newSession(s *Server, conn *tls.Conn, bc *batchConn) *session {
	c := &session{
		srv:        s,
		conn:       conn,
		bc:         bc,
		writerDone: make(chan struct{}),
		remote:     bc.RemoteAddr().String(),
	}
	c.out = newOutbound(func() { s.goTracked(c.writeLoop) })
	c.r = wire.NewReader(c, readBufferSize)
	return c
}

// cleanup ends the session: off the hub, the queue closed and drained by
// its writer, which closes the connection; then the server forgets it.
func (c *session) cleanup() {
	if c.in {
		c.srv.hub.remove(c)
		c.logger().Info("logged out")
	}
	c.out.close(nil, true)
	<-c.writerDone
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
			c.logger().Info("closing: read deadline passed")
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
	c.conn.SetReadDeadline(time.Now().Add(c.srv.cfg.LoginTimeout))
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
			return c.admit(u)
		case wire.SignUp: // PUT user pass
			u, ok, goOn := c.signUp(q)
			if ok {
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
// queued under the hub's lock so that no message can overtake it.
func (c *session) admit(u accounts.User) bool {
	var b [32]byte
	rand.Read(b[:])
	c.user, c.key, c.token = u.Name, accounts.Fold(u.Name), hex.EncodeToString(b[:])
	accept := wire.MustFormat(wire.Accept{User: c.user, Token: c.token})
	if !c.srv.hub.add(c, func() { c.send(accept) }) {
		c.logger().Info("log-in refused: already online")
		c.end(lineAlreadyOnline, true)
		return false
	}
	c.in = true
	c.logger().Info("logged in")
	c.conn.SetReadDeadline(time.Time{})
	return true
}

// send queues line for this session's client. A client whose queue
// overflows is dropped as a slow consumer. The channel, if not nil, closes
// when the queue has drained below its high-water mark.
func (c *session) send(line []byte) <-chan struct{} {
	res, stall := c.out.enqueue(line, c.srv.cfg.MaxQueueBytes, c.srv.highWater)
	if res == overflow {
		c.dropSlow()
	}
	return stall
}

// dropSlow ends a session whose queue overflowed.
func (c *session) dropSlow() {
	c.logger().Warn("dropping slow consumer", "queue_bytes", c.srv.cfg.MaxQueueBytes)
	c.srv.hub.remove(c)
	c.end(lineSlowConsumer, false)
}

// stall pauses this session's reader, the producer, until a recipient's
// queue drains or StallWait passes.
func (c *session) stall(ch <-chan struct{}) {
	if ch == nil {
		return
	}
	t := time.NewTimer(c.srv.cfg.StallWait)
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
	c.end(wire.MustFormat(wire.End{Fatal: true, Reason: reason}), true)
}

// writeLoop is the writer goroutine, started by the outbound queue when
// it has work. It swaps out everything queued, writes each line as its own
// TLS record into the batch buffer beneath TLS, and flushes once the batch
// is done. It ends when the queue is empty; when the queue closes or a
// write fails it closes the connection and signals writerDone.
func (c *session) writeLoop() {
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
			for _, it := range batch {
				switch {
				case err != nil:
				case it.get != nil:
					err = c.sendFiles(it.get)
				default:
					_, err = c.conn.Write(it.line)
				}
				n += it.cost()
			}
			if ferr := c.bc.endBatch(); err == nil {
				err = ferr
			}
			c.out.recycle(batch)
			c.out.sent(n, c.srv.highWater)
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
