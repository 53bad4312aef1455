// Package relaytest is test support for packages that need a real server:
// it starts the relay in-process on 127.0.0.1:0 with fresh certificates,
// accounts and a file spool in a temporary directory, and has the small
// helpers those tests share. It is imported only from _test.go files.
package relaytest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"sslmessager/internal/accounts"
	"sslmessager/internal/keydir"
	"sslmessager/internal/offline"
	"sslmessager/internal/pki"
	"sslmessager/internal/relay"
	"sslmessager/internal/spool"
)

// Server is a running relay with the files it was started from.
type Server struct {
	*relay.Server
	Addr     string          // host:port the server listens on
	CAFile   string          // the CA certificate clients should trust
	Dir      string          // certificates, users.csv and the spool directory
	Accounts *accounts.Store // closed by Stop and the test's cleanup
	Spool    *spool.Spool    // nil with Options.NoSpool
	Offline  *offline.Store  // nil unless Options.Offline
	Keys     *keydir.Store   // nil unless Options.Keys

	t      testing.TB
	opts   Options
	cfg    relay.Config
	served chan error
}

// Options change what Start starts. The zero value is a server with a
// default spool and a logger that writes to the test log under -v and
// nowhere otherwise.
type Options struct {
	Spool   spool.Options // options of the spool in Dir/spool
	NoSpool bool          // no spool: file transfer disabled
	// Offline, if set, stores direct messages to offline users in
	// Dir/offline with these options; nil leaves offline messages off (a
	// MSG to an offline user gets CNT <user not online>).
	Offline *offline.Options
	// Keys, if set, keeps a key directory in Dir/keys with these options
	// and offers ALPN sslm/3 (DialKeys); nil leaves it off.
	Keys *keydir.Options
	// Config may change the configuration before relay.New, for example
	// its Logger, timeouts or limits. Accounts get the Logger it leaves.
	// Since every test client comes from 127.0.0.1, Start lifts the
	// per-address limits on connections, handshakes and sign-ups
	// (relay.NoLimit) before Config runs; a test of those limits sets them
	// here.
	Config func(*relay.Config)
	// Wrap, if set, wraps the listener, for example to change the
	// accepted connections' socket options.
	Wrap func(net.Listener) net.Listener
	// Listen is the address to listen on; "127.0.0.1:0" if empty.
	Listen string
}

// Certs writes a CA and a server certificate for 127.0.0.1 and localhost
// into a new temporary directory and returns it.
func Certs(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := pki.Generate(pki.GenerateOptions{Dir: dir, Hosts: []string{"127.0.0.1", "localhost"}}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Start starts a real server on 127.0.0.1:0 with certificates from Certs,
// accounts at bcrypt's minimum cost in Dir/users.csv and, unless
// opts.NoSpool, a spool in Dir/spool. The test's cleanup stops it (see
// Stop).
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	dir := Certs(t)
	tc, err := pki.ServerTLSConfig(filepath.Join(dir, pki.ServerCertFile), filepath.Join(dir, pki.ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	cfg := relay.Config{
		TLSConfig:          tc,
		Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
		MaxConnsPerIP:      relay.NoLimit,
		MaxHandshakesPerIP: relay.NoLimit,
		MaxSignUpsPerIP:    relay.NoLimit,
	}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if opts.Config != nil {
		opts.Config(&cfg)
	}
	s := &Server{t: t, opts: opts, cfg: cfg, Dir: dir, CAFile: filepath.Join(dir, pki.CAFile)}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// testWriter sends log lines to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (s *Server) start() {
	t := s.t
	t.Helper()
	acc, err := accounts.Open(filepath.Join(s.Dir, "users.csv"), accounts.Options{Cost: bcrypt.MinCost, Logger: s.cfg.Logger})
	if err != nil {
		t.Fatal(err)
	}
	var sp *spool.Spool
	if !s.opts.NoSpool {
		so := s.opts.Spool
		if so.Logger == nil {
			so.Logger = s.cfg.Logger
		}
		if sp, err = spool.Open(filepath.Join(s.Dir, "spool"), so); err != nil {
			acc.Close()
			t.Fatal(err)
		}
	}
	var off *offline.Store
	if s.opts.Offline != nil {
		oo := *s.opts.Offline
		if oo.Logger == nil {
			oo.Logger = s.cfg.Logger
		}
		if off, err = offline.Open(filepath.Join(s.Dir, "offline"), oo); err != nil {
			acc.Close()
			t.Fatal(err)
		}
	}
	var keys *keydir.Store
	if s.opts.Keys != nil {
		ko := *s.opts.Keys
		if ko.Logger == nil {
			ko.Logger = s.cfg.Logger
		}
		if keys, err = keydir.Open(filepath.Join(s.Dir, "keys"), ko); err != nil {
			acc.Close()
			t.Fatal(err)
		}
	}
	cfg := s.cfg
	cfg.Accounts, cfg.Spool, cfg.Offline, cfg.Keys = acc, sp, off, keys
	srv, err := relay.New(cfg)
	if err != nil {
		acc.Close()
		t.Fatal(err)
	}
	addr := s.opts.Listen
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := relay.Listen(addr)
	if err != nil {
		acc.Close()
		t.Fatal(err)
	}
	if s.opts.Wrap != nil {
		l = s.opts.Wrap(l)
	}
	s.served = make(chan error, 1)
	go func(served chan error) { served <- srv.Serve(l) }(s.served)
	s.Server, s.Addr, s.Accounts, s.Spool, s.Offline, s.Keys = srv, l.Addr().String(), acc, sp, off, keys
}

// Stop shuts the server down gracefully (waiting up to 10 s), fails the
// test if Shutdown overran or Serve returned anything but
// relay.ErrServerClosed, and closes the account store. Stopping a stopped
// server does nothing.
func (s *Server) Stop() {
	if s.Server == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Server.Shutdown(ctx); err != nil {
		s.t.Errorf("Shutdown: %v", err)
	}
	if err := <-s.served; !errors.Is(err, relay.ErrServerClosed) {
		s.t.Errorf("Serve: %v", err)
	}
	s.Accounts.Close()
	s.Server = nil
}

// Restart stops the server and starts a new one on the same directory
// (same certificates, users.csv, spool, offline store and key directory),
// on a new port.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// ClientTLS is a client configuration that trusts the server's CA.
func (s *Server) ClientTLS(t testing.TB) *tls.Config {
	t.Helper()
	tc, err := pki.ClientTLSConfig(s.CAFile, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return tc
}

// DialTCP opens a plain TCP connection to the server from the local IP
// address from ("" for any; other loopback addresses such as 127.0.0.2
// stand for another client address), closed at the test's cleanup.
func (s *Server) DialTCP(t testing.TB, from string) (*net.TCPConn, error) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", s.Addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn), nil
}

// DialTLS is DialTCP followed by a TLS handshake that must end within 5 s.
func (s *Server) DialTLS(t testing.TB, from string) (*tls.Conn, error) {
	t.Helper()
	raw, err := s.DialTCP(t, from)
	if err != nil {
		return nil, err
	}
	c := tls.Client(raw, s.ClientTLS(t))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// CheckFor calls f until it returns nil or limit passes, then fails the
// test with f's last error.
func CheckFor(t testing.TB, limit time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SyncBuffer is an io.Writer that tests can read while others write.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
