package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"sslmessager/internal/wire"
)

// client is one logged-in connection. Exactly one goroutine reads it (the
// reader started by run, or the caller before that); writes go through
// write, which serializes them.
type client struct {
	idx   int
	name  string // as registered
	token string
	conn  *tls.Conn
	r     *wire.Reader

	wmu sync.Mutex
	bw  *bufio.Writer // guarded by wmu
	buf []byte        // guarded by wmu; formatting buffer

	started bool          // run was called
	done    chan struct{} // closed when the reader goroutine exits
	end     *wire.End     // the server's END, if any; read after done
	readErr error         // why the reader stopped otherwise; read after done

	// Lines wire.ParseServer refused. The reader skips them (the line
	// framing is intact) so one bad line does not cost the connection;
	// scenarios report them. Read after done.
	badLines    int
	firstBadErr error
}

// userName is the name of client i of a scenario: prefix, a letter for the
// scenario and five digits (at most 15 characters).
func userName(prefix string, tag byte, i int) string {
	return fmt.Sprintf("%s%c%05d", prefix, tag, i)
}

// password derives a user's password from its name, so that a rerun with
// the same prefix can log in to the accounts it created.
func password(name string) string { return "loadgen_" + name }

// loginMode says how dial logs in.
type loginMode int

const (
	signUpOrLogIn loginMode = iota // PUT; AUTH if the name is taken
	signUpOnly                     // PUT; a taken name is an error
	logInOnly                      // AUTH
)

// dial connects to the server, completes the TLS handshake and logs in as
// name. rbuf and wbuf size the connection's buffers.
func dial(ctx context.Context, e *env, name string, mode loginMode, rbuf, wbuf int) (*client, error) {
	return dialFrom(ctx, e, name, mode, rbuf, wbuf, nil)
}

// dialFrom is dial from the local address from (nil: any).
func dialFrom(ctx context.Context, e *env, name string, mode loginMode, rbuf, wbuf int, from net.Addr) (*client, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: dialTimeout, LocalAddr: from}, Config: e.tls}
	raw, err := d.DialContext(ctx, "tcp", e.addr)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", name, err)
	}
	conn := raw.(*tls.Conn)
	c := &client{name: name, conn: conn, r: wire.NewReader(conn, rbuf), bw: bufio.NewWriterSize(conn, wbuf), done: make(chan struct{})}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(loginTimeout))
	err = c.login(mode)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("log in %s: %w", name, err)
	}
	conn.SetDeadline(time.Time{})
	return c, nil
}

// login sends PUT or AUTH and reads the answer.
func (c *client) login(mode loginMode) error {
	pass := password(c.name)
	var q wire.Query = wire.SignUp{User: c.name, Pass: pass}
	if mode == logInOnly {
		q = wire.Auth{User: c.name, Pass: pass}
	}
	if err := c.write(q, true); err != nil {
		return err
	}
	for {
		a, err := c.next()
		if err != nil {
			return err
		}
		switch a := a.(type) {
		case wire.Accept:
			c.name, c.token = a.User, a.Token
			return nil
		case wire.Try:
			if mode != signUpOrLogIn || a.Reason != wire.ReasonTaken {
				return fmt.Errorf("sign-up refused: %s", a.Reason)
			}
			mode = logInOnly
			if err := c.write(wire.Auth{User: c.name, Pass: pass}, true); err != nil {
				return err
			}
		case wire.End:
			return fmt.Errorf("server ended the session: %s", a.Reason)
		default:
			return fmt.Errorf("unexpected %s line before ACCEPT", a.Verb())
		}
	}
}

// next reads and parses one server line.
func (c *client) next() (wire.Query, error) {
	line, err := c.r.ReadLine()
	if err != nil {
		return nil, err
	}
	return wire.ParseServer(line)
}

// write formats q into the write buffer, flushing it if flush is set or the
// buffer is full.
func (c *client) write(q wire.Query, flush bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b, err := q.AppendTo(c.buf[:0])
	if err != nil {
		return err
	}
	c.buf = b
	if _, err := c.bw.Write(b); err != nil {
		return err
	}
	if flush {
		return c.bw.Flush()
	}
	return nil
}

// writeRaw writes file data after whatever lines are buffered.
func (c *client) writeRaw(p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.bw.Write(p)
	return err
}

// flush sends what write buffered.
func (c *client) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.bw.Flush()
}

// handler handles one server line in the reader goroutine (CHECK and END
// never reach it). It may read raw bytes from c.r. An error stops the
// reader.
type handler func(q wire.Query, at time.Time) error

// run starts the reader goroutine: it reads every line until the
// connection ends, so the server never sees this client as a slow
// consumer.
func (c *client) run(h handler) {
	c.started = true
	go func() {
		defer close(c.done)
		for {
			line, err := c.r.ReadLine()
			if err != nil {
				c.readErr = err
				return
			}
			at := time.Now()
			q, err := wire.ParseServer(line)
			if err != nil {
				if c.badLines == 0 {
					c.firstBadErr = err
				}
				c.badLines++
				continue
			}
			switch q := q.(type) {
			case wire.Check:
				continue
			case wire.End:
				c.end = &q
				return
			}
			if err := h(q, at); err != nil {
				c.readErr = err
				return
			}
		}
	}()
}

// droppedReason says why the server ended this session, or "" if the
// session ended normally (or has not ended). Call it after done.
func (c *client) droppedReason() string {
	if c.end != nil && c.end.Reason != wire.ReasonEndAccepted {
		return c.end.Reason
	}
	return ""
}

// problems lists what went wrong on this connection, for a Result. Call it
// after done.
func (c *client) problems(res *Result) {
	if why := c.droppedReason(); why != "" {
		res.addError("%s dropped by the server: %s", c.name, why)
	}
	if c.badLines > 0 {
		res.addError("%s: %d server lines did not parse, the first: %v", c.name, c.badLines, c.firstBadErr)
	}
}

// alive reports whether the reader is still running.
func (c *client) alive() bool {
	if !c.started {
		return true
	}
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// connectAll logs in n clients named by e.name(tag, i), concurrency at a
// time, and starts each one's reader with start(i, c). It returns the
// clients in index order and each one's connect-plus-log-in time. On the
// first failure it closes what it opened and returns the error.
func connectAll(ctx context.Context, e *env, n int, tag byte, mode loginMode, rbuf, wbuf int,
	start func(i int, c *client)) ([]*client, []time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	clients := make([]*client, n)
	lat := make([]time.Duration, n)
	idx := make(chan int)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range min(e.concurrency, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				t0 := time.Now()
				c, err := dial(ctx, e, e.name(tag, i), mode, rbuf, wbuf)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					continue
				}
				lat[i] = time.Since(t0)
				c.idx = i
				clients[i] = c
				start(i, c)
			}
		}()
	}
feed:
	for i := range n {
		select {
		case idx <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(idx)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		closeAll(clients)
		return nil, nil, firstErr
	}
	return clients, lat, nil
}

// quitAll ends every session politely: END <user command>, then up to
// quitWait for the server's answer, then close. Senders must be done.
func quitAll(clients []*client) {
	deadline := time.Now().Add(quitWait)
	for _, c := range clients {
		if c == nil || !c.alive() {
			continue
		}
		c.conn.SetWriteDeadline(deadline)
		c.write(wire.Quit{Token: c.token}, true)
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
wait:
	for _, c := range clients {
		if c == nil || !c.started {
			continue
		}
		select {
		case <-c.done:
		case <-timer.C:
			break wait
		}
	}
	closeAll(clients)
}

// closeAll closes every connection at once and waits for the readers.
func closeAll(clients []*client) {
	for _, c := range clients {
		if c != nil {
			c.conn.Close()
		}
	}
	for _, c := range clients {
		if c != nil && c.started {
			<-c.done
		}
	}
}

// loopbackSource is the i-th of 200 loopback source addresses
// (127.0.1.0 to 127.0.1.199) when the server listens on IPv4 loopback, so
// a scenario of many users does not look like one address to the server's
// per-address limits; nil otherwise.
func loopbackSource(serverAddr string, i int) net.Addr {
	host, _, err := net.SplitHostPort(serverAddr)
	if ip := net.ParseIP(host); err != nil || ip == nil || ip.To4() == nil || !ip.IsLoopback() {
		return nil
	}
	return &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(i%200))}
}
