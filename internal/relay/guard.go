package relay

import (
	"errors"
	"net/netip"
	"sync"
	"time"

	"sslmessager/internal/accounts"
	"sslmessager/internal/wire"
)

// Refusals of the log-in phase that carry a wait. Each is built here and
// nowhere else.
const (
	reasonSignUpClosed = "sign-up is closed on this server"
)

// maxHashesPerIP is how many password checks one address may have under
// way at once.
const maxHashesPerIP = 2

// lineTooManyFailures is the refusal of a log-in that a throttle stopped
// before its password was checked: END * <too many failed log-ins, try
// again in 42s>, the wait rounded up.
func lineTooManyFailures(wait time.Duration) []byte {
	return formatOr(wire.End{Fatal: true, Reason: "too many failed log-ins, try again in " + waitText(wait)}, lineServerError)
}

// trySignUpLimit is the refusal of a sign-up over the per-address limit:
// TRY <too many sign-ups from your address, try again in 37m>.
func trySignUpLimit(wait time.Duration) []byte {
	return formatOr(wire.Try{Reason: "too many sign-ups from your address, try again in " + waitText(wait)}, lineServerError)
}

var (
	lineSignUpClosed = wire.MustFormat(wire.Try{Reason: reasonSignUpClosed})
)

// formatOr formats q, or returns fallback if q cannot be a line.
func formatOr(q wire.Query, fallback []byte) []byte {
	b, err := wire.Format(q)
	if err != nil {
		return fallback
	}
	return b
}

// passwordVerdict is how a throttled password check ended.
type passwordVerdict int

const (
	passwordRight     passwordVerdict = iota
	passwordWrong                     // checked, and wrong
	passwordThrottled                 // refused unchecked: wait before trying again
	passwordNoTurn                    // refused unchecked: no hash turn within the log-in deadline
)

// checkPassword checks the password of the account name for a query from
// this session's address through the throttles; AUTH, PASSWD and DELACCT
// all go through it. An attempt is counted before its hash is checked,
// against the address (rate) and against the account from that address
// (backoff), and the counts are given back only when the password was
// right; so attempts sent at the same instant cannot pass the limits
// together. wait is set for passwordThrottled. With a right password the
// address's hash turn is still held: the caller calls release once it has
// done what the check was for (so that, say, a password change runs within
// the same turn); for any other verdict release is nil.
func (c *session) checkPassword(name, pass string) (u accounts.User, v passwordVerdict, wait time.Duration, release func()) {
	s := c.srv
	peer := peerKey(c.bc.RemoteAddr())
	acct := wire.FoldName(name)
	wait, ok := s.loginRate.reserve(peer, time.Now())
	if !ok {
		return u, passwordThrottled, wait, nil
	}
	// Right passwords give their counts back, so they are not rate-limited;
	// what bounds them is that one address has at most maxHashesPerIP
	// checks under way: the others wait their turn (within the log-in
	// deadline), and the hash workers stay free for other addresses. The
	// turn comes before the account's count, so log-ins that arrive
	// together from one address do not count as failures under way
	// against each other.
	turn := time.NewTimer(s.conf().LoginTimeout)
	got := s.hashPerPeer.acquire(peer, turn.C, s.done)
	turn.Stop()
	if !got {
		s.loginRate.cancel(peer, time.Now())
		return u, passwordNoTurn, 0, nil
	}
	release = func() { s.hashPerPeer.release(peer) }
	if wait, ok = s.backoff.reserve(acct, peer, time.Now()); !ok {
		release()
		s.loginRate.cancel(peer, time.Now())
		return u, passwordThrottled, wait, nil
	}
	s.passwordChecks.Add(1)
	u, err := s.cfg.Accounts.Authenticate(name, pass)
	if err != nil {
		release()
		s.backoff.failed(acct, peer, time.Now())
		return u, passwordWrong, 0, nil
	}
	s.loginRate.cancel(peer, time.Now())
	s.backoff.succeeded(acct)
	return u, passwordRight, 0, release
}

// authenticate runs one AUTH through checkPassword. On refusal it has
// ended the session and returns false.
func (c *session) authenticate(q wire.Auth) (accounts.User, bool) {
	u, v, wait, release := c.checkPassword(q.User, q.Pass)
	switch v {
	case passwordRight:
		release()
		return u, true
	case passwordThrottled:
		c.srv.events.LoginRefused(RefusedThrottled)
		c.logger().Warn("log-in refused: throttled", "user", wire.Quote(q.User), "wait", wait)
		c.end(lineTooManyFailures(wait), true)
	case passwordNoTurn:
		c.srv.events.LoginRefused(RefusedLoginTimeout)
		c.fail(reasonLoginTimeout, "waited for a password check", "AUTH")
	case passwordWrong:
		c.srv.events.LoginRefused(RefusedBadCredentials)
		c.logger().Info("log-in refused", "user", wire.Quote(q.User))
		c.end(lineBadLogin, true)
	}
	return accounts.User{}, false
}

// signUp runs one PUT. It returns the new account and true; or false and
// whether the log-in phase goes on (a TRY was sent) or has ended.
//
// A sign-up is counted against its address before the account is made and
// given back if nothing was made (a taken or invalid name, a server error):
// only accounts created count.
func (c *session) signUp(q wire.SignUp) (u accounts.User, ok, goOn bool) {
	s := c.srv
	if s.conf().SignUpClosed {
		s.events.LoginRefused(RefusedSignUpClosed)
		c.logger().Info("sign-up refused: closed", "user", wire.Quote(q.User))
		c.send(lineSignUpClosed)
		return u, false, true
	}
	if b := s.cfg.Bans; b != nil {
		// A banned name is not created: whoever sent the PUT would own it,
		// with their password, once the ban ends.
		if reason, banned := b.UserBanned(q.User); banned {
			c.logger().Info("sign-up refused: the name is banned", "user", wire.Quote(q.User))
			c.end(lineBanned(reason), true)
			return u, false, false
		}
	}
	peer := peerKey(c.bc.RemoteAddr())
	if wait, ok := s.signUps.reserve(peer, time.Now()); !ok {
		s.events.LoginRefused(RefusedSignUpThrottled)
		c.logger().Warn("sign-up refused: too many from this address", "user", wire.Quote(q.User), "wait", wait)
		c.send(trySignUpLimit(wait))
		return u, false, true
	}
	u, err := s.cfg.Accounts.Create(q.User, q.Pass)
	if err == nil {
		c.logger().Info("signed up", "user", u.Name)
		return u, true, false
	}
	s.signUps.cancel(peer, time.Now())
	reason, refused := "", RefusedInvalid
	switch {
	case errors.Is(err, accounts.ErrTaken):
		reason, refused = wire.ReasonTaken, RefusedNameTaken
	case errors.Is(err, wire.ErrUserName):
		reason = "invalid username: " + wire.ErrUserName.Error()
	case errors.Is(err, wire.ErrReservedName):
		reason = "invalid username: " + wire.ErrReservedName.Error()
	case errors.Is(err, wire.ErrPassword):
		reason = "invalid password: " + wire.ErrPassword.Error()
	default:
		c.logger().Error("sign-up failed", "user", wire.Quote(q.User), "err", err)
		c.fail(reasonServerError, "sign-up failed", "PUT")
		return u, false, false
	}
	s.events.LoginRefused(refused)
	c.send(c.format(wire.Try{Reason: reason}, lineServerError))
	// A failed sign-up is logged, never its password.
	c.logger().Info("sign-up refused", "user", wire.Quote(q.User), "reason", reason)
	return u, false, true
}

// maxGuardKeys bounds each throttle's table. When a table is full of live
// entries, an arbitrary one is forgotten: that can only let the forgotten
// party try sooner, never shut anyone out.
const maxGuardKeys = 1 << 16

// rateLimit lets each address have at most burst events within any
// window, and one more each window/burst after a burst. It is the generic
// cell rate algorithm: per address one time, tat, that advances by
// window/burst with each event; an event is let through while tat stays
// within window of now. Events are counted before their outcome is known
// (reserve) and given back (cancel) when they turn out not to count.
type rateLimit struct {
	mu       sync.Mutex
	burst    int                        // guarded by mu; NoLimit: everything passes
	window   time.Duration              // guarded by mu
	interval time.Duration              // guarded by mu; window / burst
	tat      map[netip.Prefix]time.Time // guarded by mu
}

func newRateLimit(burst int, window time.Duration) *rateLimit {
	r := &rateLimit{burst: burst, window: window, tat: make(map[netip.Prefix]time.Time)}
	if burst > 0 {
		r.interval = window / time.Duration(burst)
	}
	return r
}

// reserve counts one event for k at now, or, if k is over its limit,
// returns how long until it is not.
func (r *rateLimit) reserve(k netip.Prefix, now time.Time) (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.burst == NoLimit {
		return 0, true
	}
	t, seen := r.tat[k]
	if t.Before(now) {
		t = now
	}
	t = t.Add(r.interval)
	if over := t.Sub(now) - r.window; over > 0 {
		return over, false
	}
	if !seen && len(r.tat) >= maxGuardKeys {
		r.sweepLocked(now)
		if len(r.tat) >= maxGuardKeys {
			for k := range r.tat {
				delete(r.tat, k)
				break
			}
		}
	}
	r.tat[k] = t
	return 0, true
}

// set changes the limit: burst events per window (NoLimit: none). What
// was counted stays counted.
func (r *rateLimit) set(burst int, window time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.burst, r.window, r.interval = burst, window, 0
	if burst > 0 {
		r.interval = window / time.Duration(burst)
	}
}

// cancel gives back one reserved event of k.
func (r *rateLimit) cancel(k netip.Prefix, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.burst == NoLimit {
		return
	}
	t, ok := r.tat[k]
	if !ok {
		return
	}
	if t = t.Add(-r.interval); t.After(now) {
		r.tat[k] = t
	} else {
		delete(r.tat, k)
	}
}

func (r *rateLimit) sweep(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sweepLocked(now)
}

// sweepLocked must hold r.mu.
func (r *rateLimit) sweepLocked(now time.Time) {
	for k, t := range r.tat {
		if !t.After(now) {
			delete(r.tat, k)
		}
	}
}

// Per-account backoff.
const (
	// freeFailures is how many failed log-ins in a row an account has
	// before any wait; a mistyping owner never notices the backoff.
	freeFailures = 3
	// backoffBase is the wait after the first failure beyond freeFailures;
	// each further one doubles it, up to Config.LoginBackoffMax.
	backoffBase = time.Second
	// backoffForget is how long an account's failure count is kept after
	// its last failure.
	backoffForget = time.Hour
	// maxBackoffPeers is how many addresses one account's entry remembers.
	maxBackoffPeers = 64
)

// accountBackoff slows password guessing on one account: after its n-th
// failed log-in in a row (n > freeFailures), an address that tried that
// account must wait min(backoffBase·2^(n-freeFailures-1), max) after its
// own last attempt before it may try the account again. The count is per
// account, across all addresses, so guessing from many addresses raises
// every guesser's wait; but the wait holds each address only to its own
// last attempt, so the owner at an address that has not just failed is
// let through at once, and waits at most max after a typo of its own.
// A right password clears the account's entry.
type accountBackoff struct {
	mu    sync.Mutex
	max   time.Duration               // guarded by mu
	accts map[string]*accountFailures // guarded by mu; by wire.FoldName name
}

type accountFailures struct {
	n     int                        // failed attempts in a row, counting those under way
	last  time.Time                  // the latest attempt
	until map[netip.Prefix]time.Time // per address: no attempt before this
}

func newAccountBackoff(max time.Duration) *accountBackoff {
	return &accountBackoff{max: max, accts: make(map[string]*accountFailures)}
}

// setMax changes the longest wait.
func (b *accountBackoff) setMax(max time.Duration) {
	b.mu.Lock()
	b.max = max
	b.mu.Unlock()
}

// delay is the wait after n failures in a row. Must hold b.mu.
func (b *accountBackoff) delay(n int) time.Duration {
	k := n - freeFailures - 1
	switch {
	case k < 0:
		return 0
	case k >= 30:
		return b.max
	}
	return min(backoffBase<<k, b.max)
}

// reserve counts an attempt on acct from peer before its hash is checked,
// or returns how long peer must still wait.
func (b *accountBackoff) reserve(acct string, peer netip.Prefix, now time.Time) (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.accts[acct]
	if a != nil {
		if u := a.until[peer]; now.Before(u) {
			return u.Sub(now), false
		}
	} else {
		if len(b.accts) >= maxGuardKeys {
			b.sweepLocked(now)
			for k := range b.accts {
				if len(b.accts) < maxGuardKeys {
					break
				}
				delete(b.accts, k)
			}
		}
		a = &accountFailures{until: make(map[netip.Prefix]time.Time)}
		b.accts[acct] = a
	}
	a.n++
	a.last = now
	if _, ok := a.until[peer]; !ok && len(a.until) >= maxBackoffPeers {
		var oldest netip.Prefix
		first := true
		for p, u := range a.until {
			if first || u.Before(a.until[oldest]) {
				oldest, first = p, false
			}
		}
		delete(a.until, oldest)
	}
	a.until[peer] = now.Add(b.delay(a.n))
	return 0, true
}

// failed marks the reserved attempt on acct from peer as failed: peer's
// wait now runs from the end of the check.
func (b *accountBackoff) failed(acct string, peer netip.Prefix, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if a := b.accts[acct]; a != nil {
		a.last = now
		if u := now.Add(b.delay(a.n)); u.After(a.until[peer]) {
			a.until[peer] = u
		}
	}
}

// succeeded clears acct: its owner is in.
func (b *accountBackoff) succeeded(acct string) {
	b.mu.Lock()
	delete(b.accts, acct)
	b.mu.Unlock()
}

func (b *accountBackoff) sweep(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sweepLocked(now)
}

// sweepLocked must hold b.mu.
func (b *accountBackoff) sweepLocked(now time.Time) {
	for k, a := range b.accts {
		if now.Sub(a.last) >= backoffForget {
			delete(b.accts, k)
		}
	}
}
