package relaytest

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"io"
	"net"
	"reflect"
	"testing"
	"time"

	"sslmessager/internal/pki"
	"sslmessager/internal/wire"
)

// Client speaks the protocol by hand over real TLS, as any client could,
// and fails its test on anything unexpected. Passwords follow one rule in
// tests: "password-" + the user name as signed up.
type Client struct {
	T     testing.TB
	Conn  *tls.Conn
	R     *wire.Reader
	User  string
	Token string
}

// Dial connects to the server and completes the TLS handshake offering no
// ALPN, as the original clients do.
func (s *Server) Dial(t testing.TB) *Client {
	t.Helper()
	return s.DialWith(t, nil, nil)
}

// DialExt connects offering ALPN sslm/2, as our client does, and fails the
// test unless the server negotiates it.
func (s *Server) DialExt(t testing.TB) *Client {
	t.Helper()
	c := s.dial(t, nil, nil, []string{wire.ALPN})
	if p := c.Conn.ConnectionState().NegotiatedProtocol; p != wire.ALPN {
		t.Fatalf("ALPN %q negotiated, want %q", p, wire.ALPN)
	}
	return c
}

// DialKeys connects offering ALPN sslm/3 and sslm/2, as our client does,
// and fails the test unless the server negotiates sslm/3 (it does when it
// has a key directory, Options.Keys).
func (s *Server) DialKeys(t testing.TB) *Client {
	t.Helper()
	c := s.dial(t, nil, nil, []string{wire.ALPNKeys, wire.ALPN})
	if p := c.Conn.ConnectionState().NegotiatedProtocol; p != wire.ALPNKeys {
		t.Fatalf("ALPN %q negotiated, want %q", p, wire.ALPNKeys)
	}
	return c
}

// DialALPN connects offering the ALPN protocols protos (none: nil) and
// returns the client whatever the server negotiates.
func (s *Server) DialALPN(t testing.TB, protos ...string) *Client {
	t.Helper()
	return s.dial(t, nil, nil, protos)
}

// DialFrom connects from the local IP address ip (for example 127.0.0.2,
// "another address" on loopback).
func (s *Server) DialFrom(t testing.TB, ip string) *Client {
	t.Helper()
	return s.DialWith(t, &net.TCPAddr{IP: net.ParseIP(ip)}, nil)
}

// DialWith connects from local (nil: any) and calls prep on the TCP
// connection before the handshake, for example to shrink its buffers.
func (s *Server) DialWith(t testing.TB, local *net.TCPAddr, prep func(*net.TCPConn)) *Client {
	t.Helper()
	return s.dial(t, local, prep, nil)
}

func (s *Server) dial(t testing.TB, local *net.TCPAddr, prep func(*net.TCPConn), alpn []string) *Client {
	t.Helper()
	tc, err := pki.ClientTLSConfig(s.CAFile, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	tc.NextProtos = alpn
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != nil {
		d.LocalAddr = local
	}
	raw, err := d.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if prep != nil {
		prep(raw.(*net.TCPConn))
	}
	conn := tls.Client(raw, tc)
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := conn.Handshake(); err != nil {
		raw.Close()
		t.Fatal(err)
	}
	conn.SetDeadline(time.Time{})
	c := &Client{T: t, Conn: conn, R: wire.NewReader(conn, 4096)}
	t.Cleanup(func() { conn.Close() })
	return c
}

// Raw writes s as it is.
func (c *Client) Raw(s string) {
	c.T.Helper()
	c.Conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.Conn, s); err != nil {
		c.T.Fatalf("write %.80q: %v", s, err)
	}
}

// Send formats and writes q.
func (c *Client) Send(q wire.Query) {
	c.T.Helper()
	b, err := wire.Format(q)
	if err != nil {
		c.T.Fatal(err)
	}
	c.Raw(string(b))
}

// Next returns the next server line other than CHECK, waiting up to 10 s.
func (c *Client) Next() (wire.Query, error) {
	c.T.Helper()
	for {
		c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := c.R.ReadLine()
		if err != nil {
			return nil, err
		}
		q, err := wire.ParseServer(line)
		if err != nil {
			c.T.Fatalf("%s got an unparsable line %.200q: %v", c.User, line, err)
		}
		if _, ok := q.(wire.Check); !ok {
			return q, nil
		}
	}
}

// MustNext is Next that fails the test on an error.
func (c *Client) MustNext() wire.Query {
	c.T.Helper()
	q, err := c.Next()
	if err != nil {
		c.T.Fatalf("%s: %v", c.User, err)
	}
	return q
}

// Expect fails the test unless the next line is want.
func (c *Client) Expect(want wire.Query) {
	c.T.Helper()
	got, err := c.Next()
	if err != nil {
		c.T.Fatalf("%s waiting for %.200v: %v", c.User, want, err)
	}
	if !reflect.DeepEqual(got, want) {
		c.T.Fatalf("%s got %.200v, want %.200v", c.User, got, want)
	}
}

// ExpectClosed reads until the server closes the connection; any line
// before that fails the test.
func (c *Client) ExpectClosed() {
	c.T.Helper()
	q, err := c.Next()
	if err == nil {
		c.T.Fatalf("%s: got %.200v, want the connection closed", c.User, q)
	}
}

// SignUp signs user up with the test password and expects ACCEPT.
func (c *Client) SignUp(user string) {
	c.T.Helper()
	c.Send(wire.SignUp{User: user, Pass: "password-" + user})
	c.AcceptAs(user)
}

// LogIn logs user in with the test password and expects ACCEPT.
func (c *Client) LogIn(user string) {
	c.T.Helper()
	c.Send(wire.Auth{User: user, Pass: "password-" + user})
	c.AcceptAs(user)
}

// AcceptAs expects ACCEPT for user and keeps the token.
func (c *Client) AcceptAs(user string) {
	c.T.Helper()
	q, err := c.Next()
	if err != nil {
		c.T.Fatalf("log-in of %s: %v", user, err)
	}
	a, ok := q.(wire.Accept)
	if !ok || a.User != user || len(a.Token) < 32 {
		c.T.Fatalf("log-in of %s: got %#v", user, q)
	}
	c.User, c.Token = a.User, a.Token
}

// Msg sends a direct message.
func (c *Client) Msg(to, text string) {
	c.T.Helper()
	c.Send(wire.Msg{Target: to, Sender: c.User, Text: text, Token: c.Token})
}

// Upload sends a file in the sized form and expects it queued.
func (c *Client) Upload(to, name string, data []byte) {
	c.T.Helper()
	c.Send(wire.Upload{Name: name, Target: to, Size: int64(len(data)), Token: c.Token})
	c.Expect(wire.Proceed{})
	c.Conn.SetWriteDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.Conn.Write(data); err != nil {
		c.T.Fatal(err)
	}
	c.Send(wire.UploadEnd{Token: c.Token})
	c.Expect(wire.Notice{Text: wire.NoticeUploadComplete})
}

// File is one downloaded file.
type File struct {
	Header wire.FileHeader
	Data   []byte
}

// Download runs CMD <get> (with ack, CMD <get ack> and an ACKF for each
// file), checks each file's SHA-256 and returns the files.
func (c *Client) Download(ack bool) []File {
	c.T.Helper()
	c.Send(wire.Get{Ack: ack, Token: c.Token})
	begin, ok := c.MustNext().(wire.Begin)
	if !ok {
		c.T.Fatal("want BEGIN")
	}
	var files []File
	for range begin.Count {
		files = append(files, c.ReadFile())
	}
	c.Expect(wire.Notice{Text: wire.NoticeSendComplete})
	for _, f := range files {
		if Sum(f.Data) != f.Header.SHA256 {
			c.T.Fatalf("%s: hash mismatch", f.Header.Name)
		}
		if ack {
			c.Send(wire.AckFile{ID: f.Header.ID, Token: c.Token})
		}
	}
	return files
}

// ReadFile reads one file's header line, data and end marker.
func (c *Client) ReadFile() File {
	c.T.Helper()
	h, ok := c.MustNext().(wire.FileHeader)
	if !ok {
		c.T.Fatal("want a file header")
	}
	data := make([]byte, h.Size)
	c.Conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.ReadFull(c.R, data); err != nil {
		c.T.Fatal(err)
	}
	c.Expect(wire.FileEnd{})
	return File{h, data}
}

// Sum is the hex SHA-256 of b.
func Sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
