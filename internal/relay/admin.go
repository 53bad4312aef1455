package relay

import (
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"sslmessager/internal/accounts"
	"sslmessager/internal/wire"
)

// The operator's side of the relay: bans at accept and at log-in, mutes,
// messages from admin, role notices, run-time sign-up switch, and the
// ADMIN query (sslm/2 only) that hands an admin's command line to the
// AdminRunner. The commands themselves live in internal/admin.

// AdminName is the sender of the messages an operator sends with the msg
// and g commands (wire.OperatorName): no account can have it.
const AdminName = wire.OperatorName

// maxAdminDataLines bounds the data lines one ADMIN answer sends to a
// client; the rest is summed up in one line (the admin socket has no such
// bound).
const maxAdminDataLines = 1000

// BanList says who may not connect or log in. Both methods are called on
// hot paths (AddrBanned on every accepted connection, in the accept loop)
// and must answer from memory, without blocking.
type BanList interface {
	// AddrBanned reports whether connections from a are refused.
	AddrBanned(a netip.Addr) bool
	// UserBanned reports whether the user name (any case) may not log in,
	// and the ban's reason as typed (the relay escapes it).
	UserBanned(name string) (reason string, banned bool)
}

// AdminRunner runs one admin command line for the admin user by and
// returns the data lines, whether it succeeded, and the summary (on
// success) or the reason (on failure). internal/admin implements it.
type AdminRunner interface {
	RunAdmin(by, command string) (data []string, ok bool, summary string)
}

var (
	lineNeedAdmin = wire.MustFormat(wire.No{Reason: "admin commands need the admin role"})
	lineNoAdmin   = wire.MustFormat(wire.No{Reason: "admin commands are not available on this server"})
	lineMuted     = wire.MustFormat(wire.NotOnline{Reason: "you are muted"})
	// lineAdminDataTooLong stands for a data line that cannot be sent.
	lineAdminDataTooLong = wire.MustFormat(wire.AdminData{Text: "(line too long to show)"})
)

// operator is the run-time state the admin commands change.
type operator struct {
	runner atomic.Pointer[AdminRunner]

	muteMu sync.Mutex                           // serializes changes to mutes
	mutes  atomic.Pointer[map[string]time.Time] // wire.FoldName(name) -> until (zero: forever); copy on write
}

// SetAdminRunner makes r answer the ADMIN queries of admin sessions (nil:
// they are refused).
func (s *Server) SetAdminRunner(r AdminRunner) {
	if r == nil {
		s.op.runner.Store(nil)
		return
	}
	s.op.runner.Store(&r)
}

// addrBanned reports whether a connection from addr is refused by
// Config.Bans. It answers from memory (see BanList).
func (s *Server) addrBanned(addr net.Addr) bool {
	if s.cfg.Bans == nil {
		return false
	}
	ip := remoteIP(addr)
	return ip.IsValid() && s.cfg.Bans.AddrBanned(ip)
}

// remoteIP is the IP address of addr, IPv4-mapped addresses as IPv4.
func remoteIP(addr net.Addr) netip.Addr {
	var ip netip.Addr
	if ta, ok := addr.(*net.TCPAddr); ok {
		ip, _ = netip.AddrFromSlice(ta.IP)
	} else if addr != nil {
		if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
			ip = ap.Addr()
		}
	}
	return ip.Unmap().WithZone("")
}

// userBanned checks u against Config.Bans at log-in. A banned user gets
// END * <banned: reason> and false.
func (c *session) userBanned(u accounts.User) bool {
	if c.srv.cfg.Bans == nil {
		return false
	}
	reason, banned := c.srv.cfg.Bans.UserBanned(u.Name)
	if !banned {
		return false
	}
	c.logger().Info("log-in refused: banned", "user", u.Name)
	c.end(lineBanned(reason), true)
	return true
}

// lineBanned is END * <banned: reason>, or END * <banned> without one.
func lineBanned(reason string) []byte {
	r := "banned"
	if reason != "" {
		r += ": " + wire.SafeText(reason)
	}
	return formatOr(wire.End{Fatal: true, Reason: r}, lineServerError)
}

// roleLine is the ROLE line a session of u gets after ACCEPT (sslm/2
// only, and only when the role is not the default), or nil.
func (c *session) roleLine(u accounts.User) []byte {
	if !c.ext || u.Role == "" || u.Role == accounts.RoleUser {
		return nil
	}
	return formatOr(wire.Role{Role: u.Role}, nil)
}

// sendRole queues the ROLE line for u, if it needs one.
func (c *session) sendRole(u accounts.User) {
	if line := c.roleLine(u); line != nil {
		c.send(line)
	}
}

// NotifyRole tells every sslm/2 session of the user name that its role is
// now role (ROLE role). It returns how many it told.
func (s *Server) NotifyRole(name, role string) int {
	line, err := wire.Format(wire.Role{Role: role})
	if err != nil {
		return 0
	}
	n := 0
	for _, sess := range s.hub.lookup(name) {
		if sess.ext {
			sess.send(line)
			n++
		}
	}
	return n
}

// EndAddr ends every connection from an address in p (logged in, in the
// log-in phase or still in the TLS handshake) with END * <reason> where a
// line can still be sent, and returns how many it ended.
func (s *Server) EndAddr(p netip.Prefix, reason string) int {
	line, err := wire.Format(wire.End{Fatal: true, Reason: reason})
	if err != nil {
		s.log.Error("end address: reason cannot be sent", "reason", reason, "err", err)
		line = lineServerError
	}
	s.mu.Lock()
	var conns []*session
	for sess := range s.conns {
		if p.Contains(remoteIP(sess.bc.RemoteAddr())) {
			conns = append(conns, sess)
		}
	}
	var raw []*peerConn
	for pc := range s.handshaking {
		if p.Contains(remoteIP(pc.RemoteAddr())) {
			raw = append(raw, pc)
		}
	}
	s.mu.Unlock()
	for _, sess := range conns {
		s.hub.remove(sess)
		sess.logger().Info("connection ended by the server", "reason", reason)
		sess.end(line, true)
	}
	for _, pc := range raw {
		pc.Close()
	}
	return len(conns) + len(raw)
}

// Mute refuses the direct and group messages of the user name (any case)
// until until (zero: until Unmute). Mutes live in memory: a restart lifts
// them.
func (s *Server) Mute(name string, until time.Time) {
	s.op.muteMu.Lock()
	defer s.op.muteMu.Unlock()
	next := s.activeMutes(time.Now())
	next[wire.FoldName(name)] = until
	s.op.mutes.Store(&next)
}

// Unmute lifts the mute of name; false if it was not muted.
func (s *Server) Unmute(name string) bool {
	s.op.muteMu.Lock()
	defer s.op.muteMu.Unlock()
	next := s.activeMutes(time.Now())
	key := wire.FoldName(name)
	_, was := next[key]
	delete(next, key)
	s.op.mutes.Store(&next)
	return was
}

// Mutes returns the users muted now (folded names) and until when (zero:
// forever).
func (s *Server) Mutes() map[string]time.Time { return s.activeMutes(time.Now()) }

// activeMutes is a copy of the mutes still in force at now.
func (s *Server) activeMutes(now time.Time) map[string]time.Time {
	out := make(map[string]time.Time)
	if m := s.op.mutes.Load(); m != nil {
		for k, until := range *m {
			if until.IsZero() || now.Before(until) {
				out[k] = until
			}
		}
	}
	return out
}

// refuseMuted answers a muted user's MSG or MSGG with CNT <you are muted
// until 15:04 UTC> (to this session only: nobody else sees anything) and
// reports whether it did.
func (c *session) refuseMuted() bool {
	m := c.srv.op.mutes.Load()
	if m == nil || len(*m) == 0 {
		return false
	}
	until, ok := (*m)[c.key]
	now := time.Now()
	if !ok || (!until.IsZero() && !now.Before(until)) {
		return false
	}
	if until.IsZero() {
		c.send(lineMuted)
		return true
	}
	layout := "15:04 UTC"
	if until.Sub(now) > 20*time.Hour {
		layout = "2006-01-02 15:04 UTC"
	}
	// Round up, so that "until 15:04" never reads as already past.
	at := until.UTC().Add(time.Minute - 1).Truncate(time.Minute)
	c.send(formatOr(wire.NotOnline{Reason: "you are muted until " + at.Format(layout)}, lineMuted))
	return true
}

// SendDirect delivers text as a direct message from AdminName to every
// session of the user to and returns how many sessions got it (0: the
// user is offline).
func (s *Server) SendDirect(to, text string) (int, error) {
	targets := s.hub.lookup(to)
	if len(targets) == 0 {
		return 0, nil
	}
	line, err := wire.Format(wire.Relay{Target: targets[0].user, Sender: AdminName, Text: text})
	if err != nil {
		return 0, err
	}
	for _, t := range targets {
		t.send(line)
	}
	return len(targets), nil
}

// Broadcast delivers text as a group message from AdminName to every
// logged-in session, in group mode or not, and returns how many got it.
func (s *Server) Broadcast(text string) (int, error) {
	line, err := wire.Format(wire.RelayGroup{Sender: AdminName, Text: text})
	if err != nil {
		return 0, err
	}
	all := s.hub.sessions()
	for _, t := range all {
		t.send(line)
	}
	return len(all), nil
}

// ADMIN words... token (sslm/2 only)
//
// The command runs only for an account that has the admin role now (a
// role taken away counts at once); anyone else gets NO <admin commands
// need the admin role>. The answer is the data lines (ADMINR), then OK or
// NO.
func (c *session) handleAdmin(q wire.Admin) bool {
	if !c.ext {
		c.fail(wire.ReasonProtocol, "ADMIN without sslm/2", "ADMIN")
		return false
	}
	u, ok := c.srv.cfg.Accounts.Lookup(c.user)
	if !ok || !u.IsAdmin() {
		c.logger().Warn("admin command refused: not an admin", "command", wire.Quote(q.Command))
		c.send(lineNeedAdmin)
		return true
	}
	rp := c.srv.op.runner.Load()
	if rp == nil {
		c.send(lineNoAdmin)
		return true
	}
	data, ok, summary := (*rp).RunAdmin(c.user, q.Command)
	var stall <-chan struct{}
	for i, d := range data {
		if i == maxAdminDataLines {
			d = "... " + strconv.Itoa(len(data)-i) + " more lines: use the admin socket"
		}
		line := formatOr(wire.AdminData{Text: d}, lineAdminDataTooLong)
		if ch := c.send(line); ch != nil {
			stall = ch
		}
		if i == maxAdminDataLines {
			break
		}
	}
	var final wire.Query = wire.OK{Text: wire.SafeText(summary)}
	if !ok {
		final = wire.No{Reason: wire.SafeText(summary)}
	}
	c.send(c.format(final, lineServerError))
	c.stall(stall)
	return true
}

// Setting is one limit in force, for the status command.
type Setting struct{ Name, Value string }

// Limits lists the limits and timeouts in force, by their flag names.
func (s *Server) Limits() []Setting {
	c := s.conf() // what is in force, reloads included
	n := func(v int) string {
		if v == NoLimit {
			return "none"
		}
		return strconv.Itoa(v)
	}
	signup := "open"
	if s.SignUpClosed() {
		signup = "closed"
	}
	return []Setting{
		{"max-conns", n(c.MaxConns)},
		{"max-sessions-per-user", n(c.MaxSessionsPerUser)},
		{"max-conns-per-ip", n(c.MaxConnsPerIP)},
		{"max-handshakes-per-ip", n(c.MaxHandshakesPerIP)},
		{"max-failed-logins", n(c.MaxFailedLogins)},
		{"failed-login-window", c.FailedLoginWindow.String()},
		{"login-backoff-max", c.LoginBackoffMax.String()},
		{"max-signups-per-ip", n(c.MaxSignUpsPerIP)},
		{"signup", signup},
		{"max-queue", strconv.Itoa(c.MaxQueueBytes)},
		{"check-interval", c.CheckInterval.String()},
		{"login-timeout", c.LoginTimeout.String()},
		{"write-timeout", c.WriteTimeout.String()},
		{"first-byte-timeout", c.FirstByteTimeout.String()},
	}
}
