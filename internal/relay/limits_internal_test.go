package relay

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestPeerKey(t *testing.T) {
	for _, c := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 1}, "203.0.113.7/32"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:203.0.113.7"), Port: 1}, "203.0.113.7/32"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), Port: 1}, "2001:db8:1:2::/64"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2::1"), Port: 1}, "2001:db8:1:2::/64"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 1, Zone: "eth0"}, "fe80::/64"},
		{&net.UDPAddr{IP: net.ParseIP("198.51.100.1"), Port: 1}, "198.51.100.1/32"},
		{&net.UnixAddr{Name: "pipe"}, "invalid Prefix"},
	} {
		if got := peerKey(c.addr).String(); got != c.want {
			t.Errorf("peerKey(%v) = %s, want %s", c.addr, got, c.want)
		}
	}
}

func TestWaitText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                       "1s",
		time.Millisecond:        "1s",
		41*time.Second + 1:      "42s",
		time.Minute:             "60s",
		time.Minute + 1:         "2m",
		36*time.Minute + 1:      "37m",
		time.Hour:               "60m",
		time.Hour + time.Second: "2h",
	} {
		if got := waitText(d); got != want {
			t.Errorf("waitText(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestRateLimit: a burst, then one per interval; a cancelled reservation
// is given back; other keys are not affected.
func TestRateLimit(t *testing.T) {
	r := newRateLimit(3, 3*time.Second)
	a, b := netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("192.0.2.2/32")
	now := time.Unix(1000, 0)
	for i := range 3 {
		if _, ok := r.reserve(a, now); !ok {
			t.Fatalf("event %d of the burst refused", i+1)
		}
	}
	if w, ok := r.reserve(a, now); ok || w != time.Second {
		t.Fatalf("past the burst: wait %v ok %v, want 1s refused", w, ok)
	}
	if _, ok := r.reserve(b, now); !ok {
		t.Fatal("another key refused")
	}
	r.cancel(a, now)
	if _, ok := r.reserve(a, now); !ok {
		t.Fatal("a cancelled reservation was not given back")
	}
	if _, ok := r.reserve(a, now.Add(time.Second)); !ok {
		t.Fatal("refused after one interval")
	}
	r.sweep(now.Add(time.Hour))
	if len(r.tat) != 0 {
		t.Fatalf("%d keys left after a sweep", len(r.tat))
	}
	if _, ok := newRateLimit(NoLimit, time.Minute).reserve(a, now); !ok {
		t.Fatal("NoLimit refused")
	}
}

func TestAccountBackoffDelays(t *testing.T) {
	b := newAccountBackoff(30 * time.Second)
	var got []time.Duration
	for n := 1; n <= 11; n++ {
		got = append(got, b.delay(n))
	}
	want := []time.Duration{0, 0, 0, 1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays %v, want %v", got, want)
		}
	}
	if b.delay(1000) != 30*time.Second {
		t.Fatal("no cap for large counts")
	}
}

// TestPeerLogLimiter: one line per key per period, and a bounded map.
func TestPeerLogLimiter(t *testing.T) {
	l := newPeerLogLimiter(time.Minute, 2)
	now := time.Unix(1000, 0)
	k := func(i byte) netip.Prefix { return netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, i}), 32) }
	if !l.allow(k(1), now) || l.allow(k(1), now.Add(time.Second)) {
		t.Fatal("want one line per period")
	}
	if !l.allow(k(2), now) || l.allow(k(3), now) {
		t.Fatal("want the third key held back while the map is full")
	}
	if n := l.sweep(now.Add(time.Second)); n != 1 || len(l.last) != 2 {
		t.Fatalf("sweep reported %d suppressed and kept %d keys", n, len(l.last))
	}
	if !l.allow(k(3), now.Add(time.Minute)) || !l.allow(k(1), now.Add(2*time.Minute)) {
		t.Fatal("want lines again after the period")
	}
}
