package relay_test

import (
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"sslmessager/internal/relay"
	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

func TestTwoSessionsBothReceiveAndCarbons(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	alice, bob := h.Dial(t), h.Dial(t)
	alice.SignUp("alice")
	bob.SignUp("bob")
	alice2 := h.Dial(t)
	alice2.LogIn("alice")
	alice2.Send(wire.Carbons{Token: alice2.Token})
	bob2 := h.Dial(t)
	bob2.Send(wire.Auth{User: "BOB", Pass: "password-bob"}) // any case of the name is the same user
	bob2.AcceptAs("bob")

	// Every session of the recipient gets the message; the sender's
	// other session that asked for carbons gets a copy.
	alice.Msg("bob", "to both of bob")
	bob.Expect(wire.Relay{Target: "bob", Sender: "alice", Text: "to both of bob"})
	bob2.Expect(wire.Relay{Target: "bob", Sender: "alice", Text: "to both of bob"})
	alice2.Expect(wire.Carbon{Target: "bob", Sender: "alice", Text: "to both of bob"})

	// A session that did not ask for carbons (an original client) gets
	// none: the next thing alice sees is bob's answer, on both sessions.
	alice2.Msg("bob", "from the second")
	bob.Expect(wire.Relay{Target: "bob", Sender: "alice", Text: "from the second"})
	bob2.Expect(wire.Relay{Target: "bob", Sender: "alice", Text: "from the second"})
	bob.Msg("alice", "answer")
	alice.Expect(wire.Relay{Target: "alice", Sender: "bob", Text: "answer"})
	alice2.Expect(wire.Relay{Target: "alice", Sender: "bob", Text: "answer"})

	// The online list names each user once.
	bob.Send(wire.Online{Token: bob.Token})
	bob.Expect(wire.OnlineList{Users: []string{"alice", "bob"}})

	// Group mode is per session: only bob2 joins.
	bob2.Send(wire.Group{Token: bob2.Token})
	checkFor(t, "one group member", 5*time.Second, func() bool { return h.Stats().GroupMembers == 1 })
	alice.Send(wire.GroupMsg{Sender: "alice", Text: "group line", Token: alice.Token})
	bob2.Expect(wire.RelayGroup{Sender: "alice", Text: "group line"})
	alice.Msg("bob", "after")
	bob.Expect(wire.Relay{Target: "bob", Sender: "alice", Text: "after"}) // no group line first
	bob2.Expect(wire.Relay{Target: "bob", Sender: "alice", Text: "after"})

	// One session leaving leaves the user online through the other.
	bob.Send(wire.Quit{Token: bob.Token})
	bob.Expect(wire.End{Reason: wire.ReasonEndAccepted})
	bob.ExpectClosed()
	alice.Msg("bob", "still there")
	bob2.Expect(wire.Relay{Target: "bob", Sender: "alice", Text: "still there"})
}

func TestOldestSessionEndedAtTheCap(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) { c.MaxSessionsPerUser = 3 }})
	var ss []*relaytest.Client
	for i := range 3 {
		c := h.Dial(t)
		if i == 0 {
			c.SignUp("carol")
		} else {
			c.LogIn("carol")
		}
		ss = append(ss, c)
	}
	fourth := h.Dial(t)
	fourth.LogIn("carol")
	ss[0].Expect(wire.End{Fatal: true, Reason: "logged in elsewhere"})
	ss[0].ExpectClosed()
	checkFor(t, "three sessions", 5*time.Second, func() bool { return h.Stats().Sessions == 3 })
	for _, c := range append(ss[1:], fourth) {
		c.Msg("carol", "ping")
	}
	for _, c := range append(ss[1:], fourth) {
		for range 3 {
			c.Expect(wire.Relay{Target: "carol", Sender: "carol", Text: "ping"})
		}
	}
}

// A client that froze (never reads again, never answers) cannot lock its
// owner out: the owner logs in again at once, from the cap or below it.
func TestFrozenClientDoesNotLockOutItsOwner(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) { c.MaxSessionsPerUser = 1 }})
	frozen := h.DialWith(t, nil, func(c *net.TCPConn) { c.SetReadBuffer(4096) })
	frozen.SignUp("dave")
	sender := h.Dial(t)
	sender.SignUp("erin")
	for i := range 50 { // fill its socket buffers; it reads nothing
		sender.Msg("dave", fmt.Sprintf("message %d %0500d", i, 0))
	}
	// The server has handled all 50 once it answers a later query of
	// erin's: none of them can reach the owner's new session.
	sender.Send(wire.Online{Token: sender.Token})
	sender.Expect(wire.OnlineList{Users: []string{"dave", "erin"}})
	start := time.Now()
	owner := h.Dial(t)
	owner.LogIn("dave")
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("log-in took %v", d)
	}
	sender.Msg("dave", "to the new session")
	owner.Expect(wire.Relay{Target: "dave", Sender: "erin", Text: "to the new session"})
	checkFor(t, "one session of dave", 5*time.Second, func() bool {
		return h.Stats().Sessions == 2 && slices.Contains(h.Online(), "dave")
	})
}

// Our client offers ALPN sslm/2 and gets it; a client that offers no ALPN
// (the original) negotiates none and goes on as before.
func TestALPNNegotiation(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	ext := h.DialExt(t)
	ext.SignUp("alice")
	plain := h.Dial(t)
	if p := plain.Conn.ConnectionState().NegotiatedProtocol; p != "" {
		t.Fatalf("a client without ALPN negotiated %q", p)
	}
	plain.SignUp("bob")
	ext.Msg("bob", "hi")
	plain.Expect(wire.Relay{Target: "bob", Sender: "alice", Text: "hi"})
}

// Right passwords sent at once from one address all get in: they take
// turns for the address's password checks instead of being refused.
func TestSimultaneousRightPasswordsTakeTurns(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) { c.MaxSessionsPerUser = 20 }})
	h.Dial(t).SignUp("zoe")
	const n = 12
	conns := make([]*relaytest.Client, n)
	for i := range conns {
		conns[i] = h.Dial(t)
	}
	before := h.PasswordChecks()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Raw("AUTH zoe password-zoe \r\n")
		}()
	}
	wg.Wait()
	for _, c := range conns {
		c.AcceptAs("zoe")
	}
	if got := h.PasswordChecks() - before; got != n {
		t.Fatalf("%d password checks for %d log-ins", got, n)
	}
}

func TestEndUserEndsEverySession(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	a1, a2, b := h.Dial(t), h.Dial(t), h.Dial(t)
	a1.SignUp("alice")
	a2.LogIn("alice")
	b.SignUp("bob")
	a2.Send(wire.Group{Token: a2.Token})
	relaytest.CheckFor(t, 5*time.Second, func() error {
		if h.Stats().GroupMembers != 1 {
			return fmt.Errorf("no group member yet")
		}
		return nil
	})
	infos := h.Sessions()
	if len(infos) != 3 {
		t.Fatalf("%d sessions listed", len(infos))
	}
	for _, in := range infos {
		if in.User == "alice" && in.Group != (in.Remote == a2.Conn.LocalAddr().String()) {
			t.Fatalf("group mode wrong in %+v", in)
		}
	}
	if n := h.EndUser("ALICE", "kicked: spamming"); n != 2 {
		t.Fatalf("EndUser ended %d sessions", n)
	}
	for _, c := range []*relaytest.Client{a1, a2} {
		c.Expect(wire.End{Fatal: true, Reason: "kicked: spamming"})
		c.ExpectClosed()
	}
	b.Msg("alice", "gone?")
	b.Expect(wire.NotOnline{Reason: wire.ReasonNotOnline})
	if st := h.Stats(); st.Sessions != 1 || st.GroupMembers != 0 {
		t.Fatalf("stats after EndUser: %+v", st)
	}
}
