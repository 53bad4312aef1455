package relay

import (
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// NoLimit, as a Config limit, turns that limit off.
const NoLimit = -1

// peerKey is what the per-address limits count by: an IPv4 address (a
// /32), or the /64 an IPv6 address is in, since one IPv6 host commonly
// holds a whole /64. An IPv4-mapped IPv6 address counts as IPv4. Addresses
// that are not IP addresses (in-memory pipes) all share the zero key.
func peerKey(a net.Addr) netip.Prefix {
	ip := remoteIP(a)
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// peerCounter counts something held per address, such as open connections
// or handshakes under way, under a cap. A key is in the map only while its
// count is above zero, so the map never has more keys than there are
// connections.
type peerCounter struct {
	mu  sync.Mutex
	max int                         // guarded by mu; NoLimit: no cap
	m   map[netip.Prefix]*peerCount // guarded by mu
}

type peerCount struct {
	n     int
	freed chan struct{} // closed (and dropped) at the next release; only made when someone waits
}

func newPeerCounter(max int) *peerCounter {
	return &peerCounter{max: max, m: make(map[netip.Prefix]*peerCount)}
}

// setMax changes the cap. Counts above a lowered cap stay (nothing is
// taken back); those waiting under a raised one try again at once.
func (pc *peerCounter) setMax(max int) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.max = max
	for _, e := range pc.m {
		if e.freed != nil {
			close(e.freed)
			e.freed = nil
		}
	}
}

// tryAcquire counts one more for k, unless k is at the cap.
func (pc *peerCounter) tryAcquire(k netip.Prefix) bool {
	ok, _ := pc.take(k)
	return ok
}

// acquire counts one more for k, waiting for a release while k is at the
// cap, until expired or done fires. It reports whether it counted.
func (pc *peerCounter) acquire(k netip.Prefix, expired <-chan time.Time, done <-chan struct{}) bool {
	for {
		ok, freed := pc.take(k)
		if ok {
			return true
		}
		select {
		case <-freed:
		case <-expired:
			return false
		case <-done:
			return false
		}
	}
}

// take counts one more for k if it is under the cap; otherwise it returns
// a channel that closes at k's next release.
func (pc *peerCounter) take(k netip.Prefix) (bool, <-chan struct{}) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	e := pc.m[k]
	if e == nil {
		e = &peerCount{}
		pc.m[k] = e
	}
	if pc.max == NoLimit || e.n < pc.max {
		e.n++
		return true, nil
	}
	if e.freed == nil {
		e.freed = make(chan struct{})
	}
	return false, e.freed
}

// release undoes one acquire of k.
func (pc *peerCounter) release(k netip.Prefix) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	e := pc.m[k]
	if e == nil {
		return
	}
	e.n--
	if e.freed != nil {
		close(e.freed)
		e.freed = nil
	}
	if e.n <= 0 {
		delete(pc.m, k)
	}
}

// peerConn is an accepted connection with its address key. Closing it
// (the first time) gives back its place under the per-address connection
// cap, whichever layer closes it.
type peerConn struct {
	net.Conn
	key     netip.Prefix
	release func()
	once    sync.Once
}

func (c *peerConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// prefixConn gives back bytes already read from its connection before
// reading more: the first byte of the handshake, read to see that the
// client speaks at all.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// readFirstByte waits up to d for the first byte from c and returns it.
func readFirstByte(c net.Conn, d time.Duration) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(d))
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil {
		return nil, err
	}
	c.SetReadDeadline(time.Time{})
	return b, nil
}

// peerLogLimiter lets a log line about an address through at most once per
// period. It remembers at most max addresses; while it is full of
// addresses seen within the period, lines about new ones are counted, not
// logged, and the count is reported by sweep. Memory stays bounded under a
// flood of distinct addresses.
type peerLogLimiter struct {
	period time.Duration
	max    int

	mu         sync.Mutex
	last       map[netip.Prefix]time.Time // guarded by mu
	suppressed int                        // guarded by mu
	swept      time.Time                  // guarded by mu
}

// maxLogPeers bounds each peerLogLimiter.
const maxLogPeers = 4096

func newPeerLogLimiter(period time.Duration, max int) *peerLogLimiter {
	return &peerLogLimiter{period: period, max: max, last: make(map[netip.Prefix]time.Time)}
}

// allow reports whether a line about k may be logged now.
func (l *peerLogLimiter) allow(k netip.Prefix, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, seen := l.last[k]
	if seen && now.Sub(t) < l.period {
		return false
	}
	if !seen && len(l.last) >= l.max && now.Sub(l.swept) >= l.period/16 {
		l.sweepLocked(now)
	}
	if !seen && len(l.last) >= l.max {
		l.suppressed++
		return false
	}
	l.last[k] = now
	return true
}

// sweep forgets addresses last logged a period ago or more and returns how
// many lines were suppressed since the last sweep because the map was full.
func (l *peerLogLimiter) sweep(now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(now)
	n := l.suppressed
	l.suppressed = 0
	return n
}

// sweepLocked must hold l.mu.
func (l *peerLogLimiter) sweepLocked(now time.Time) {
	for k, t := range l.last {
		if now.Sub(t) >= l.period {
			delete(l.last, k)
		}
	}
	l.swept = now
}

// waitText says how long to wait in a refusal, rounded up: "42s" up to a
// minute, then "37m", then "2h".
func waitText(d time.Duration) string {
	switch {
	case d <= time.Minute:
		return strconv.FormatInt(int64(max((d+time.Second-1)/time.Second, 1)), 10) + "s"
	case d <= time.Hour:
		return strconv.FormatInt(int64((d+time.Minute-1)/time.Minute), 10) + "m"
	}
	return strconv.FormatInt(int64((d+time.Hour-1)/time.Hour), 10) + "h"
}
