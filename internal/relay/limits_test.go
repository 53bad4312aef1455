package relay_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"sslmessager/internal/accounts"
	"sslmessager/internal/pki"
	"sslmessager/internal/relay"
	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

// Loopback addresses that stand for distinct clients. Linux routes all of
// 127.0.0.0/8 to lo, so a server on 127.0.0.1 accepts connections from
// them.
const (
	addrA = "127.0.0.2"
	addrB = "127.0.0.3"
	addrC = "127.0.0.4"
	addrD = "127.0.0.5"
)

// lineConn speaks the protocol over one TLS connection.
type lineConn struct {
	t testing.TB
	c *tls.Conn
	r *wire.Reader
}

func dialLines(t testing.TB, srv *relaytest.Server, from string) *lineConn {
	t.Helper()
	c, err := srv.DialTLS(t, from)
	if err != nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	return &lineConn{t: t, c: c, r: wire.NewReader(c, 4096)}
}

// send writes q; an error is returned, not fatal, so goroutines may call it.
func (l *lineConn) send(q wire.Query) error {
	b, err := wire.Format(q)
	if err != nil {
		return err
	}
	l.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err = l.c.Write(b)
	return err
}

// next returns the next server line other than CHECK, waiting up to 5 s.
func (l *lineConn) next() (wire.Query, error) {
	for {
		l.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := l.r.ReadLine()
		if err != nil {
			return nil, err
		}
		q, err := wire.ParseServer(line)
		if err != nil {
			return nil, fmt.Errorf("unparsable line %q: %w", line, err)
		}
		if _, ok := q.(wire.Check); !ok {
			return q, nil
		}
	}
}

// ask sends q and returns the answer; failures are fatal.
func (l *lineConn) ask(q wire.Query) wire.Query {
	l.t.Helper()
	if err := l.send(q); err != nil {
		l.t.Fatal(err)
	}
	a, err := l.next()
	if err != nil {
		l.t.Fatalf("answer to %T: %v", q, err)
	}
	return a
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// addUser creates an account directly in the store, past any sign-up limit.
func addUser(t testing.TB, srv *relaytest.Server, name string) {
	t.Helper()
	if _, err := srv.Accounts.Create(name, "password-"+name); err != nil {
		t.Fatal(err)
	}
}

var waitRe = regexp.MustCompile(`^too many failed log-ins, try again in ([0-9]+)s$`)

// throttledWait returns the wait a throttled log-in's END names.
func throttledWait(t testing.TB, q wire.Query) time.Duration {
	t.Helper()
	e, ok := q.(wire.End)
	m := waitRe.FindStringSubmatch(e.Reason)
	if !ok || !e.Fatal || m == nil {
		t.Fatalf("got %#v, want END * <too many failed log-ins, try again in Ns>", q)
	}
	n, _ := strconv.Atoi(m[1])
	return time.Duration(n) * time.Second
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// TestSilentFloodDoesNotKeepOthersOut: 300 connections from one address
// that never send a byte, redialled as the server closes them, must not
// keep another address from connecting and logging in within a second.
// The global handshake slots are set below the flood's per-address
// connection cap, so a server that let silent connections hold global
// slots would refuse the other address and fail this test.
func TestSilentFloodDoesNotKeepOthersOut(t *testing.T) {
	srv := relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) {
		c.MaxConnsPerIP = relay.DefaultMaxConnsPerIP
		c.MaxHandshakesPerIP = relay.DefaultMaxHandshakesPerIP
		c.HandshakeSlots = 16
		// Short, so that silent connections time out and are redialled
		// while the log-ins below run.
		c.FirstByteTimeout = time.Second
	}})
	const logins = 300
	for i := range logins {
		addUser(t, srv, fmt.Sprintf("u%d", i))
	}

	ctx, stop := context.WithCancel(context.Background())
	var dials, refused atomic.Int64
	var wg sync.WaitGroup
	const flooders, maxDials = 300, 20000
	for range flooders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(addrA)}}
			for ctx.Err() == nil && dials.Add(1) <= maxDials {
				c, err := d.DialContext(ctx, "tcp", srv.Addr)
				if err == nil {
					held := time.Now()
					unblock := context.AfterFunc(ctx, func() { c.Close() })
					io.Copy(io.Discard, c) // silent until the server closes it
					unblock()
					c.Close()
					if time.Since(held) < 100*time.Millisecond {
						refused.Add(1)
					}
				}
				// Pace the redials: the flood is bounded in rate as well as count.
				select {
				case <-ctx.Done():
				case <-time.After(200 * time.Millisecond):
				}
			}
		}()
	}
	defer func() { stop(); wg.Wait() }()
	relaytest.CheckFor(t, 5*time.Second, func() error {
		if n := srv.Conns(); n < relay.DefaultMaxConnsPerIP {
			return fmt.Errorf("flood holds %d connections, want the cap %d", n, relay.DefaultMaxConnsPerIP)
		}
		return nil
	})

	var lat []time.Duration
	start := time.Now()
	// At least 30 log-ins, for up to 3 s, so that flood connections are
	// closed by the first-byte timeout and the slot wait and redialled
	// while others log in.
	for i := 0; i < logins && (i < 30 || time.Since(start) < 3*time.Second); i++ {
		t0 := time.Now()
		l := dialLines(t, srv, addrB)
		name := fmt.Sprintf("u%d", i)
		a := l.ask(wire.Auth{User: name, Pass: "password-" + name})
		if acc, ok := a.(wire.Accept); !ok || acc.User != name {
			t.Fatalf("log-in %d: got %#v, want ACCEPT", i, a)
		}
		lat = append(lat, time.Since(t0))
		l.c.Close()
	}
	slices.Sort(lat)
	t.Logf("log-ins from %s during a silent flood from %s (%d dials, %d closed within 100ms): n=%d p50=%v p90=%v p99=%v max=%v",
		addrB, addrA, dials.Load(), refused.Load(), len(lat),
		percentile(lat, 0.5), percentile(lat, 0.9), percentile(lat, 0.99), lat[len(lat)-1])
	if worst := lat[len(lat)-1]; worst >= time.Second {
		t.Errorf("slowest log-in took %v, want under 1s", worst)
	}
	if refused.Load() == 0 {
		t.Error("no flood connection was refused at the per-address cap")
	}
}

// simultaneousAuth opens n TLS connections from one address, then sends
// every AUTH at the same instant and returns the answers.
func simultaneousAuth(t *testing.T, srv *relaytest.Server, from string, auth func(i int) wire.Auth, n int) []wire.Query {
	t.Helper()
	conns := make([]*lineConn, n)
	for i := range conns {
		conns[i] = dialLines(t, srv, from)
	}
	answers := make([]wire.Query, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, l := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if errs[i] = l.send(auth(i)); errs[i] == nil {
				answers[i], errs[i] = l.next()
			}
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	return answers
}

// countAnswers checks that each answer is a wrong-password END or a
// throttled END, and counts the first kind.
func countAnswers(t *testing.T, answers []wire.Query) (bad, throttled int) {
	t.Helper()
	for _, a := range answers {
		if a == (wire.End{Reason: wire.ReasonBadLogin}) {
			bad++
			continue
		}
		throttledWait(t, a)
		throttled++
	}
	return bad, throttled
}

// TestSimultaneousWrongPasswords: 50 wrong passwords sent at the same
// instant from one address get at most the per-address limit checked
// (spread over 50 accounts), and at most the per-account allowance
// (three free failures and the attempt that starts the backoff) when all
// aim at one account. The server's count of password hashes checked is the
// measure.
func TestSimultaneousWrongPasswords(t *testing.T) {
	const limit = 10
	srv := relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) { c.MaxFailedLogins = limit }})
	addUser(t, srv, "alice")
	for i := range 50 {
		addUser(t, srv, fmt.Sprintf("v%d", i))
	}

	before := srv.PasswordChecks()
	answers := simultaneousAuth(t, srv, addrA, func(i int) wire.Auth {
		return wire.Auth{User: fmt.Sprintf("v%d", i), Pass: "wrong-password"}
	}, 50)
	checked := srv.PasswordChecks() - before
	bad, throttled := countAnswers(t, answers)
	t.Logf("50 simultaneous wrong passwords for 50 accounts from one address: %d checked, %d refused unchecked (limit %d)", checked, throttled, limit)
	if checked > limit || int64(bad) != checked {
		t.Errorf("%d hashes checked and %d wrong-password answers, want both at most %d and equal", checked, bad, limit)
	}

	before = srv.PasswordChecks()
	answers = simultaneousAuth(t, srv, addrB, func(int) wire.Auth {
		return wire.Auth{User: "alice", Pass: "wrong-password"}
	}, 50)
	checked = srv.PasswordChecks() - before
	bad, throttled = countAnswers(t, answers)
	t.Logf("50 simultaneous wrong passwords for one account from one address: %d checked, %d refused unchecked", checked, throttled)
	if checked > 4 || int64(bad) != checked {
		t.Errorf("%d hashes checked and %d wrong-password answers, want both at most 4 and equal", checked, bad)
	}
}

// TestAccountBackoff: guessing one account gets slower with every failure
// past the free ones, up to the cap; the owner at another address logs in
// at once, and after a typo of their own waits at most the cap.
func TestAccountBackoff(t *testing.T) {
	const capWait = 2 * time.Second
	srv := relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) { c.LoginBackoffMax = capWait }})
	addUser(t, srv, "alice")
	guess := func(from, pass string) wire.Query {
		l := dialLines(t, srv, from)
		defer l.c.Close()
		return l.ask(wire.Auth{User: "alice", Pass: pass})
	}
	for i := range 4 { // three free failures, and the one that starts the wait
		if a := guess(addrA, "wrong-password"); a != (wire.End{Reason: wire.ReasonBadLogin}) {
			t.Fatalf("guess %d: got %#v, want a wrong-password END", i+1, a)
		}
	}
	var waits []time.Duration
	for range 3 {
		w := throttledWait(t, guess(addrA, "wrong-password"))
		waits = append(waits, w)
		// Retry once the named wait has passed.
		relaytest.CheckFor(t, capWait+2*time.Second, func() error {
			if a := guess(addrA, "wrong-password"); a != (wire.End{Reason: wire.ReasonBadLogin}) {
				return fmt.Errorf("after waiting %v: got %#v, want the guess checked", w, a)
			}
			return nil
		})
	}
	t.Logf("waits named to the guesser after failures 4, 5, 6: %v", waits)
	if !(waits[0] == time.Second && waits[1] == 2*time.Second && waits[2] == capWait) {
		t.Errorf("waits %v, want 1s, 2s, then the cap %v", waits, capWait)
	}

	// The owner at another address is not held by the guesser's waits...
	t0 := time.Now()
	owner := dialLines(t, srv, addrB)
	if a := owner.ask(wire.Auth{User: "alice", Pass: "password-alice"}); a == nil || a.Verb() != "ACCEPT" {
		t.Fatalf("owner from another address: got %#v, want ACCEPT", a)
	}
	t.Logf("owner from another address logged in after %v", time.Since(t0))
	owner.c.Close()

	// ...and after their own typo, once the guesser has raised the count
	// again, waits at most the cap.
	for range 4 {
		guess(addrA, "wrong-password")
	}
	relaytest.CheckFor(t, 5*time.Second, func() error { // the previous session has ended
		if n := len(srv.Online()); n != 0 {
			return fmt.Errorf("%d online", n)
		}
		return nil
	})
	if a := guess(addrC, "typo-password"); a != (wire.End{Reason: wire.ReasonBadLogin}) {
		t.Fatalf("owner's typo: got %#v", a)
	}
	a := guess(addrC, "password-alice")
	if w := throttledWait(t, a); w > capWait {
		t.Fatalf("owner told to wait %v, over the cap %v", w, capWait)
	}
	relaytest.CheckFor(t, capWait+2*time.Second, func() error {
		if a := guess(addrC, "password-alice"); a == nil || a.Verb() != "ACCEPT" {
			return fmt.Errorf("owner: got %#v, want ACCEPT", a)
		}
		return nil
	})
}

// TestPerAddressFailuresRecover: one address that used up its failed
// log-ins is refused with the wait, and gets in once it has passed.
func TestPerAddressFailuresRecover(t *testing.T) {
	srv := relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) {
		c.MaxFailedLogins = 3
		c.FailedLoginWindow = 3 * time.Second // one more each second after the burst
	}})
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		addUser(t, srv, u)
	}
	for _, u := range []string{"alice", "bob", "carol"} {
		if a := dialLines(t, srv, addrA).ask(wire.Auth{User: u, Pass: "wrong-password"}); a != (wire.End{Reason: wire.ReasonBadLogin}) {
			t.Fatalf("got %#v", a)
		}
	}
	w := throttledWait(t, dialLines(t, srv, addrA).ask(wire.Auth{User: "dave", Pass: "password-dave"}))
	if w < time.Second || w > 3*time.Second {
		t.Errorf("wait %v, want 1s to 3s", w)
	}
	// Another address is not affected.
	if a := dialLines(t, srv, addrB).ask(wire.Auth{User: "dave", Pass: "password-dave"}); a == nil || a.Verb() != "ACCEPT" {
		t.Fatalf("another address: got %#v, want ACCEPT", a)
	}
	relaytest.CheckFor(t, w+3*time.Second, func() error {
		a := dialLines(t, srv, addrA).ask(wire.Auth{User: "carol", Pass: "password-carol"})
		if a == nil || a.Verb() != "ACCEPT" {
			return fmt.Errorf("got %#v, want ACCEPT once the wait passed", a)
		}
		return nil
	})
}

// TestSignUpLimits: a burst of sign-ups from one address is refused with
// the wait past the limit, sign-ups that create nothing do not count, other
// addresses still sign up, and simultaneous sign-ups cannot pass the limit
// together.
func TestSignUpLimits(t *testing.T) {
	const limit = 5
	srv := relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) {
		c.MaxSignUpsPerIP = limit
		c.MaxHandshakesPerIP = relay.DefaultMaxHandshakesPerIP
	}})
	addUser(t, srv, "taken")

	// Refused sign-ups (a taken name) create nothing and do not count.
	l := dialLines(t, srv, addrA)
	for range 4 {
		if a := l.ask(wire.SignUp{User: "taken", Pass: "password-x"}); a != (wire.Try{Reason: wire.ReasonTaken}) {
			t.Fatalf("got %#v, want TRY <%s>", a, wire.ReasonTaken)
		}
	}
	l.c.Close()
	for i := range limit {
		name := fmt.Sprintf("a%d", i)
		if a := dialLines(t, srv, addrA).ask(wire.SignUp{User: name, Pass: "password-" + name}); a == nil || a.Verb() != "ACCEPT" {
			t.Fatalf("sign-up %d: got %#v, want ACCEPT", i+1, a)
		}
	}
	a := dialLines(t, srv, addrA).ask(wire.SignUp{User: "a_more", Pass: "password-more"})
	try, ok := a.(wire.Try)
	if !ok || !regexp.MustCompile(`^too many sign-ups from your address, try again in [0-9]+m$`).MatchString(try.Reason) {
		t.Fatalf("sign-up past the limit: got %#v, want TRY <too many sign-ups from your address, try again in Nm>", a)
	}
	t.Logf("refusal: TRY <%s>", try.Reason)
	if _, ok := srv.Accounts.Lookup("a_more"); ok {
		t.Fatal("the refused sign-up made an account")
	}
	if a := dialLines(t, srv, addrB).ask(wire.SignUp{User: "b0", Pass: "password-b0"}); a == nil || a.Verb() != "ACCEPT" {
		t.Fatalf("another address: got %#v, want ACCEPT", a)
	}

	// 20 at the same instant from one address: at most the limit made.
	const n = 20
	conns := make([]*lineConn, n)
	for i := range conns {
		conns[i] = dialLines(t, srv, addrC)
	}
	before := srv.Accounts.Len()
	var wg sync.WaitGroup
	var accepted atomic.Int64
	start := make(chan struct{})
	for i, l := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			name := fmt.Sprintf("c%d", i)
			if l.send(wire.SignUp{User: name, Pass: "password-" + name}) != nil {
				return
			}
			if a, err := l.next(); err == nil && a.Verb() == "ACCEPT" {
				accepted.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	made := srv.Accounts.Len() - before
	t.Logf("%d simultaneous sign-ups from one address: %d accounts made (limit %d)", n, made, limit)
	if made != limit || accepted.Load() != int64(limit) {
		t.Errorf("%d accounts made, %d accepted; want %d", made, accepted.Load(), limit)
	}
}

// TestSignUpClosed: PUT is refused with its reason; AUTH still works.
func TestSignUpClosed(t *testing.T) {
	srv := relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) { c.SignUpClosed = true }})
	addUser(t, srv, "alice")
	l := dialLines(t, srv, "")
	if a := l.ask(wire.SignUp{User: "bob", Pass: "password-bob"}); a != (wire.Try{Reason: "sign-up is closed on this server"}) {
		t.Fatalf("got %#v, want TRY <sign-up is closed on this server>", a)
	}
	if _, ok := srv.Accounts.Lookup("bob"); ok {
		t.Fatal("closed sign-up made an account")
	}
	if a := l.ask(wire.Auth{User: "alice", Pass: "password-alice"}); a == nil || a.Verb() != "ACCEPT" {
		t.Fatalf("AUTH on the same connection: got %#v, want ACCEPT", a)
	}
}

// TestConnCapPerAddress: past its cap, an address's connections are closed
// at once, before TLS; other addresses connect; a closed connection frees
// its place.
func TestConnCapPerAddress(t *testing.T) {
	const limit = 3
	srv := relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) { c.MaxConnsPerIP = limit }})
	var held []*tls.Conn
	for range limit {
		c, err := srv.DialTLS(t, addrA)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	if _, err := srv.DialTLS(t, addrA); err == nil {
		t.Fatalf("connection %d from one address completed its handshake, want it closed at the cap %d", limit+1, limit)
	}
	if _, err := srv.DialTLS(t, addrB); err != nil {
		t.Fatalf("another address: %v", err)
	}
	held[0].Close()
	relaytest.CheckFor(t, 5*time.Second, func() error {
		c, err := srv.DialTLS(t, addrA)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// stallConn lets a TLS client send its first flight, then holds its next
// write until closed, so the server sits mid-handshake holding a slot.
type stallConn struct {
	net.Conn
	writes      int
	spoke, held chan struct{}
	once        sync.Once
}

func (c *stallConn) Write(p []byte) (int, error) {
	if c.writes++; c.writes > 1 {
		<-c.held
		return 0, net.ErrClosed
	}
	return c.Conn.Write(p)
}

func (c *stallConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.once.Do(func() { close(c.spoke) })
	}
	return n, err
}

// TestHandshakeSlotWait: a connection that finds every global handshake
// slot busy waits for one rather than being closed at once.
func TestHandshakeSlotWait(t *testing.T) {
	srv := relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) {
		c.HandshakeSlots = 1
		c.HandshakeSlotWait = 5 * time.Second
	}})
	raw, err := srv.DialTCP(t, addrA)
	if err != nil {
		t.Fatal(err)
	}
	stall := &stallConn{Conn: raw, spoke: make(chan struct{}), held: make(chan struct{})}
	go tls.Client(stall, srv.ClientTLS(t)).Handshake()
	select { // the server has answered the ClientHello: it holds the slot
	case <-stall.spoke:
	case <-time.After(5 * time.Second):
		t.Fatal("no server flight")
	}
	done := make(chan error, 1)
	go func() {
		c, err := srv.DialTLS(t, addrB)
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	relaytest.CheckFor(t, 5*time.Second, func() error {
		if srv.Conns() != 2 {
			return fmt.Errorf("%d connections, want the stalled one and the waiting one", srv.Conns())
		}
		return nil
	})
	raw.Close()
	close(stall.held)
	if err := <-done; err != nil {
		t.Fatalf("the waiting connection: %v", err)
	}
}

// TestShutdownClosesHandshakes: connections that are silent, or stalled in
// the middle of their handshake, do not make Shutdown overrun its context.
func TestShutdownClosesHandshakes(t *testing.T) {
	srv := relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) {
		c.MaxHandshakesPerIP = relay.NoLimit
		c.FirstByteTimeout = time.Minute
		c.HandshakeTimeout = time.Minute
	}})
	var raws []*net.TCPConn
	for i := range 20 {
		c, err := srv.DialTCP(t, addrA)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 { // half start a ClientHello and stall
			c.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00})
		}
		raws = append(raws, c)
	}
	relaytest.CheckFor(t, 5*time.Second, func() error {
		if n := srv.Conns(); n != len(raws) {
			return fmt.Errorf("%d connections, want %d", n, len(raws))
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	t0 := time.Now()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v after %v", err, time.Since(t0))
	}
	t.Logf("Shutdown with %d connections in their handshake took %v", len(raws), time.Since(t0))
	for i, c := range raws {
		c.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
			t.Errorf("connection %d not closed by the server: %v", i, err)
		}
	}
}

// TestFailedHandshakeLogged: a failed handshake is logged at info with its
// reason, once per address per minute.
func TestFailedHandshakeLogged(t *testing.T) {
	var logs relaytest.SyncBuffer
	srv := relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}})
	garbage := func(from string) {
		c, err := srv.DialTCP(t, from)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, c)
	}
	count := func(from string) int {
		return strings.Count(logs.String(), `msg="handshake failed" remote=`+from+":")
	}
	for range 5 {
		garbage(addrA)
	}
	garbage(addrB)
	relaytest.CheckFor(t, 5*time.Second, func() error {
		if a, b := count(addrA), count(addrB); a != 1 || b != 1 {
			return fmt.Errorf("handshake-failure lines: %d for %s, %d for %s; want 1 each\n%s", a, addrA, b, addrB, logs.String())
		}
		return nil
	})
	if !strings.Contains(logs.String(), "reason=") {
		t.Errorf("no reason logged:\n%s", logs.String())
	}
}

// certConfig writes certificates valid from now-ago for days into a new
// directory and returns a server TLS configuration and account store.
func certConfig(t *testing.T, ago time.Duration, days int) relay.Config {
	t.Helper()
	dir := t.TempDir()
	now := time.Now().Add(-ago)
	if _, err := pki.Generate(pki.GenerateOptions{Dir: dir, Hosts: []string{"127.0.0.1"}, ServerDays: days, Now: func() time.Time { return now }}); err != nil {
		t.Fatal(err)
	}
	tc, err := pki.ServerTLSConfig(filepath.Join(dir, pki.ServerCertFile), filepath.Join(dir, pki.ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	acc, err := accounts.Open(filepath.Join(dir, "users.csv"), accounts.Options{Cost: bcrypt.MinCost, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { acc.Close() })
	return relay.Config{TLSConfig: tc, Accounts: acc, Logger: quietLogger()}
}

// TestExpiredCertRefused: New refuses an expired certificate unless
// AllowExpiredCert, and then logs it as an error.
func TestExpiredCertRefused(t *testing.T) {
	cfg := certConfig(t, 40*24*time.Hour, 10) // ended 30 days ago
	if srv, err := relay.New(cfg); !errors.Is(err, pki.ErrCertExpired) {
		if srv != nil {
			srv.Close()
		}
		t.Fatalf("New: %v, want pki.ErrCertExpired", err)
	} else {
		t.Logf("refused: %v", err)
	}
	var logs relaytest.SyncBuffer
	cfg.AllowExpiredCert = true
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	srv, err := relay.New(cfg)
	if err != nil {
		t.Fatalf("New with AllowExpiredCert: %v", err)
	}
	srv.Close()
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "expired") {
		t.Errorf("no error logged for the expired certificate:\n%s", logs.String())
	}
}

// TestExpiringCertWarned: a certificate that ends within 30 days is
// warned of at start and at each check after.
func TestExpiringCertWarned(t *testing.T) {
	cfg := certConfig(t, 0, 20)
	var logs relaytest.SyncBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	cfg.CertCheckInterval = 20 * time.Millisecond
	srv, err := relay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	warned := func() int { return strings.Count(logs.String(), "server certificate expires soon") }
	if warned() != 1 {
		t.Fatalf("no warning at start:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "days_left=19") && !strings.Contains(logs.String(), "days_left=20") {
		t.Errorf("warning does not say how long is left:\n%s", logs.String())
	}
	relaytest.CheckFor(t, 5*time.Second, func() error {
		if n := warned(); n < 3 {
			return fmt.Errorf("%d warnings, want one per check", n)
		}
		return nil
	})

	// A certificate with years left is not warned of.
	cfg = certConfig(t, 0, 400)
	var logs2 relaytest.SyncBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs2, nil))
	srv2, err := relay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv2.Close()
	if strings.Contains(logs2.String(), "expires soon") {
		t.Errorf("warned of a certificate with 400 days left:\n%s", logs2.String())
	}
}
