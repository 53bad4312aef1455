package relay_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sslmessager/internal/relay"
	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

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
	h := relaytest.Start(t, relaytest.Options{})
	alice, bob, carol := h.Dial(t), h.Dial(t), h.Dial(t)
	alice.SignUp("alice")
	bob.SignUp("bob")
	carol.SignUp("carol")

	alice.Msg("bob", "hello bob")
	bob.Expect(wire.Relay{Target: "bob", Sender: "alice", Text: "hello bob"})
	bob.Msg("alice", "hi alice, été 日本 \\ tab\t")
	alice.Expect(wire.Relay{Target: "alice", Sender: "bob", Text: "hi alice, été 日本 \\ tab\t"})

	// Group chat reaches exactly the other members.
	alice.Send(wire.Group{Token: alice.Token})
	bob.Send(wire.Group{Token: bob.Token})
	checkFor(t, "two group members", 5*time.Second, func() bool { return h.Stats().GroupMembers == 2 })
	alice.Send(wire.GroupMsg{Sender: "alice", Text: "to the group", Token: alice.Token})
	bob.Expect(wire.RelayGroup{Sender: "alice", Text: "to the group"})
	// Carol is not in the group and alice does not get her own message: the
	// next thing each sees is a direct message sent afterwards.
	bob.Msg("carol", "after the group message")
	carol.Expect(wire.Relay{Target: "carol", Sender: "bob", Text: "after the group message"})
	bob.Msg("alice", "after the group message")
	alice.Expect(wire.Relay{Target: "alice", Sender: "bob", Text: "after the group message"})

	// Toggling again leaves the group.
	bob.Send(wire.Group{Token: bob.Token})
	checkFor(t, "one group member", 5*time.Second, func() bool { return h.Stats().GroupMembers == 1 })

	carol.Send(wire.Online{Token: carol.Token})
	carol.Expect(wire.OnlineList{Users: []string{"alice", "bob", "carol"}})

	alice.Msg("dave", "are you there")
	alice.Expect(wire.NotOnline{Reason: wire.ReasonNotOnline})

	carol.Send(wire.Quit{Token: carol.Token})
	carol.Expect(wire.End{Reason: wire.ReasonEndAccepted})
	carol.ExpectClosed()
	checkFor(t, "carol offline", 5*time.Second, func() bool { return !slices.Contains(h.Online(), "carol") })
	bob.Msg("carol", "gone?")
	bob.Expect(wire.NotOnline{Reason: wire.ReasonNotOnline})
}

func TestOriginalClientBytesAndRecords(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	alice, bob := h.Dial(t), h.Dial(t)
	alice.Raw("PUT alice password-alice \r\n")
	alice.AcceptAs("alice")
	bob.SignUp("bob")

	// The original client leaves its input's newline on the text.
	alice.Raw("MSG bob alice hello bob\n " + alice.Token + " \r\n")
	alice.Raw("MSG bob alice \x1b[31mred\ttab\n " + alice.Token + " \r\n")
	alice.Raw("CMD <online> " + alice.Token + " \r\n")
	alice.Raw("MSG bob alice bye\n " + alice.Token + " \r\n")
	// Each line arrives as exactly one TLS record: tls.Conn.Read returns
	// the data of one record at most.
	want := []string{
		"RELAY bob alice hello bob\\n \r\n",
		"RELAY bob alice \\x1b[31mred\\ttab\\n \r\n",
		"RELAY bob alice bye\\n \r\n",
	}
	buf := make([]byte, 64<<10)
	for _, w := range want {
		bob.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := bob.Conn.Read(buf)
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
	alice.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := alice.Conn.Read(buf)
	if err != nil || string(buf[:n]) != "CMD <alice bob> \r\n" {
		t.Fatalf("online list record %q, %v", buf[:n], err)
	}
}

func TestAccountsSurviveRestart(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	c := h.Dial(t)
	c.SignUp("Alice")
	h.Restart()
	for _, name := range []string{"Alice", "alice", "ALICE"} {
		c = h.Dial(t)
		c.Send(wire.Auth{User: name, Pass: "password-Alice"})
		c.AcceptAs("Alice") // the name as registered
		c.Send(wire.Quit{Token: c.Token})
		c.Expect(wire.End{Reason: wire.ReasonEndAccepted})
		checkFor(t, "Alice offline", 5*time.Second, func() bool { return len(h.Online()) == 0 })
	}
	c = h.Dial(t)
	c.Send(wire.Auth{User: "Alice", Pass: "wrong-password"})
	c.Expect(wire.End{Reason: wire.ReasonBadLogin})
	c.ExpectClosed()
}

func TestLoginPhase(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) { c.LoginTimeout = 300 * time.Millisecond; c.MaxLoginTries = 3 }})
	owner := h.Dial(t)
	owner.SignUp("taken")

	c := h.Dial(t)
	c.Send(wire.SignUp{User: "taken", Pass: "password-x"})
	c.Expect(wire.Try{Reason: wire.ReasonTaken})
	c.Send(wire.SignUp{User: "TAKEN", Pass: "password-x"})
	c.Expect(wire.Try{Reason: wire.ReasonTaken})
	c.Send(wire.SignUp{User: "fresh", Pass: "password-fresh"})
	c.AcceptAs("fresh") // a third try still works

	c = h.Dial(t)
	for _, q := range []wire.Query{
		wire.SignUp{User: "admin", Pass: "password-x"},
		wire.SignUp{User: "way_too_long_name", Pass: "password-x"},
		wire.SignUp{User: "ok", Pass: "short"},
	} {
		c.Send(q)
		if got, err := c.Next(); err != nil {
			t.Fatal(err)
		} else if _, ok := got.(wire.Try); !ok {
			t.Fatalf("%#v: got %#v, want TRY", q, got)
		}
	}
	c.Expect(wire.End{Fatal: true, Reason: "too many log-in attempts"})
	c.ExpectClosed()

	// Anything but AUTH or PUT before log-in.
	c = h.Dial(t)
	c.Raw("MSG bob alice hi x \r\n")
	c.Expect(wire.End{Fatal: true, Reason: wire.ReasonProtocol})
	c.ExpectClosed()

	c = h.Dial(t)
	c.Raw("HELLO\r\n")
	c.Expect(wire.End{Fatal: true, Reason: wire.ReasonProtocol})
	c.ExpectClosed()

	// Someone who says nothing is closed when the log-in deadline passes,
	// and is sent nothing before that but the reason (no CHECK during
	// log-in).
	c = h.Dial(t)
	c.Expect(wire.End{Fatal: true, Reason: "log-in timed out"})
	c.ExpectClosed()

	// A second session of the same user is welcome; a message to oneself
	// reaches both.
	c = h.Dial(t)
	c.LogIn("taken")
	owner.Msg("taken", "still here")
	owner.Expect(wire.Relay{Target: "taken", Sender: "taken", Text: "still here"})
	c.Expect(wire.Relay{Target: "taken", Sender: "taken", Text: "still here"})
}

func TestBadQueriesCloseOnlyThatConnection(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	bob := h.Dial(t)
	bob.SignUp("bob")
	first := h.Dial(t)
	first.SignUp("alice")
	first.Send(wire.Quit{Token: first.Token})
	first.Expect(wire.End{Reason: wire.ReasonEndAccepted})
	checkFor(t, "alice offline", 5*time.Second, func() bool { return !slices.Contains(h.Online(), "alice") })
	for _, c := range []struct {
		name   string
		send   func(c *relaytest.Client)
		reason string
	}{
		{"wrong token", func(c *relaytest.Client) {
			c.Send(wire.Msg{Target: "bob", Sender: c.User, Text: "hi", Token: strings.Repeat("0", 64)})
		}, "invalid session token"},
		{"impersonation", func(c *relaytest.Client) {
			c.Raw("MSG bob mallory hi " + c.Token + " \r\n")
		}, "sender is not the logged-in user"},
		{"group impersonation", func(c *relaytest.Client) {
			c.Send(wire.GroupMsg{Sender: "bob", Text: "hi", Token: c.Token})
		}, "sender is not the logged-in user"},
		{"garbage", func(c *relaytest.Client) { c.Raw("\x00\x01\x02 \r\n") }, wire.ReasonProtocol},
		{"unknown command", func(c *relaytest.Client) { c.Raw("CMD <shutdown> " + c.Token + " \r\n") }, wire.ReasonProtocol},
		{"second log-in", func(c *relaytest.Client) { c.Send(wire.Auth{User: "bob", Pass: "password-bob"}) }, wire.ReasonProtocol},
		{"over-long line", func(c *relaytest.Client) { c.Raw(strings.Repeat("A", wire.MaxLineBytes+10) + "\r\n") }, "line too long"},
		{"over-long text", func(c *relaytest.Client) {
			c.Raw("MSG bob alice " + strings.Repeat("x", wire.MaxTextRunes+1) + " " + c.Token + " \r\n")
		}, wire.ReasonProtocol},
	} {
		t.Run(c.name, func(t *testing.T) {
			alice := h.Dial(t)
			alice.LogIn("alice")
			c.send(alice)
			alice.Expect(wire.End{Fatal: true, Reason: c.reason})
			alice.ExpectClosed()
			checkFor(t, "alice offline", 5*time.Second, func() bool { return !slices.Contains(h.Online(), "alice") })
			// bob saw nothing and still works.
			bob.Msg("bob", "still fine after "+c.name)
			bob.Expect(wire.Relay{Target: "bob", Sender: "bob", Text: "still fine after " + c.name})
			// alice can come back.
			again := h.Dial(t)
			again.LogIn("alice")
			again.Send(wire.Quit{Token: again.Token})
			again.Expect(wire.End{Reason: wire.ReasonEndAccepted})
			checkFor(t, "alice offline", 5*time.Second, func() bool { return !slices.Contains(h.Online(), "alice") })
		})
	}
}

func TestQuitWithoutReadingTheAnswer(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	alice := h.Dial(t)
	alice.SignUp("alice")
	// The original client sends END and dies at once.
	alice.Send(wire.Quit{Token: alice.Token})
	alice.Conn.NetConn().Close()
	checkFor(t, "alice offline", 5*time.Second, func() bool { return len(h.Online()) == 0 })
	again := h.Dial(t)
	again.LogIn("alice")
}

// TestSlowConsumerIsDropped: bob never reads. alice floods him; the server
// pauses alice while bob's queue is high and drops bob once it overflows.
// alice is never dropped and carol's chat goes on throughout.
func TestSlowConsumerIsDropped(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) {
		c.MaxQueueBytes = 2 * wire.MaxLineBytes
		c.StallWait = 2 * time.Millisecond
	}})
	bob := h.Dial(t)
	bob.SignUp("bob")
	alice, carol := h.Dial(t), h.Dial(t)
	alice.SignUp("alice")
	carol.SignUp("carol")

	text := strings.Repeat("flood ", 600)
	var sent int
	start := time.Now()
	for sent = 0; sent < 20000 && slices.Contains(h.Online(), "bob"); sent++ {
		alice.Msg("bob", text)
		if sent%200 == 0 {
			carol.Msg("alice", fmt.Sprint("ping ", sent))
			// Once bob is gone alice's messages to him answer CNT.
			want := wire.Relay{Target: "alice", Sender: "carol", Text: fmt.Sprint("ping ", sent)}
			for {
				q, err := alice.Next()
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
	checkFor(t, "bob dropped", 10*time.Second, func() bool { return !slices.Contains(h.Online(), "bob") })
	t.Logf("bob was dropped after %d messages of %d bytes (%v)", sent, len(text), time.Since(start))
	alice.Msg("carol", "still here")
	carol.Expect(wire.Relay{Target: "carol", Sender: "alice", Text: "still here"})
	if !slices.Contains(h.Online(), "alice") {
		t.Fatal("alice, the flooder, was dropped; only her reads may slow her")
	}
	// bob's reads now find the messages that fit, then the reason, then EOF.
	var last wire.Query
	lines := 0
	for {
		q, err := bob.Next()
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
	h := relaytest.Start(t, relaytest.Options{
		Config: func(c *relay.Config) {
			c.CheckInterval = 2 * time.Millisecond
			c.WriteTimeout = 300 * time.Millisecond
		},
		Wrap: func(l net.Listener) net.Listener { return smallBuffers{l} },
	})
	// bob's process hangs: connected, never reading again.
	bob := h.DialWith(t, nil, func(c *net.TCPConn) { c.SetReadBuffer(2048) })
	bob.SignUp("bob")
	alice := h.Dial(t)
	alice.SignUp("alice")
	checkFor(t, "the checker to drop bob", 20*time.Second, func() bool { return !slices.Contains(h.Online(), "bob") })
	// alice reads her CHECKs and stays.
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		alice.Conn.SetReadDeadline(deadline)
		if _, err := alice.R.ReadLine(); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("alice lost her connection: %v", err)
		} else if err != nil {
			break
		}
	}
	if !slices.Contains(h.Online(), "alice") {
		t.Fatal("alice was dropped though she reads")
	}
}

func TestGracefulShutdown(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	var clients []*relaytest.Client
	for _, name := range []string{"alice", "bob", "carol"} {
		c := h.Dial(t)
		c.SignUp(name)
		clients = append(clients, c)
	}
	pending := h.Dial(t) // still in the log-in phase
	clients[0].Msg("bob", "last words")
	clients[1].Expect(wire.Relay{Target: "bob", Sender: "alice", Text: "last words"})
	h.Stop()
	for _, c := range clients {
		c.Expect(wire.End{Reason: "server shutting down"})
		c.ExpectClosed()
	}
	pending.Expect(wire.End{Reason: "server shutting down"})
	pending.ExpectClosed()
	if _, err := net.DialTimeout("tcp", h.Addr, time.Second); err == nil {
		t.Fatal("the server still accepts connections after Shutdown")
	}
}

func TestManyClientsConcurrently(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	const n = 20
	clients := make([]*relaytest.Client, n)
	for i := range clients {
		clients[i] = h.Dial(t)
		clients[i].SignUp(fmt.Sprintf("user%d", i))
	}
	const per = 50
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			to := fmt.Sprintf("user%d", (i+1)%n)
			for k := range per {
				b, _ := wire.Format(wire.Msg{Target: to, Sender: c.User, Text: fmt.Sprint(k), Token: c.Token})
				c.Conn.Write(b)
			}
		}()
	}
	for i, c := range clients {
		from := fmt.Sprintf("user%d", (i+n-1)%n)
		for k := range per {
			c.Expect(wire.Relay{Target: c.User, Sender: from, Text: fmt.Sprint(k)})
		}
	}
	wg.Wait()
}
