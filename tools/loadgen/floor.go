package main

// The floor relay. It is a LOWER BOUND FOR MEASUREMENT, NEVER A SERVER TO
// RUN: it checks no password, no token and no sender, keeps no account,
// queues nothing, never drops a slow reader (a sender simply blocks on the
// recipient's socket) and has no limit of any kind. It exists so that the
// suite can put our server's cost per message next to the least a TLS
// relay in Go can cost on the same machine.

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"sslmessager/internal/cliflags"
	"sslmessager/internal/durable"
	"sslmessager/internal/pki"
	"sslmessager/internal/wire"
)

const floorDescription = `A LOWER BOUND FOR MEASUREMENT, NEVER A SERVER TO RUN. It serves only what
loadgen's dm and group clients send, on loopback only, with no checks at
all: any PUT or AUTH is answered ACCEPT (no password, no account), tokens
and senders are not checked, and there are no limits. One goroutine reads
each connection and writes every relayed line straight to the recipient's
TLS connection under that connection's mutex: no queue, no writer
goroutine, one TLS record and one write per line. Lines are parsed and
formatted by the same code as the server's (internal/wire), so the
difference in CPU per message is the server's architecture, not its
parser.

Served: PUT or AUTH (ACCEPT), MSG (RELAY to the target, or CNT <user not
online>), MSGG (RELAYG to every other connection in group mode), CMD
<group> (toggles group mode, no reply), END <user command> (END <end
accepted>, close). Anything else: END * <incorrect protocol>, close.

"loadgen suite" starts it (bin/loadgen floor) next to bin/server for the
scenarios it compares. It runs until SIGINT or SIGTERM.`

// floorCommand is "loadgen floor".
func floorCommand() *cli.Command {
	return &cli.Command{
		Name:        "floor",
		Usage:       "a LOWER BOUND relay for measurement only (never a server to run; loopback only)",
		UsageText:   "loadgen floor --cert FILE --key FILE [--listen 127.0.0.1:0] [--addr-file FILE]",
		Description: floorDescription,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:0", Usage: "loopback `ADDRESS` to listen on (anything else is refused)"},
			&cli.StringFlag{Name: "addr-file", Usage: "write the address listened on to `FILE` once ready"},
			&cli.StringFlag{Name: "cert", Usage: "server certificate `FILE` (as for the server)"},
			&cli.StringFlag{Name: "key", Usage: "server key `FILE`"},
		},
		Action: func(cc *cli.Context) error {
			if err := cliflags.NoArgs(cc); err != nil {
				return err
			}
			if cc.String("cert") == "" || cc.String("key") == "" {
				return errors.New("floor needs --cert and --key")
			}
			if err := checkLoopback(cc.String("listen")); err != nil {
				return fmt.Errorf("--listen: %w (the floor relay is a measurement tool, never a server to run)", err)
			}
			tc, err := pki.ServerTLSConfig(cc.String("cert"), cc.String("key"))
			if err != nil {
				return err
			}
			f, err := listenFloor(cc.String("listen"), tc)
			if err != nil {
				return err
			}
			if p := cc.String("addr-file"); p != "" {
				err := durable.WriteFile(p, 0o644, func(w io.Writer) error {
					_, err := fmt.Fprintln(w, f.Addr())
					return err
				})
				if err != nil {
					f.Close()
					return err
				}
			}
			fmt.Fprintf(cc.App.ErrWriter, "floor relay (a lower bound for measurement, not a server) on %s\n", f.Addr())
			go func() {
				<-cc.Context.Done()
				f.Close()
			}()
			return f.Serve()
		},
	}
}

// floorLoginTimeout bounds the handshake and log-in of a floor connection,
// so that a stray connection cannot keep the suite's floor from stopping.
const floorLoginTimeout = 15 * time.Second

// floorReadBuffer is each floor connection's line buffer.
const floorReadBuffer = 16 << 10

// floorRelay is the floor relay: a listener and who is connected.
type floorRelay struct {
	ln     net.Listener
	tls    *tls.Config
	wg     sync.WaitGroup
	tokens atomic.Uint64
	closed atomic.Bool

	mu    sync.RWMutex
	users map[string]*floorConn   // guarded by mu; by name as logged in
	group map[*floorConn]struct{} // guarded by mu; connections in group mode
	conns map[*floorConn]struct{} // guarded by mu; every open connection
}

// floorConn is one connection. Its reader goroutine is the only one that
// reads it; any reader writes to it under wmu.
type floorConn struct {
	conn *tls.Conn
	wmu  sync.Mutex
	name string // set by the reader at log-in, read only by it
}

// write sends one line as one TLS record. Errors are the reader's to see.
func (c *floorConn) write(line []byte) {
	c.wmu.Lock()
	c.conn.Write(line)
	c.wmu.Unlock()
}

// listenFloor listens on addr, which must be on loopback.
func listenFloor(addr string, tc *tls.Config) (*floorRelay, error) {
	if err := checkLoopback(addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &floorRelay{ln: ln, tls: tc, users: make(map[string]*floorConn),
		group: make(map[*floorConn]struct{}), conns: make(map[*floorConn]struct{})}, nil
}

// Addr is the address listened on.
func (f *floorRelay) Addr() net.Addr { return f.ln.Addr() }

// Serve accepts connections until Close and then waits for their readers.
// It returns nil after Close.
func (f *floorRelay) Serve() error {
	defer f.wg.Wait()
	var backoff time.Duration
	for {
		raw, err := f.ln.Accept()
		if err != nil {
			if f.closed.Load() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			f.Close()
			return err
		}
		backoff = 0
		c := &floorConn{conn: tls.Server(raw, f.tls)}
		f.mu.Lock()
		if f.closed.Load() {
			f.mu.Unlock()
			raw.Close()
			continue
		}
		f.conns[c] = struct{}{}
		f.mu.Unlock()
		f.wg.Add(1)
		go f.serveConn(c)
	}
}

// Close stops accepting and closes every connection; Serve returns once
// their readers are done. Closing twice is harmless.
func (f *floorRelay) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed.Swap(true) {
		return
	}
	f.ln.Close()
	for c := range f.conns {
		c.conn.Close()
	}
}

// serveConn is a connection's reader: it handles each line as it comes and
// writes what it relays to the recipients' connections itself.
func (f *floorRelay) serveConn(c *floorConn) {
	defer f.wg.Done()
	defer f.drop(c)
	r := wire.NewReader(c.conn, floorReadBuffer)
	var (
		out     []byte       // formatting buffer
		members []*floorConn // group fan-out, reused
	)
	reply := func(q wire.Query) {
		out, _ = q.AppendTo(out[:0])
		c.write(out)
	}
	c.conn.SetDeadline(time.Now().Add(floorLoginTimeout))
	for {
		line, err := r.ReadLine()
		if err != nil {
			return
		}
		q, err := wire.ParseClient(line)
		if err != nil {
			reply(wire.End{Fatal: true, Reason: wire.ReasonProtocol})
			return
		}
		switch q := q.(type) {
		case wire.SignUp:
			f.login(c, q.User)
			reply(wire.Accept{User: q.User, Token: f.token()})
		case wire.Auth:
			f.login(c, q.User)
			reply(wire.Accept{User: q.User, Token: f.token()})
		case wire.Msg:
			f.mu.RLock()
			to := f.users[q.Target]
			f.mu.RUnlock()
			if to == nil {
				reply(wire.NotOnline{Reason: wire.ReasonNotOnline})
				continue
			}
			out, _ = wire.Relay{Target: q.Target, Sender: q.Sender, Text: q.Text}.AppendTo(out[:0])
			to.write(out)
		case wire.GroupMsg:
			out, _ = wire.RelayGroup{Sender: q.Sender, Text: q.Text}.AppendTo(out[:0])
			members = members[:0]
			f.mu.RLock()
			for m := range f.group {
				if m != c {
					members = append(members, m)
				}
			}
			f.mu.RUnlock()
			for _, m := range members {
				m.write(out)
			}
			clear(members)
		case wire.Group:
			f.mu.Lock()
			if _, in := f.group[c]; in {
				delete(f.group, c)
			} else {
				f.group[c] = struct{}{}
			}
			f.mu.Unlock()
		case wire.Quit:
			reply(wire.End{Reason: wire.ReasonEndAccepted})
			return
		default:
			reply(wire.End{Fatal: true, Reason: wire.ReasonProtocol})
			return
		}
	}
}

// login names c; a later log-in under the same name takes the name over.
func (f *floorRelay) login(c *floorConn, name string) {
	f.mu.Lock()
	if c.name != "" && f.users[c.name] == c {
		delete(f.users, c.name)
	}
	c.name = name
	f.users[name] = c
	f.mu.Unlock()
	c.conn.SetDeadline(time.Time{})
}

// drop forgets c and closes it.
func (f *floorRelay) drop(c *floorConn) {
	f.mu.Lock()
	if c.name != "" && f.users[c.name] == c {
		delete(f.users, c.name)
	}
	delete(f.group, c)
	delete(f.conns, c)
	f.mu.Unlock()
	c.conn.Close()
}

// token is a new session token: a word, never checked.
func (f *floorRelay) token() string {
	return "floor" + strconv.FormatUint(f.tokens.Add(1), 16)
}
