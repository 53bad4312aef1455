package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"sslmessager/internal/accounts"
	"sslmessager/internal/pki"
	"sslmessager/internal/spool"
	"sslmessager/internal/wire"
)

// harness is a real server on 127.0.0.1:0 with certificates and accounts in
// a temporary directory.
type harness struct {
	t      testing.TB
	dir    string
	cfg    Config
	srv    *Server
	addr   string
	served chan error
	wrap   func(net.Listener) net.Listener
	spool  spool.Options
	acc    *accounts.Store
}

func startServer(t testing.TB, mod func(*Config)) *harness {
	t.Helper()
	return startServerSpool(t, mod, spool.Options{})
}

func startServerSpool(t testing.TB, mod func(*Config), so spool.Options) *harness {
	t.Helper()
	dir := t.TempDir()
	if _, err := pki.Generate(pki.GenerateOptions{Dir: dir, Hosts: []string{"127.0.0.1", "localhost"}}); err != nil {
		t.Fatal(err)
	}
	tc, err := pki.ServerTLSConfig(filepath.Join(dir, pki.ServerCertFile), filepath.Join(dir, pki.ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, dir: dir, spool: so}
	h.cfg = Config{TLSConfig: tc, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		// Every test client comes from 127.0.0.1.
		MaxConnsPerIP: NoLimit, MaxHandshakesPerIP: NoLimit, MaxSignUpsPerIP: NoLimit}
	if testing.Verbose() {
		h.cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if mod != nil {
		mod(&h.cfg)
	}
	h.start()
	t.Cleanup(func() { h.stop() })
	return h
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (h *harness) start() {
	h.t.Helper()
	acc, err := accounts.Open(filepath.Join(h.dir, "users.csv"), accounts.Options{Cost: bcrypt.MinCost, Logger: h.cfg.Logger})
	if err != nil {
		h.t.Fatal(err)
	}
	cfg := h.cfg
	cfg.Accounts = acc
	h.acc = acc
	opts := h.spool
	opts.Logger = h.cfg.Logger
	if cfg.Spool, err = spool.Open(filepath.Join(h.dir, "spool"), opts); err != nil {
		h.t.Fatal(err)
	}
	h.srv, err = New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	if h.wrap != nil {
		l = h.wrap(l)
	}
	h.addr = l.Addr().String()
	h.served = make(chan error, 1)
	go func() { h.served <- h.srv.Serve(l) }()
}

// stop shuts the server down gracefully and checks that Serve returned.
func (h *harness) stop() {
	if h.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		h.t.Errorf("Shutdown: %v", err)
	}
	if err := <-h.served; !errors.Is(err, ErrServerClosed) {
		h.t.Errorf("Serve returned %v, want ErrServerClosed", err)
	}
	h.acc.Close()
	h.srv = nil
}

// tclient speaks the protocol by hand, as any client could.
type tclient struct {
	t     testing.TB
	conn  *tls.Conn
	r     *wire.Reader
	user  string
	token string
}

func (h *harness) dial(t testing.TB) *tclient {
	t.Helper()
	return h.dialWith(t, nil)
}

func (h *harness) dialWith(t testing.TB, prep func(*net.TCPConn)) *tclient {
	t.Helper()
	tc, err := pki.ClientTLSConfig(filepath.Join(h.dir, pki.CAFile), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	if prep != nil {
		prep(raw.(*net.TCPConn))
	}
	conn := tls.Client(raw, tc)
	if err := conn.Handshake(); err != nil {
		t.Fatal(err)
	}
	c := &tclient{t: t, conn: conn, r: wire.NewReader(conn, 4096)}
	t.Cleanup(func() { conn.Close() })
	return c
}

func (c *tclient) raw(s string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

func (c *tclient) send(q wire.Query) {
	c.t.Helper()
	b, err := wire.Format(q)
	if err != nil {
		c.t.Fatal(err)
	}
	c.raw(string(b))
}

// next returns the next server line other than CHECK.
func (c *tclient) next() (wire.Query, error) {
	c.t.Helper()
	for {
		c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := c.r.ReadLine()
		if err != nil {
			return nil, err
		}
		q, err := wire.ParseServer(line)
		if err != nil {
			c.t.Fatalf("%s got an unparsable line %q: %v", c.user, line, err)
		}
		if _, ok := q.(wire.Check); !ok {
			return q, nil
		}
	}
}

func (c *tclient) expect(want wire.Query) {
	c.t.Helper()
	got, err := c.next()
	if err != nil {
		c.t.Fatalf("%s waiting for %#v: %v", c.user, want, err)
	}
	if !reflect.DeepEqual(got, want) {
		c.t.Fatalf("%s got %#v, want %#v", c.user, got, want)
	}
}

// expectClosed reads until the server closes the connection.
func (c *tclient) expectClosed() {
	c.t.Helper()
	for {
		q, err := c.next()
		if err != nil {
			return
		}
		c.t.Fatalf("%s: got %#v, want the connection closed", c.user, q)
	}
}

func (c *tclient) signUp(user string) {
	c.t.Helper()
	c.send(wire.SignUp{User: user, Pass: "password-" + user})
	c.acceptAs(user)
}

func (c *tclient) logIn(user string) {
	c.t.Helper()
	c.send(wire.Auth{User: user, Pass: "password-" + user})
	c.acceptAs(user)
}

func (c *tclient) acceptAs(user string) {
	c.t.Helper()
	q, err := c.next()
	if err != nil {
		c.t.Fatalf("log-in of %s: %v", user, err)
	}
	a, ok := q.(wire.Accept)
	if !ok || a.User != user || len(a.Token) < 32 {
		c.t.Fatalf("log-in of %s: got %#v", user, q)
	}
	c.user, c.token = a.User, a.Token
}

func (c *tclient) msg(to, text string) {
	c.send(wire.Msg{Target: to, Sender: c.user, Text: text, Token: c.token})
}

// checkFor polls cond until it holds or the time is up.
func checkFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestChatBetweenThreeClients(t *testing.T) {
	h := startServer(t, nil)
	alice, bob, carol := h.dial(t), h.dial(t), h.dial(t)
	alice.signUp("alice")
	bob.signUp("bob")
	carol.signUp("carol")

	alice.msg("bob", "hello bob")
	bob.expect(wire.Relay{Target: "bob", Sender: "alice", Text: "hello bob"})
	bob.msg("alice", "hi alice, été 日本 \\ tab\t")
	alice.expect(wire.Relay{Target: "alice", Sender: "bob", Text: "hi alice, été 日本 \\ tab\t"})

	// Group chat reaches exactly the other members.
	alice.send(wire.Group{Token: alice.token})
	bob.send(wire.Group{Token: bob.token})
	checkFor(t, "two group members", 5*time.Second, func() bool { return len(h.srv.hub.groupMembers()) == 2 })
	alice.send(wire.GroupMsg{Sender: "alice", Text: "to the group", Token: alice.token})
	bob.expect(wire.RelayGroup{Sender: "alice", Text: "to the group"})
	// Carol is not in the group and alice does not get her own message: the
	// next thing each sees is a direct message sent afterwards.
	bob.msg("carol", "after the group message")
	carol.expect(wire.Relay{Target: "carol", Sender: "bob", Text: "after the group message"})
	bob.msg("alice", "after the group message")
	alice.expect(wire.Relay{Target: "alice", Sender: "bob", Text: "after the group message"})

	// Toggling again leaves the group.
	bob.send(wire.Group{Token: bob.token})
	checkFor(t, "one group member", 5*time.Second, func() bool { return len(h.srv.hub.groupMembers()) == 1 })

	carol.send(wire.Online{Token: carol.token})
	carol.expect(wire.OnlineList{Users: []string{"alice", "bob", "carol"}})

	alice.msg("dave", "are you there")
	alice.expect(wire.NotOnline{Reason: wire.ReasonNotOnline})

	carol.send(wire.Quit{Token: carol.token})
	carol.expect(wire.End{Reason: wire.ReasonEndAccepted})
	carol.expectClosed()
	checkFor(t, "carol offline", 5*time.Second, func() bool { return !slices.Contains(h.srv.Online(), "carol") })
	bob.msg("carol", "gone?")
	bob.expect(wire.NotOnline{Reason: wire.ReasonNotOnline})
}

func TestOriginalClientBytesAndRecords(t *testing.T) {
	h := startServer(t, nil)
	alice, bob := h.dial(t), h.dial(t)
	alice.raw("PUT alice password-alice \r\n")
	alice.acceptAs("alice")
	bob.signUp("bob")

	// The original client leaves its input's newline on the text.
	alice.raw("MSG bob alice hello bob\n " + alice.token + " \r\n")
	alice.raw("MSG bob alice \x1b[31mred\ttab\n " + alice.token + " \r\n")
	alice.raw("CMD <online> " + alice.token + " \r\n")
	alice.raw("MSG bob alice bye\n " + alice.token + " \r\n")
	// Each line arrives as exactly one TLS record: tls.Conn.Read returns
	// the data of one record at most.
	want := []string{
		"RELAY bob alice hello bob\\n \r\n",
		"RELAY bob alice \\x1b[31mred\\ttab\\n \r\n",
		"RELAY bob alice bye\\n \r\n",
	}
	buf := make([]byte, 64<<10)
	for _, w := range want {
		bob.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := bob.conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if string(buf[:n]) == "CHECK \r\n" {
			continue
		}
		if string(buf[:n]) != w {
			t.Fatalf("record %q, want %q", buf[:n], w)
		}
	}
	alice.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := alice.conn.Read(buf)
	if err != nil || string(buf[:n]) != "CMD <alice bob> \r\n" {
		t.Fatalf("online list record %q, %v", buf[:n], err)
	}
}

func TestAccountsSurviveRestart(t *testing.T) {
	h := startServer(t, nil)
	c := h.dial(t)
	c.signUp("Alice")
	h.stop()
	h.start()
	for _, name := range []string{"Alice", "alice", "ALICE"} {
		c = h.dial(t)
		c.send(wire.Auth{User: name, Pass: "password-Alice"})
		c.acceptAs("Alice") // the name as registered
		c.send(wire.Quit{Token: c.token})
		c.expect(wire.End{Reason: wire.ReasonEndAccepted})
		checkFor(t, "Alice offline", 5*time.Second, func() bool { return len(h.srv.Online()) == 0 })
	}
	c = h.dial(t)
	c.send(wire.Auth{User: "Alice", Pass: "wrong-password"})
	c.expect(wire.End{Reason: wire.ReasonBadLogin})
	c.expectClosed()
}

func TestLoginPhase(t *testing.T) {
	h := startServer(t, func(c *Config) { c.LoginTimeout = 300 * time.Millisecond; c.MaxLoginTries = 3 })
	owner := h.dial(t)
	owner.signUp("taken")

	c := h.dial(t)
	c.send(wire.SignUp{User: "taken", Pass: "password-x"})
	c.expect(wire.Try{Reason: wire.ReasonTaken})
	c.send(wire.SignUp{User: "TAKEN", Pass: "password-x"})
	c.expect(wire.Try{Reason: wire.ReasonTaken})
	c.send(wire.SignUp{User: "fresh", Pass: "password-fresh"})
	c.acceptAs("fresh") // a third try still works

	c = h.dial(t)
	for _, q := range []wire.Query{
		wire.SignUp{User: "admin", Pass: "password-x"},
		wire.SignUp{User: "way_too_long_name", Pass: "password-x"},
		wire.SignUp{User: "ok", Pass: "short"},
	} {
		c.send(q)
		if got, err := c.next(); err != nil {
			t.Fatal(err)
		} else if _, ok := got.(wire.Try); !ok {
			t.Fatalf("%#v: got %#v, want TRY", q, got)
		}
	}
	c.expect(wire.End{Fatal: true, Reason: reasonTooMany})
	c.expectClosed()

	// Anything but AUTH or PUT before log-in.
	c = h.dial(t)
	c.raw("MSG bob alice hi x \r\n")
	c.expect(wire.End{Fatal: true, Reason: wire.ReasonProtocol})
	c.expectClosed()

	c = h.dial(t)
	c.raw("HELLO\r\n")
	c.expect(wire.End{Fatal: true, Reason: wire.ReasonProtocol})
	c.expectClosed()

	// Someone who says nothing is closed when the log-in deadline passes,
	// and is sent nothing before that (no CHECK during log-in).
	c = h.dial(t)
	c.expectClosed()

	// One live session per user.
	c = h.dial(t)
	c.send(wire.Auth{User: "taken", Pass: "password-taken"})
	c.expect(wire.End{Fatal: true, Reason: wire.ReasonAlreadyOnline})
	c.expectClosed()
	owner.msg("taken", "still here")
	owner.expect(wire.Relay{Target: "taken", Sender: "taken", Text: "still here"})
}

func TestBadQueriesCloseOnlyThatConnection(t *testing.T) {
	h := startServer(t, nil)
	bob := h.dial(t)
	bob.signUp("bob")
	first := h.dial(t)
	first.signUp("alice")
	first.send(wire.Quit{Token: first.token})
	first.expect(wire.End{Reason: wire.ReasonEndAccepted})
	checkFor(t, "alice offline", 5*time.Second, func() bool { return !slices.Contains(h.srv.Online(), "alice") })
	for _, c := range []struct {
		name   string
		send   func(c *tclient)
		reason string
	}{
		{"wrong token", func(c *tclient) {
			c.send(wire.Msg{Target: "bob", Sender: c.user, Text: "hi", Token: strings.Repeat("0", 64)})
		}, reasonBadToken},
		{"impersonation", func(c *tclient) {
			c.raw("MSG bob mallory hi " + c.token + " \r\n")
		}, reasonImpersonate},
		{"group impersonation", func(c *tclient) {
			c.send(wire.GroupMsg{Sender: "bob", Text: "hi", Token: c.token})
		}, reasonImpersonate},
		{"garbage", func(c *tclient) { c.raw("\x00\x01\x02 \r\n") }, wire.ReasonProtocol},
		{"unknown command", func(c *tclient) { c.raw("CMD <shutdown> " + c.token + " \r\n") }, wire.ReasonProtocol},
		{"second log-in", func(c *tclient) { c.send(wire.Auth{User: "bob", Pass: "password-bob"}) }, wire.ReasonProtocol},
		{"over-long line", func(c *tclient) { c.raw(strings.Repeat("A", wire.MaxLineBytes+10) + "\r\n") }, reasonLineTooLong},
		{"over-long text", func(c *tclient) {
			c.raw("MSG bob alice " + strings.Repeat("x", wire.MaxTextRunes+1) + " " + c.token + " \r\n")
		}, wire.ReasonProtocol},
	} {
		t.Run(c.name, func(t *testing.T) {
			alice := h.dial(t)
			alice.logIn("alice")
			c.send(alice)
			alice.expect(wire.End{Fatal: true, Reason: c.reason})
			alice.expectClosed()
			checkFor(t, "alice offline", 5*time.Second, func() bool { return !slices.Contains(h.srv.Online(), "alice") })
			// bob saw nothing and still works.
			bob.msg("bob", "still fine after "+c.name)
			bob.expect(wire.Relay{Target: "bob", Sender: "bob", Text: "still fine after " + c.name})
			// alice can come back.
			again := h.dial(t)
			again.logIn("alice")
			again.send(wire.Quit{Token: again.token})
			again.expect(wire.End{Reason: wire.ReasonEndAccepted})
			checkFor(t, "alice offline", 5*time.Second, func() bool { return !slices.Contains(h.srv.Online(), "alice") })
		})
	}
}

func TestQuitWithoutReadingTheAnswer(t *testing.T) {
	h := startServer(t, nil)
	alice := h.dial(t)
	alice.signUp("alice")
	// The original client sends END and dies at once.
	alice.send(wire.Quit{Token: alice.token})
	alice.conn.NetConn().Close()
	checkFor(t, "alice offline", 5*time.Second, func() bool { return len(h.srv.Online()) == 0 })
	again := h.dial(t)
	again.logIn("alice")
}

// TestSlowConsumerIsDropped: bob never reads. alice floods him; the server
// pauses alice while bob's queue is high and drops bob once it overflows.
// alice is never dropped and carol's chat goes on throughout.
func TestSlowConsumerIsDropped(t *testing.T) {
	h := startServer(t, func(c *Config) {
		c.MaxQueueBytes = 2 * wire.MaxLineBytes
		c.StallWait = 2 * time.Millisecond
	})
	bob := h.dial(t)
	bob.signUp("bob")
	alice, carol := h.dial(t), h.dial(t)
	alice.signUp("alice")
	carol.signUp("carol")

	text := strings.Repeat("flood ", 600)
	var sent int
	start := time.Now()
	for sent = 0; sent < 20000 && slices.Contains(h.srv.Online(), "bob"); sent++ {
		alice.msg("bob", text)
		if sent%200 == 0 {
			carol.msg("alice", fmt.Sprint("ping ", sent))
			// Once bob is gone alice's messages to him answer CNT.
			want := wire.Relay{Target: "alice", Sender: "carol", Text: fmt.Sprint("ping ", sent)}
			for {
				q, err := alice.next()
				if err != nil {
					t.Fatalf("alice waiting for %v: %v", want, err)
				}
				if q == want {
					break
				}
				if _, ok := q.(wire.NotOnline); !ok {
					t.Fatalf("alice got %#v, want %#v", q, want)
				}
			}
		}
	}
	checkFor(t, "bob dropped", 10*time.Second, func() bool { return !slices.Contains(h.srv.Online(), "bob") })
	t.Logf("bob was dropped after %d messages of %d bytes (%v)", sent, len(text), time.Since(start))
	alice.msg("carol", "still here")
	carol.expect(wire.Relay{Target: "carol", Sender: "alice", Text: "still here"})
	if !slices.Contains(h.srv.Online(), "alice") {
		t.Fatal("alice, the flooder, was dropped; only her reads may slow her")
	}
	// bob's reads now find the messages that fit, then the reason, then EOF.
	var last wire.Query
	lines := 0
	for {
		q, err := bob.next()
		if err != nil {
			t.Logf("bob: %v after %d lines (%v)", err, lines, time.Since(start))
			break
		}
		lines++
		last = q
	}
	if want := (wire.End{Fatal: true, Reason: "slow consumer: messages were not read in time"}); !reflect.DeepEqual(last, want) {
		t.Fatalf("bob's last line %#v, want %#v", last, want)
	}
	t.Logf("bob read to the end (%v)", time.Since(start))
}

// smallBuffers shrinks the server side's socket send buffer, so that a
// client that stops reading blocks the server's writes quickly.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

func TestCheckerDropsDeadConnection(t *testing.T) {
	h := startServerWrapped(t, func(c *Config) {
		c.CheckInterval = 2 * time.Millisecond
		c.WriteTimeout = 300 * time.Millisecond
	}, func(l net.Listener) net.Listener { return smallBuffers{l} })
	// bob's process hangs: connected, never reading again.
	bob := h.dialWith(t, func(c *net.TCPConn) { c.SetReadBuffer(2048) })
	bob.signUp("bob")
	alice := h.dial(t)
	alice.signUp("alice")
	checkFor(t, "the checker to drop bob", 20*time.Second, func() bool { return !slices.Contains(h.srv.Online(), "bob") })
	// alice reads her CHECKs and stays.
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		alice.conn.SetReadDeadline(deadline)
		if _, err := alice.r.ReadLine(); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("alice lost her connection: %v", err)
		} else if err != nil {
			break
		}
	}
	if !slices.Contains(h.srv.Online(), "alice") {
		t.Fatal("alice was dropped though she reads")
	}
}

func startServerWrapped(t *testing.T, mod func(*Config), wrap func(net.Listener) net.Listener) *harness {
	t.Helper()
	h := startServer(t, mod)
	h.stop()
	h.wrap = wrap
	h.start()
	return h
}

func TestGracefulShutdown(t *testing.T) {
	h := startServer(t, nil)
	var clients []*tclient
	for _, name := range []string{"alice", "bob", "carol"} {
		c := h.dial(t)
		c.signUp(name)
		clients = append(clients, c)
	}
	pending := h.dial(t) // still in the log-in phase
	clients[0].msg("bob", "last words")
	clients[1].expect(wire.Relay{Target: "bob", Sender: "alice", Text: "last words"})
	h.stop()
	for _, c := range clients {
		c.expect(wire.End{Reason: "server shutting down"})
		c.expectClosed()
	}
	pending.expect(wire.End{Reason: "server shutting down"})
	pending.expectClosed()
	if _, err := net.DialTimeout("tcp", h.addr, time.Second); err == nil {
		t.Fatal("the server still accepts connections after Shutdown")
	}
}

func TestManyClientsConcurrently(t *testing.T) {
	h := startServer(t, nil)
	const n = 20
	clients := make([]*tclient, n)
	for i := range clients {
		clients[i] = h.dial(t)
		clients[i].signUp(fmt.Sprintf("user%d", i))
	}
	const per = 50
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			to := fmt.Sprintf("user%d", (i+1)%n)
			for k := range per {
				b, _ := wire.Format(wire.Msg{Target: to, Sender: c.user, Text: fmt.Sprint(k), Token: c.token})
				c.conn.Write(b)
			}
		}()
	}
	for i, c := range clients {
		from := fmt.Sprintf("user%d", (i+n-1)%n)
		for k := range per {
			c.expect(wire.Relay{Target: c.user, Sender: from, Text: fmt.Sprint(k)})
		}
	}
	wg.Wait()
}
