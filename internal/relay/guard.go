package relay

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// loginGuard throttles password guessing: once an address has had max
// failed log-ins within window, its further AUTH attempts are refused at
// once, without spending a password hash on them, until the window ends.
type loginGuard struct {
	max    int
	window time.Duration

	mu    sync.Mutex
	fails map[netip.Addr]failCount // guarded by mu
}

type failCount struct {
	since time.Time // start of the window
	n     int
}

func newLoginGuard(max int, window time.Duration) *loginGuard {
	return &loginGuard{max: max, window: window, fails: make(map[netip.Addr]failCount)}
}

// addrOf is the IP address of a remote address, or the zero Addr.
func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// allowed reports whether ip may try a password now.
func (g *loginGuard) allowed(ip netip.Addr, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	f, ok := g.fails[ip]
	return !ok || f.n < g.max || now.Sub(f.since) >= g.window
}

// failed counts one failed log-in from ip.
func (g *loginGuard) failed(ip netip.Addr, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.fails[ip]
	if now.Sub(f.since) >= g.window {
		f = failCount{since: now}
	}
	f.n++
	g.fails[ip] = f
}

// sweep forgets windows that have ended, so the map stays small.
func (g *loginGuard) sweep(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for ip, f := range g.fails {
		if now.Sub(f.since) >= g.window {
			delete(g.fails, ip)
		}
	}
}
