// Package relay is the SSL-Messager server core: the TLS listener, one
// session per connection with its reader and writer goroutines, the hub of
// online users and group members, the liveness checker, and file transfer
// into the spool.
//
// Lock order (take them in this order, never the other way):
// Server.mu, then keyDirectory.mu, then hub.mu, then hub.groupMu, then
// outbound.mu. None of them is held during network or disk I/O.
package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"sslmessager/internal/accounts"
	"sslmessager/internal/keydir"
	"sslmessager/internal/offline"
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
	// DefaultMaxConnsPerIP caps the connections one address holds (an
	// IPv4 address or an IPv6 /64); more are closed at accept, before any
	// TLS work.
	DefaultMaxConnsPerIP = 64
	// DefaultHandshakeSlots caps TLS handshakes under way at once, counted
	// from a connection's first byte.
	DefaultHandshakeSlots = 512
	// DefaultMaxHandshakesPerIP caps the handshakes one address has under
	// way, counted from accept.
	DefaultMaxHandshakesPerIP = 8
	// DefaultHandshakeSlotWait is how long a connection waits for a free
	// handshake slot (its address's, then a global one) before it is
	// closed.
	DefaultHandshakeSlotWait = 2 * time.Second
	// DefaultFirstByteTimeout is how long a new connection may stay silent
	// before its ClientHello starts.
	DefaultFirstByteTimeout = 5 * time.Second
	// DefaultMaxLoginTries is how many AUTH/PUT attempts one connection
	// gets (each refused PUT answers TRY).
	DefaultMaxLoginTries = 5
	// DefaultMaxFailedLogins is how many failed log-ins one address may
	// have at once within FailedLoginWindow; after that burst it gets one
	// more each FailedLoginWindow/MaxFailedLogins.
	DefaultMaxFailedLogins = 20
	// DefaultFailedLoginWindow is the window for DefaultMaxFailedLogins.
	DefaultFailedLoginWindow = time.Minute
	// DefaultLoginBackoffMax caps the per-account wait after failed
	// log-ins (see accountBackoff).
	DefaultLoginBackoffMax = 30 * time.Second
	// DefaultMaxSignUpsPerIP is how many accounts one address may create
	// within SignUpWindow; after that burst it gets one more each
	// SignUpWindow/MaxSignUpsPerIP.
	DefaultMaxSignUpsPerIP = 10
	// DefaultSignUpWindow is the window for DefaultMaxSignUpsPerIP.
	DefaultSignUpWindow = time.Hour
	// DefaultCertCheckInterval is how often the server checks its
	// certificate's expiry after start.
	DefaultCertCheckInterval = 24 * time.Hour
	// handshakeGrace is how long Shutdown lets handshakes under way finish
	// before it closes them: a client whose handshake is all but done is
	// told the server is going down rather than cut off.
	handshakeGrace = 250 * time.Millisecond
	// handshakeLogPeriod is how often one address's failed handshakes, or
	// refusals at accept, are logged at most.
	handshakeLogPeriod = time.Minute
	// DefaultStallWait is the longest a producer pauses, per query, while a
	// recipient's queue is over its high-water mark.
	DefaultStallWait = 100 * time.Millisecond
	// readBufferSize is each connection's read buffer.
	readBufferSize = 1024
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("relay: server closed")

// Config is everything a Server needs. Zero durations and sizes take the
// defaults above. Reload changes some fields on a running server (see
// applyReloadable); the others are fixed until a restart.
type Config struct {
	TLSConfig *tls.Config     // required; a server certificate
	Accounts  *accounts.Store // required
	Spool     *spool.Spool    // nil: uploads and downloads are refused
	Offline   *offline.Store  // nil: a MSG to an offline user gets CNT <user not online>
	Keys      *keydir.Store   // nil: no key directory, and ALPN sslm/3 is not offered (keys.go)
	Logger    *slog.Logger    // nil: slog.Default()
	Events    Events          // nil: nobody is told (see events.go)

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

	// Limits per address. The counts take NoLimit to turn them off.
	MaxConnsPerIP      int
	MaxHandshakesPerIP int
	HandshakeSlotWait  time.Duration
	FirstByteTimeout   time.Duration
	MaxFailedLogins    int
	FailedLoginWindow  time.Duration
	MaxSignUpsPerIP    int
	SignUpWindow       time.Duration

	LoginBackoffMax time.Duration // per-account wait cap
	SignUpClosed    bool          // PUT answers TRY <sign-up is closed on this server>

	// AllowExpiredCert lets New start with an expired (or not yet valid)
	// certificate; it is still logged as an error.
	AllowExpiredCert  bool
	CertCheckInterval time.Duration

	Bans BanList // nil: nobody is banned (admin slice: checked at accept and at log-in)
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
	if c.Events == nil {
		c.Events = noEvents{}
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
	orDefault(&c.HandshakeSlotWait, DefaultHandshakeSlotWait)
	orDefault(&c.FirstByteTimeout, DefaultFirstByteTimeout)
	orDefault(&c.LoginBackoffMax, DefaultLoginBackoffMax)
	orDefault(&c.SignUpWindow, DefaultSignUpWindow)
	orDefault(&c.CertCheckInterval, DefaultCertCheckInterval)
	orLimit(&c.MaxConnsPerIP, DefaultMaxConnsPerIP)
	orLimit(&c.MaxHandshakesPerIP, DefaultMaxHandshakesPerIP)
	orLimit(&c.MaxFailedLogins, DefaultMaxFailedLogins)
	orLimit(&c.MaxSignUpsPerIP, DefaultMaxSignUpsPerIP)
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

// orLimit sets a limit *p to v if it is zero; NoLimit stays, and any
// other negative value becomes NoLimit.
func orLimit(p *int, v int) {
	switch {
	case *p == 0:
		*p = v
	case *p < 0:
		*p = NoLimit
	}
}

// Server relays messages and files between sessions. Create it with New.
type Server struct {
	cfg    Config // fixed settings; the reloadable ones are in live (conf)
	tls    *tls.Config
	hub    *hub
	log    *slog.Logger
	events Events
	slots  chan struct{} // global handshake slots

	live             atomic.Pointer[Config]          // the configuration in force (conf)
	cert             atomic.Pointer[tls.Certificate] // what new handshakes present; nil if cfg brought GetCertificate
	reloadMu         sync.Mutex                      // serializes Reload
	signUpConfigured bool                            // guarded by reloadMu; Config.SignUpClosed as last configured (New, Reload)

	// Limits per address (see limits.go and guard.go).
	connsPerPeer *peerCounter
	hsPerPeer    *peerCounter
	hashPerPeer  *peerCounter // password checks under way per address, maxHashesPerIP
	loginRate    *rateLimit
	backoff      *accountBackoff
	signUps      *rateLimit
	hsLog        *peerLogLimiter  // failed handshakes
	offline      *offlineDelivery // nil without Config.Offline (offline.go)
	keys         *keyDirectory    // nil without Config.Keys (keys.go)
	refuseLog    *peerLogLimiter  // connections refused at accept

	mu          sync.Mutex
	listeners   map[net.Listener]struct{} // guarded by mu
	conns       map[*session]struct{}     // guarded by mu; every session, logged in or not
	handshaking map[*peerConn]struct{}    // guarded by mu; accepted, not yet a session
	closing     bool                      // guarded by mu
	done        chan struct{}             // closed by Shutdown/Close

	op operator // run-time state the admin commands change (admin.go)

	nconns         atomic.Int64
	passwordChecks atomic.Int64
	wg             sync.WaitGroup // every goroutine the server starts
}

// New checks cfg and returns a server that is not yet listening. It
// refuses a certificate that has expired or is not yet valid unless
// cfg.AllowExpiredCert, and warns of one that expires within
// pki.ExpiryWarning.
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
	// Our client offers sslm/3 and sslm/2; a client that offers nothing
	// (the original) negotiates nothing and gets the original protocol.
	// sslm/3, the key directory, comes first (the server's order
	// decides) and only when there is one.
	if cfg.Keys != nil {
		tc.NextProtos = append(slices.Clip(tc.NextProtos), wire.ALPNKeys)
	}
	tc.NextProtos = append(slices.Clip(tc.NextProtos), wire.ALPN)
	s := &Server{
		cfg:          cfg,
		tls:          tc,
		hub:          newHub(),
		log:          cfg.Logger,
		events:       cfg.Events,
		slots:        make(chan struct{}, cfg.HandshakeSlots),
		connsPerPeer: newPeerCounter(cfg.MaxConnsPerIP),
		hsPerPeer:    newPeerCounter(cfg.MaxHandshakesPerIP),
		hashPerPeer:  newPeerCounter(maxHashesPerIP),
		loginRate:    newRateLimit(cfg.MaxFailedLogins, cfg.FailedLoginWindow),
		backoff:      newAccountBackoff(cfg.LoginBackoffMax),
		signUps:      newRateLimit(cfg.MaxSignUpsPerIP, cfg.SignUpWindow),
		hsLog:        newPeerLogLimiter(handshakeLogPeriod, maxLogPeers),
		refuseLog:    newPeerLogLimiter(handshakeLogPeriod, maxLogPeers),
		offline:      newOfflineDelivery(cfg.Offline),
		keys:         newKeyDirectory(cfg.Keys, cfg.Logger),
		listeners:    make(map[net.Listener]struct{}),
		conns:        make(map[*session]struct{}),
		handshaking:  make(map[*peerConn]struct{}),
		done:         make(chan struct{}),
	}
	live := cfg
	s.live.Store(&live)
	s.signUpConfigured = cfg.SignUpClosed
	if len(tc.Certificates) > 0 && tc.GetCertificate == nil {
		// New connections get whatever certificate is current: Reload
		// swaps it.
		c := tc.Certificates[0]
		if leaf, err := certLeaf(&c); err == nil {
			c.Leaf = leaf
		}
		s.cert.Store(&c)
		tc.Certificates = nil
		tc.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cert.Load(), nil }
	}
	if err := s.checkCert(time.Now()); err != nil && !cfg.AllowExpiredCert {
		return nil, fmt.Errorf("relay: %w", err)
	}
	s.goTracked(s.checker)
	s.goTracked(s.certWatch)
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
		s.accept(c)
	}
}

// accept applies the connection caps, total and per address, before any
// TLS work, and starts the connection's goroutine. A refused connection is
// closed at once.
func (s *Server) accept(c net.Conn) {
	key := peerKey(c.RemoteAddr())
	refuse := func(why string, max int) {
		if s.refuseLog.allow(key, time.Now()) {
			s.log.Info("connection refused: "+why, "remote", c.RemoteAddr().String(), "max", max)
		}
		c.Close()
	}
	conf := s.conf()
	if s.addrBanned(c.RemoteAddr()) {
		refuse("banned address", 0)
		return
	}
	if s.nconns.Add(1) > int64(conf.MaxConns) {
		s.nconns.Add(-1)
		s.events.ConnRefused(RefusedMaxConns)
		refuse("at the connection cap", conf.MaxConns)
		return
	}
	if !s.connsPerPeer.tryAcquire(key) {
		s.nconns.Add(-1)
		s.events.ConnRefused(RefusedMaxConnsPerIP)
		refuse("at the per-address connection cap", conf.MaxConnsPerIP)
		return
	}
	s.events.ConnAccepted()
	pc := &peerConn{Conn: c, key: key, release: func() { s.connsPerPeer.release(key) }}
	// Registered and counted under mu so that Shutdown, once closing,
	// sees every connection and no goroutine starts after its Wait.
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		s.nconns.Add(-1)
		pc.Close()
		return
	}
	s.handshaking[pc] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		s.serveConn(pc)
	}()
}

// serveConn runs one connection's handshake and log-in, then hands the
// session to a fresh goroutine for the rest of its life: this one's stack
// grew for the handshake and the password hash and would stay that large
// while the connection sits idle. A panic ends this connection only.
func (s *Server) serveConn(raw *peerConn) {
	var sess *session
	handedOff := false
	defer func() {
		s.recoverConn(raw)
		switch {
		case handedOff:
		case sess != nil:
			sess.cleanup()
		default:
			s.untrackHandshake(raw)
			s.nconns.Add(-1)
		}
	}()
	if tc, ok := raw.Conn.(*net.TCPConn); ok {
		tc.SetKeepAliveConfig(keepAlive)
		if err := setUserTimeout(tc, s.conf().WriteTimeout); err != nil {
			s.log.Debug("TCP_USER_TIMEOUT not set", "remote", raw.RemoteAddr().String(), "err", err)
		}
	}
	conn, bc, why := s.handshake(raw)
	s.untrackHandshake(raw)
	if conn == nil {
		if why != "" && s.hsLog.allow(raw.key, time.Now()) {
			s.log.Info("handshake failed", "remote", raw.RemoteAddr().String(), "reason", why)
		}
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

// handshake runs the TLS handshake of raw under the per-address and global
// limits: it waits up to HandshakeSlotWait for one of its address's
// handshake slots, up to FirstByteTimeout for the ClientHello to begin, up
// to HandshakeSlotWait for a global slot, and then HandshakeTimeout for
// the handshake itself. A connection that never speaks holds only its
// address's slot, never a global one. On failure it returns why (or "" if
// the server is closing).
func (s *Server) handshake(raw *peerConn) (*tls.Conn, *batchConn, string) {
	conf := s.conf()
	wait := time.NewTimer(s.cfg.HandshakeSlotWait)
	defer wait.Stop()
	if !s.hsPerPeer.acquire(raw.key, wait.C, s.done) {
		return nil, nil, s.unlessClosing(fmt.Sprintf("%d handshakes from this address already under way", conf.MaxHandshakesPerIP))
	}
	defer s.hsPerPeer.release(raw.key)
	first, err := readFirstByte(raw, conf.FirstByteTimeout)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, nil, s.unlessClosing(fmt.Sprintf("no ClientHello within %v", conf.FirstByteTimeout))
		}
		return nil, nil, s.unlessClosing(err.Error())
	}
	wait.Reset(s.cfg.HandshakeSlotWait)
	select {
	case s.slots <- struct{}{}:
	case <-wait.C:
		return nil, nil, s.unlessClosing("all handshake slots busy")
	case <-s.done:
		return nil, nil, ""
	}
	defer func() { <-s.slots }()
	bc := &batchConn{Conn: &prefixConn{Conn: raw, prefix: first}, timeout: conf.WriteTimeout}
	conn := tls.Server(bc, s.tls)
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.HandshakeTimeout)
	defer cancel()
	if err := conn.HandshakeContext(ctx); err != nil {
		return nil, nil, s.unlessClosing(err.Error())
	}
	return conn, bc, ""
}

// unlessClosing is why, or "" once the server is closing: a connection
// Shutdown cut off failed for no reason worth logging.
func (s *Server) unlessClosing(why string) string {
	select {
	case <-s.done:
		return ""
	default:
		return why
	}
}

func (s *Server) untrackHandshake(pc *peerConn) {
	s.mu.Lock()
	delete(s.handshaking, pc)
	s.mu.Unlock()
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
	s.every(s.cfg.CheckInterval, func(now time.Time) {
		for _, sess := range s.hub.sessions() {
			sess.send(lineCheck)
		}
		s.sweep(now)
	})
}

// every calls f on each tick of a ticker of period d until the server
// closes.
func (s *Server) every(d time.Duration, f func(now time.Time)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case now := <-t.C:
			f(now)
		}
	}
}

// sweep drops what the limits no longer need, and reports log lines the
// log limiters held back.
func (s *Server) sweep(now time.Time) {
	s.loginRate.sweep(now)
	s.signUps.sweep(now)
	s.backoff.sweep(now)
	if n := s.hsLog.sweep(now); n > 0 {
		s.log.Info("failed handshakes not logged: too many addresses", "count", n)
	}
	if n := s.refuseLog.sweep(now); n > 0 {
		s.log.Info("refused connections not logged: too many addresses", "count", n)
	}
}

// PasswordChecks is how many password hashes log-ins have checked since
// the server started; a throttled attempt checks none.
func (s *Server) PasswordChecks() int64 { return s.passwordChecks.Load() }

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
		Users:        s.hub.userCount(),
		GroupMembers: len(s.hub.groupMembers()),
	}
}

// Shutdown stops accepting, tells every session the server is going down,
// gives connections still in their TLS handshake handshakeGrace to finish
// it (and be told too) before it closes them, lets the queues drain, and waits for every goroutine to end, or for ctx;
// then it closes whatever is left and returns ctx.Err(). Calling it again
// is harmless.
func (s *Server) Shutdown(ctx context.Context) error {
	sessions := s.beginClose()
	for _, sess := range sessions {
		sess.end(lineShutdown, true)
	}
	waited := make(chan struct{})
	go func() { s.wg.Wait(); close(waited) }()
	grace := time.NewTimer(handshakeGrace)
	defer grace.Stop()
	for {
		select {
		case <-waited:
			return nil
		case <-grace.C:
			s.closeHandshakes()
		case <-ctx.Done():
			s.Close()
			<-waited
			return ctx.Err()
		}
	}
}

// Close closes the listeners and every connection at once and waits for
// the goroutines to end.
func (s *Server) Close() error {
	sessions := s.beginClose()
	s.closeHandshakes()
	for _, sess := range sessions {
		sess.conn.NetConn().Close()
	}
	s.wg.Wait()
	return nil
}

// beginClose marks the server closing, closes its listeners, and returns
// the sessions.
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

// closeHandshakes closes the connections still before or in their TLS
// handshake: nothing can be said to them.
func (s *Server) closeHandshakes() {
	s.mu.Lock()
	handshaking := make([]*peerConn, 0, len(s.handshaking))
	for pc := range s.handshaking {
		handshaking = append(handshaking, pc)
	}
	s.mu.Unlock()
	for _, pc := range handshaking {
		pc.Close()
	}
}

// isTemporary reports accept errors that pass: out of file descriptors, or
// a connection aborted before it was accepted.
func isTemporary(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}
