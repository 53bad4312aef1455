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
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"sslmessager/internal/accounts"
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
	Accounts *accounts.Store // closed by the test's cleanup
	Spool    *spool.Spool    // nil with Options.NoSpool
}

// Options change what Start starts. The zero value is a server with a
// default spool and a discarding logger.
type Options struct {
	Spool   spool.Options // options of the spool in Dir/spool
	NoSpool bool          // no spool: file transfer disabled
	// Config may change the configuration before relay.New, for example
	// its Logger, timeouts or limits. Accounts get the Logger it leaves.
	// Since every test client comes from 127.0.0.1, Start lifts the
	// per-address limits on connections, handshakes and sign-ups
	// (relay.NoLimit) before Config runs; a test of those limits sets them
	// here.
	Config func(*relay.Config)
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
// opts.NoSpool, a spool in Dir/spool. The test's cleanup shuts it down
// (waiting up to 10 s), fails the test if Serve returned anything but
// relay.ErrServerClosed, and closes the account store.
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
	if opts.Config != nil {
		opts.Config(&cfg)
	}
	acc, err := accounts.Open(filepath.Join(dir, "users.csv"), accounts.Options{Cost: bcrypt.MinCost, Logger: cfg.Logger})
	if err != nil {
		t.Fatal(err)
	}
	var sp *spool.Spool
	if !opts.NoSpool {
		if sp, err = spool.Open(filepath.Join(dir, "spool"), opts.Spool); err != nil {
			acc.Close()
			t.Fatal(err)
		}
	}
	cfg.Accounts, cfg.Spool = acc, sp
	srv, err := relay.New(cfg)
	if err != nil {
		acc.Close()
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		acc.Close()
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-served; !errors.Is(err, relay.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
		acc.Close()
	})
	return &Server{Server: srv, Addr: l.Addr().String(), CAFile: filepath.Join(dir, pki.CAFile), Dir: dir, Accounts: acc, Spool: sp}
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
