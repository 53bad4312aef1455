package messenger

import (
	"crypto/tls"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"sslmessager/internal/pki"
	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

// waitLimit bounds every wait in these tests.
const waitLimit = 10 * time.Second

// waitOutput waits until out holds want.
func waitOutput(t *testing.T, out *relaytest.SyncBuffer, want string) {
	t.Helper()
	relaytest.CheckFor(t, waitLimit, func() error {
		if s := out.String(); !strings.Contains(s, want) {
			return fmt.Errorf("output does not hold %q; it is:\n%s", want, s)
		}
		return nil
	})
}

// fakeServer is a scripted TLS peer: the test reads each client query and
// writes each server line itself, so every step is deterministic.
type fakeServer struct {
	addr   string
	caFile string
	conns  chan *fakeConn
}

type fakeConn struct {
	t  *testing.T
	tc *tls.Conn
	r  *wire.Reader
}

func startFake(t *testing.T) *fakeServer {
	t.Helper()
	dir := relaytest.Certs(t)
	cfg, err := pki.ServerTLSConfig(filepath.Join(dir, pki.ServerCertFile), filepath.Join(dir, pki.ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{addr: ln.Addr().String(), caFile: filepath.Join(dir, pki.CAFile), conns: make(chan *fakeConn, 4)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			tc.SetDeadline(time.Now().Add(waitLimit))
			if tc.Handshake() != nil {
				tc.Close()
				continue
			}
			tc.SetDeadline(time.Time{})
			s.conns <- &fakeConn{t: t, tc: tc, r: wire.NewReader(tc, 4096)}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		close(s.conns)
		for c := range s.conns {
			c.tc.Close()
		}
	})
	return s
}

// accept returns the next connection, handshake done.
func (s *fakeServer) accept(t *testing.T) *fakeConn {
	t.Helper()
	select {
	case c := <-s.conns:
		t.Cleanup(func() { c.tc.Close() })
		return c
	case <-time.After(waitLimit):
		t.Fatal("no connection")
		return nil
	}
}

// next reads and parses the next client query.
func (c *fakeConn) next() wire.Query {
	c.t.Helper()
	c.tc.SetReadDeadline(time.Now().Add(waitLimit))
	line, err := c.r.ReadLine()
	if err != nil {
		c.t.Fatalf("server read: %v", err)
	}
	q, err := wire.ParseClient(line)
	if err != nil {
		c.t.Fatalf("server parse %q: %v", line, err)
	}
	return q
}

// expectEOF checks that the client sends nothing more and closes.
func (c *fakeConn) expectEOF() {
	c.t.Helper()
	c.tc.SetReadDeadline(time.Now().Add(waitLimit))
	if line, err := c.r.ReadLine(); err == nil {
		c.t.Fatalf("server read %q, want end of stream", line)
	}
}

func (c *fakeConn) send(q wire.Query) {
	c.t.Helper()
	b, err := wire.Format(q)
	if err != nil {
		c.t.Fatal(err)
	}
	c.tc.SetWriteDeadline(time.Now().Add(waitLimit))
	if _, err := c.tc.Write(b); err != nil {
		c.t.Fatalf("server write: %v", err)
	}
}

const testToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// loggedIn dials the fake server and completes a log-in as user.
func loggedIn(t *testing.T, s *fakeServer, user string) (*Conn, *fakeConn) {
	t.Helper()
	type result struct {
		c   *Conn
		err error
	}
	res := make(chan result, 1)
	go func() {
		c, err := Dial(t.Context(), s.addr, s.caFile)
		if err == nil {
			err = c.Login(user, "secret-password", false)
		}
		res <- result{c, err}
	}()
	fc := s.accept(t)
	if q, ok := fc.next().(wire.Auth); !ok || q.User != user {
		t.Fatalf("server got %#v, want AUTH %s", q, user)
	}
	fc.send(wire.Accept{User: user, Token: testToken})
	r := <-res
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.c.Close() })
	return r.c, fc
}

// running is a Run in progress with its input pipe.
type running struct {
	in   *io.PipeWriter
	out  *relaytest.SyncBuffer
	done chan error
}

func startRun(t *testing.T, c *Conn, opts Options) *running {
	t.Helper()
	pr, pw := io.Pipe()
	r := &running{in: pw, out: &relaytest.SyncBuffer{}, done: make(chan error, 1)}
	if opts.Now == nil {
		opts.Now = fixedClock
	}
	if opts.Downloads == "" {
		// A chat session takes files pushed to it: never into the source tree.
		opts.Downloads = t.TempDir()
	}
	ended := make(chan struct{})
	go func() { r.done <- c.Run(t.Context(), pr, r.out, opts); close(ended) }()
	// Registered after the key store's and downloads' temporary
	// directories, so it runs before they are removed: the session's last
	// writes (its key state) are over by then.
	t.Cleanup(func() {
		pw.Close()
		c.Close()
		select {
		case <-ended:
		case <-time.After(waitLimit):
			t.Errorf("the session did not end within %v of the test", waitLimit)
		}
	})
	return r
}

func (r *running) typeLine(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(r.in, line+"\n"); err != nil {
		t.Fatalf("type %q: %v", line, err)
	}
}

func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		return err
	case <-time.After(waitLimit):
		t.Fatalf("Run did not return; output:\n%s", r.out.String())
		return nil
	}
}

// expectCarbons checks that the next query is the carbons opt-in, which
// an interactive session sends first of all.
func (c *fakeConn) expectCarbons() {
	c.t.Helper()
	if q := c.next(); q != (wire.Carbons{Token: testToken}) {
		c.t.Fatalf("server got %#v, want CMD <carbons> first", q)
	}
}
