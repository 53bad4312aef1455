// Package messenger is the SSL-Messager client core: the TLS connection and
// log-in (Dial, Login), the interactive session (Run: a receiver goroutine
// that prints what the server sends and an input loop that reads your lines
// and sends them, :upload: and :download: included), the one-shot Send,
// Upload and Download, and the display rules (Sanitize and the message
// layout). It needs no terminal: the client binary decides
// whether input is a terminal and passes that in Options, so everything here
// is driven by tests through pipes.
//
// Every protocol line is built and parsed by internal/wire; every string
// that came from the network passes Sanitize before it is printed.
package messenger

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"sslmessager/internal/pki"
	"sslmessager/internal/wire"
)

// Defaults. Each is documented where it applies.
const (
	// DefaultPort is used when the server address names no port.
	DefaultPort = "18443"
	// DialTimeout bounds the TCP connect plus the TLS handshake.
	DialTimeout = 10 * time.Second
	// LoginTimeout bounds the wait for the answer to AUTH or PUT (the
	// server hashes the password first, which takes a moment).
	LoginTimeout = 30 * time.Second
	// WriteTimeout bounds one write to the server; a server that accepts
	// nothing for this long counts as gone.
	WriteTimeout = 30 * time.Second
	// QuitTimeout is how long :quit: waits for END <end accepted>.
	QuitTimeout = 2 * time.Second
	// SendTimeout bounds the whole of Send when ctx has no deadline.
	SendTimeout = 30 * time.Second
	// readBufferSize is the buffer under the line reader.
	readBufferSize = 16 << 10
)

// ErrConnectionClosed is returned when the server closed the connection
// without an END line.
var ErrConnectionClosed = errors.New("the server closed the connection")

// VerifyError is returned by Dial when the server's certificate does not
// verify against the CA file. Its text is pki.DescribeVerifyErrorWith
// (which names the fingerprint the server offered and ends with the one
// hint that fits).
type VerifyError struct {
	Description string // pki.DescribeVerifyErrorWith of Err
	Err         error
}

func (e *VerifyError) Error() string { return e.Description }

func (e *VerifyError) Unwrap() error { return e.Err }

// RefusedError is the server's refusal of a log-in or sign-up.
type RefusedError struct {
	Reason string // as the server sent it; Error sanitizes it
	Retry  bool   // TRY: another AUTH or PUT may follow on the same connection
}

func (e *RefusedError) Error() string { return "refused: " + Sanitize(e.Reason) }

// ClosedError is an END line that ended the session.
type ClosedError struct {
	Reason string // as the server sent it; Error sanitizes it
	Fatal  bool   // END * <reason>: the server dropped us
}

func (e *ClosedError) Error() string {
	return "the server closed the session: " + Sanitize(e.Reason)
}

// NotOnlineError is Send's error when the target was not online.
type NotOnlineError struct{ Target string }

func (e *NotOnlineError) Error() string { return Sanitize(e.Target) + " is not online" }

// Conn is one TLS connection to a server. Login sets the user and token.
// One goroutine at a time reads it (Login, Send, Upload, Download or the
// receiver of Run); writes are serialized inside, an upload's data
// included.
type Conn struct {
	addr string
	tc   *tls.Conn
	r    *wire.Reader

	wmu sync.Mutex // serializes writes and their deadlines

	user, token string // set by Login; read-only afterwards
	ext         bool   // the server negotiated ALPN sslm/2 or sslm/3: our extensions are there
	keys        bool   // the server negotiated ALPN sslm/3: its key directory is there
}

// Dial connects to addr ("host:port"; a missing port is DefaultPort) and
// completes the TLS handshake, verifying the server against caFile with
// the host part of addr as the server name. Verification is never skipped.
func Dial(ctx context.Context, addr, caFile string) (*Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		// "localhost" or "::1" without a port.
		addr = net.JoinHostPort(addr, DefaultPort)
		if host, _, err = net.SplitHostPort(addr); err != nil || host == "" {
			return nil, fmt.Errorf("bad server address %q: want host:port", addr)
		}
	}
	if host == "" {
		return nil, fmt.Errorf("bad server address %q: no host", addr)
	}
	cfg, err := pki.ClientTLSConfig(caFile, host)
	if err != nil {
		return nil, err
	}
	// Offer our extensions, with the key directory first; a server that
	// knows none (the original) negotiates none, and we then send none
	// of our queries.
	cfg.NextProtos = []string{wire.ALPNKeys, wire.ALPN}
	ctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	d := tls.Dialer{Config: cfg}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if isVerifyError(err) {
			return nil, &VerifyError{Description: pki.DescribeVerifyErrorWith(err, cfg.RootCAs), Err: err}
		}
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	tc := nc.(*tls.Conn)
	proto := tc.ConnectionState().NegotiatedProtocol
	ext, keys := proto == wire.ALPN || proto == wire.ALPNKeys, proto == wire.ALPNKeys
	return &Conn{addr: addr, tc: tc, r: wire.NewReader(tc, readBufferSize), ext: ext, keys: keys}, nil
}

func isVerifyError(err error) bool {
	var cve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cve) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}

// Extended reports whether the server speaks our extensions (it
// negotiated ALPN sslm/2). Against the original server it is false and the
// client sends none of the queries PROTOCOL.md marks "sslm/2 only".
func (c *Conn) Extended() bool { return c.ext }

// KeyDirectory reports whether the server has a key directory (it
// negotiated ALPN sslm/3): only then may SETKEY and GETKEY be sent.
func (c *Conn) KeyDirectory() bool { return c.keys }

// Addr is the server address as dialled.
func (c *Conn) Addr() string { return c.addr }

// User is the logged-in user name as the server registered it ("" before
// Login succeeds).
func (c *Conn) User() string { return c.user }

// Close closes the connection at once. Closing twice is harmless.
func (c *Conn) Close() error { return c.tc.Close() }

// send formats q and writes it as one write under WriteTimeout.
func (c *Conn) send(q wire.Query) error {
	b, err := wire.Format(q)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(b)
}

// sendAll formats qs and writes them in one write.
func (c *Conn) sendAll(qs ...wire.Query) error {
	var b []byte
	for _, q := range qs {
		var err error
		if b, err = q.AppendTo(b); err != nil {
			return err
		}
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(b)
}

// writeLocked writes b under WriteTimeout; c.wmu is held. Uploads hold the
// lock from BEGINF to ENDF and write the file data through here.
func (c *Conn) writeLocked(b []byte) error {
	c.tc.SetWriteDeadline(time.Now().Add(WriteTimeout))
	if _, err := c.tc.Write(b); err != nil {
		return fmt.Errorf("send to server: %w", err)
	}
	return nil
}

// read returns the next parsed server line. A line that does not parse is
// returned as a *wire.ProtocolError; the stream is still in step after it.
func (c *Conn) read() (wire.Query, error) {
	line, err := c.r.ReadLine()
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, ErrConnectionClosed
		}
		if errors.Is(err, wire.ErrLineTooLong) {
			return nil, fmt.Errorf("the server sent an over-long line: %w", err)
		}
		return nil, fmt.Errorf("read from server: %w", err)
	}
	return wire.ParseServer(line)
}

// Reasons of a sign-up refused before anything is sent: the server's
// TRY reasons for the same rules.
const (
	reasonBadUserName = "invalid username: "
	reasonBadPassword = "invalid password: "
)

// Login sends AUTH (or PUT when signUp) and waits for the answer. On
// ACCEPT it keeps the user name as registered and the token. A refusal is
// a *RefusedError: Retry is true for TRY (another Login may follow on this
// connection); otherwise the server closes the connection. A sign-up whose
// user name or password breaks the rules (wire.CheckUserName,
// wire.CheckPassword) is refused here, before anything is sent, with the
// server's reason for it and Retry true.
func (c *Conn) Login(user, pass string, signUp bool) error {
	if c.token != "" {
		return errors.New("already logged in")
	}
	var q wire.Query = wire.Auth{User: user, Pass: pass}
	if signUp {
		if err := wire.CheckUserName(user); err != nil {
			return &RefusedError{Reason: reasonBadUserName + err.Error(), Retry: true}
		}
		if err := wire.CheckPassword(pass); err != nil {
			return &RefusedError{Reason: reasonBadPassword + err.Error(), Retry: true}
		}
		q = wire.SignUp{User: user, Pass: pass}
	}
	if err := c.send(q); err != nil {
		if errors.Is(err, wire.ErrField) {
			return fmt.Errorf("user name and password must each be one word without spaces: a name of 1 to %d bytes, a password of 1 to %d", wire.MaxWordBytes, wire.MaxPasswordWordBytes)
		}
		return err
	}
	c.tc.SetReadDeadline(time.Now().Add(LoginTimeout))
	defer c.tc.SetReadDeadline(time.Time{})
	for {
		q, err := c.read()
		var pe *wire.ProtocolError
		if errors.As(err, &pe) {
			return fmt.Errorf("unexpected answer to log-in: %s", Sanitize(pe.Error()))
		}
		if err != nil {
			return err
		}
		switch q := q.(type) {
		case wire.Accept:
			c.user, c.token = q.User, q.Token
			return nil
		case wire.Try:
			return &RefusedError{Reason: q.Reason, Retry: true}
		case wire.End:
			return &RefusedError{Reason: q.Reason}
		case wire.Check:
		default:
			return fmt.Errorf("unexpected answer to log-in: %s", q.Verb())
		}
	}
}

// checkText says whether s can be sent as a message.
func checkText(s string) error {
	if n := runeCount(s); n > wire.MaxTextRunes {
		return fmt.Errorf("message not sent: %d characters, the limit is %d", n, wire.MaxTextRunes)
	}
	return nil
}

// NotDeliveredError is Send's error when the server refused a message
// for an offline user (their queue or the server's storage is full).
type NotDeliveredError struct{ Target, Reason string }

func (e *NotDeliveredError) Error() string {
	return "message to " + Sanitize(e.Target) + " not delivered: " + Sanitize(e.Reason)
}

// Send is the one-shot send: it sends text to the user to, then quits, and
// reads the server's answers until END. It returns nil when the message
// was relayed, or stored for to, who is offline (SendTo tells which); a
// *NotOnlineError when the server answered CNT <user not online> (no such
// user, or a server that stores no offline messages), a
// *NotDeliveredError for another CNT, a *ClosedError for any END other
// than <end accepted>. c must be logged in; Send closes nothing.
func Send(ctx context.Context, c *Conn, to, text string) error {
	_, err := SendTo(ctx, c, to, text)
	return err
}

// SendTo is Send that also reports whether the server stored the message
// for an offline user (queued) instead of relaying it at once.
func SendTo(ctx context.Context, c *Conn, to, text string) (queued bool, err error) {
	if c.token == "" {
		return false, errors.New("not logged in")
	}
	if err := wire.CheckUserName(to); err != nil {
		return false, fmt.Errorf("target: %w", err)
	}
	if err := checkText(text); err != nil {
		return false, err
	}
	if text == "" {
		return false, errors.New("empty message")
	}
	return sendWords(ctx, c, to, []wire.Msg{{Target: to, Sender: c.user, Text: text}}) // e2esend.go
}
