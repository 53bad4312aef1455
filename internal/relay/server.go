// Package relay is the SSL-Messager server core: the TLS listener, one
// session per connection with its reader and writer goroutines, the hub of
// online users and group members, the liveness checker, and file transfer
// into the spool.
//
// Lock order (take them in this order, never the other way):
// Server.mu, then hub.mu, then hub.groupMu, then outbound.mu. None of them
// is held during network or disk I/O.
package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"sslmessager/internal/accounts"
	"sslmessager/internal/spool"
	"sslmessager/internal/wire"
)

// Defaults of Config. Each is the value a zero field gets.
const (
	// DefaultCheckInterval is how often every session gets a CHECK.
	DefaultCheckInterval = 15 * time.Second
	// DefaultHandshakeTimeout bounds the TLS handshake.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultLoginTimeout bounds the log-in phase, from the end of the
	// handshake to ACCEPT.
	DefaultLoginTimeout = 60 * time.Second
	// DefaultWriteTimeout is how long a write may make no progress before
	// the peer counts as dead.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultUploadIdleTimeout is how long an upload may send nothing. The
	// original client pauses 5 s before its ENDF, so this stays well above.
	DefaultUploadIdleTimeout = 60 * time.Second
	// DefaultMaxQueueBytes caps one session's outbound queue; a consumer
	// that lets it overflow is dropped.
	DefaultMaxQueueBytes = 4 << 20
	// DefaultMaxConns caps open connections, logged in or not.
	DefaultMaxConns = 50000
	// DefaultMaxSessionsPerUser caps one user's sessions; a log-in at the
	// cap ends the user's oldest session.
	DefaultMaxSessionsPerUser = 8
	// DefaultHandshakeSlots caps TLS handshakes under way at once; a
	// connection that finds no free slot is closed at once.
	DefaultHandshakeSlots = 512
	// DefaultMaxLoginTries is how many AUTH/PUT attempts one connection
	// gets (each refused PUT answers TRY).
	DefaultMaxLoginTries = 5
	// DefaultMaxFailedLogins is how many failed log-ins one address may
	// have within FailedLoginWindow before its AUTHs are refused at once.
	DefaultMaxFailedLogins = 10
	// DefaultFailedLoginWindow is the window for DefaultMaxFailedLogins.
	DefaultFailedLoginWindow = time.Minute
	// DefaultStallWait is the longest a producer pauses, per query, while a
	// recipient's queue is over its high-water mark.
	DefaultStallWait = 100 * time.Millisecond
	// readBufferSize is each connection's read buffer.
	readBufferSize = 1024
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("relay: server closed")

// Config is everything a Server needs. Zero durations and sizes take the
// defaults above.
type Config struct {
	TLSConfig *tls.Config     // required; a server certificate
	Accounts  *accounts.Store // required
	Spool     *spool.Spool    // nil: uploads and downloads are refused
	Logger    *slog.Logger    // nil: slog.Default()

	CheckInterval     time.Duration
	HandshakeTimeout  time.Duration
	LoginTimeout      time.Duration
	WriteTimeout      time.Duration
	UploadIdleTimeout time.Duration
	StallWait         time.Duration
	MaxQueueBytes     int
	MaxConns          int
	// MaxSessionsPerUser caps one user's sessions (a log-in at the cap
	// ends the oldest); 0 takes the default.
	MaxSessionsPerUser int
	HandshakeSlots     int
	MaxLoginTries      int
	MaxFailedLogins    int
	FailedLoginWindow  time.Duration
}

func (c *Config) setDefaults() error {
	if c.TLSConfig == nil || (len(c.TLSConfig.Certificates) == 0 && c.TLSConfig.GetCertificate == nil) {
		return errors.New("relay: config needs a TLS certificate")
	}
	if c.Accounts == nil {
		return errors.New("relay: config needs an account store")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	orDefault(&c.CheckInterval, DefaultCheckInterval)
	orDefault(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	orDefault(&c.LoginTimeout, DefaultLoginTimeout)
	orDefault(&c.WriteTimeout, DefaultWriteTimeout)
	orDefault(&c.UploadIdleTimeout, DefaultUploadIdleTimeout)
	orDefault(&c.StallWait, DefaultStallWait)
	orDefault(&c.FailedLoginWindow, DefaultFailedLoginWindow)
	orDefault(&c.MaxQueueBytes, DefaultMaxQueueBytes)
	orDefault(&c.MaxConns, DefaultMaxConns)
	orDefault(&c.MaxSessionsPerUser, DefaultMaxSessionsPerUser)
	orDefault(&c.HandshakeSlots, DefaultHandshakeSlots)
	orDefault(&c.MaxLoginTries, DefaultMaxLoginTries)
	orDefault(&c.MaxFailedLogins, DefaultMaxFailedLogins)
	if c.MaxQueueBytes < 2*wire.MaxLineBytes {
		return fmt.Errorf("relay: queue cap %d is below two lines (%d bytes)", c.MaxQueueBytes, 2*wire.MaxLineBytes)
	}
	return nil
}

// orDefault sets *p to v unless it is positive.
func orDefault[T int | time.Duration](p *T, v T) {
	if *p <= 0 {
		*p = v
	}
}

// Server relays messages and files between sessions. Create it with New.
type Server struct {
	cfg       Config
	tls       *tls.Config
	hub       *hub
	guard     *loginGuard
	log       *slog.Logger
	highWater int
	slots     chan struct{}

	mu        sync.Mutex
	listeners map[net.Listener]struct{} // guarded by mu
	conns     map[*session]struct{}     // guarded by mu; every session, logged in or not
	closing   bool                      // guarded by mu
	done      chan struct{}             // closed by Shutdown/Close

	nconns atomic.Int64
	wg     sync.WaitGroup // every goroutine the server starts
}

// New checks cfg and returns a server that is not yet listening.
func New(cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	tc := cfg.TLSConfig.Clone()
	if tc.MinVersion < tls.VersionTLS12 {
		tc.MinVersion = tls.VersionTLS12
	}
	// Each line must stay one TLS record for the original client.
	tc.DynamicRecordSizingDisabled = true
	s := &Server{
		cfg:       cfg,
		tls:       tc,
		hub:       newHub(),
		guard:     newLoginGuard(cfg.MaxFailedLogins, cfg.FailedLoginWindow),
		log:       cfg.Logger,
		highWater: cfg.MaxQueueBytes / 4,
		slots:     make(chan struct{}, cfg.HandshakeSlots),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*session]struct{}),
		done:      make(chan struct{}),
	}
	s.goTracked(s.checker)
	return s, nil
}

// goTracked runs f in a goroutine that Shutdown and Close wait for.
func (s *Server) goTracked(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// Listen opens a TCP listener on addr whose connections use the server's
// keep-alive settings.
func Listen(addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAliveConfig: keepAlive}
	return lc.Listen(context.Background(), "tcp", addr)
}

// keepAlive makes the kernel find a vanished peer of an idle connection.
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 10 * time.Second, Count: 3}

// Serve accepts connections on l until Shutdown or Close, and then returns
// ErrServerClosed. It closes l. A temporary accept error is retried after a
// growing pause, never spun on.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()

	s.log.Info("listening", "addr", l.Addr().String())
	var pause time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			select {
			case <-s.done:
				return ErrServerClosed
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "err", err, "pause", pause)
				select {
				case <-time.After(pause):
					continue
				case <-s.done:
					return ErrServerClosed
				}
			}
			return err
		}
		pause = 0
		if s.nconns.Add(1) > int64(s.cfg.MaxConns) {
			s.nconns.Add(-1)
			s.log.Warn("connection refused: at the connection cap", "remote", c.RemoteAddr().String(), "max", s.cfg.MaxConns)
			c.Close()
			continue
		}
		s.goTracked(func() { s.serveConn(c) })
	}
}

// serveConn runs one connection's handshake and log-in, then hands the
// session to a fresh goroutine for the rest of its life: this one's stack
// grew for the handshake and the password hash and would stay that large
// while the connection sits idle. A panic ends this connection only.
func (s *Server) serveConn(raw net.Conn) {
	var sess *session
	handedOff := false
	defer func() {
		s.recoverConn(raw)
		switch {
		case handedOff:
		case sess != nil:
			sess.cleanup()
		default:
			s.nconns.Add(-1)
		}
	}()
	if tc, ok := raw.(*net.TCPConn); ok {
		tc.SetKeepAliveConfig(keepAlive)
	}
	select {
	case s.slots <- struct{}{}:
	default:
		s.log.Warn("connection refused: all handshake slots busy", "remote", raw.RemoteAddr().String())
		raw.Close()
		return
	}
	bc := &batchConn{Conn: raw, timeout: s.cfg.WriteTimeout}
	conn := tls.Server(bc, s.tls)
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.HandshakeTimeout)
	err := conn.HandshakeContext(ctx)
	cancel()
	<-s.slots
	if err != nil {
		s.log.Debug("handshake failed", "remote", raw.RemoteAddr().String(), "err", err)
		raw.Close()
		return
	}
	if ns := newSession(s, conn, bc); !s.track(ns) {
		// Shutdown began during the handshake: say so, then close.
		conn.Write(lineShutdown)
		conn.Close()
		return
	} else {
		sess = ns
	}
	if !sess.login() {
		return
	}
	handedOff = true
	s.goTracked(func() {
		defer sess.cleanup()
		defer s.recoverConn(raw)
		sess.readLoop()
	})
}

// recoverConn, deferred, turns a panic into a log line and a closed
// connection.
func (s *Server) recoverConn(raw net.Conn) {
	if r := recover(); r != nil {
		s.log.Error("panic in connection", "remote", raw.RemoteAddr().String(), "panic", r, "stack", string(debug.Stack()))
		raw.Close()
	}
}

// track registers sess for Shutdown; false once the server is closing.
func (s *Server) track(sess *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[sess] = struct{}{}
	return true
}

func (s *Server) untrack(sess *session) {
	s.mu.Lock()
	delete(s.conns, sess)
	s.mu.Unlock()
}

// checker sends CHECK to every logged-in session on each tick. A peer that
// stops reading is dropped by its write deadline; one whose queue
// overflows, as a slow consumer.
func (s *Server) checker() {
	t := time.NewTicker(s.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case now := <-t.C:
			for _, sess := range s.hub.sessions() {
				sess.send(lineCheck)
			}
			s.guard.sweep(now)
		}
	}
}

// Online returns the names of the users online now, sorted.
func (s *Server) Online() []string { return s.hub.names(int(^uint(0) >> 1)) }

// Conns is the number of open connections.
func (s *Server) Conns() int { return int(s.nconns.Load()) }

// Stats is a snapshot of what a server holds.
type Stats struct {
	Conns        int // open connections, logged in or not
	Sessions     int // logged-in sessions
	Users        int // users online (each once, however many sessions)
	GroupMembers int // sessions in group mode
}

// Stats returns a snapshot of what the server holds now.
func (s *Server) Stats() Stats {
	return Stats{
		Conns:        s.Conns(),
		Sessions:     s.hub.sessionCount(),
		Users:        len(s.hub.names(int(^uint(0) >> 1))),
		GroupMembers: len(s.hub.groupMembers()),
	}
}

// Shutdown stops accepting, tells every session the server is going down,
// lets their queues drain, and waits for every goroutine to end, or for ctx;
// then it closes whatever is left and returns ctx.Err(). Calling it again
// is harmless.
func (s *Server) Shutdown(ctx context.Context) error {
	sessions := s.beginClose()
	for _, sess := range sessions {
		sess.end(lineShutdown, true)
	}
	waited := make(chan struct{})
	go func() { s.wg.Wait(); close(waited) }()
	select {
	case <-waited:
		return nil
	case <-ctx.Done():
		s.Close()
		<-waited
		return ctx.Err()
	}
}

// Close closes the listeners and every connection at once and waits for
// the goroutines to end.
func (s *Server) Close() error {
	for _, sess := range s.beginClose() {
		sess.conn.NetConn().Close()
	}
	s.wg.Wait()
	return nil
}

func (s *Server) beginClose() []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closing {
		s.closing = true
		close(s.done)
	}
	for l := range s.listeners {
		l.Close()
	}
	sessions := make([]*session, 0, len(s.conns))
	for sess := range s.conns {
		sessions = append(sessions, sess)
	}
	return sessions
}

// isTemporary reports accept errors that pass: out of file descriptors, or
// a connection aborted before it was accepted.
func isTemporary(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}
