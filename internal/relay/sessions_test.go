package relay

import (
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"sslmessager/internal/wire"
)

func TestTwoSessionsBothReceiveAndCarbons(t *testing.T) {
	h := startServer(t, nil)
	alice, bob := h.dial(t), h.dial(t)
	alice.signUp("alice")
	bob.signUp("bob")
	alice2 := h.dial(t)
	alice2.logIn("alice")
	alice2.send(wire.Carbons{Token: alice2.token})
	bob2 := h.dial(t)
	bob2.send(wire.Auth{User: "BOB", Pass: "password-bob"}) // any case of the name is the same user
	bob2.acceptAs("bob")

	// Every session of the recipient gets the message; the sender's
	// other session that asked for carbons gets a copy.
	alice.msg("bob", "to both of bob")
	bob.expect(wire.Relay{Target: "bob", Sender: "alice", Text: "to both of bob"})
	bob2.expect(wire.Relay{Target: "bob", Sender: "alice", Text: "to both of bob"})
	alice2.expect(wire.Carbon{Target: "bob", Sender: "alice", Text: "to both of bob"})

	// A session that did not ask for carbons (an original client) gets
	// none: the next thing alice sees is bob's answer, on both sessions.
	alice2.msg("bob", "from the second")
	bob.expect(wire.Relay{Target: "bob", Sender: "alice", Text: "from the second"})
	bob2.expect(wire.Relay{Target: "bob", Sender: "alice", Text: "from the second"})
	bob.msg("alice", "answer")
	alice.expect(wire.Relay{Target: "alice", Sender: "bob", Text: "answer"})
	alice2.expect(wire.Relay{Target: "alice", Sender: "bob", Text: "answer"})

	// The online list names each user once.
	bob.send(wire.Online{Token: bob.token})
	bob.expect(wire.OnlineList{Users: []string{"alice", "bob"}})

	// Group mode is per session: only bob2 joins.
	bob2.send(wire.Group{Token: bob2.token})
	checkFor(t, "one group member", 5*time.Second, func() bool { return len(h.srv.hub.groupMembers()) == 1 })
	alice.send(wire.GroupMsg{Sender: "alice", Text: "group line", Token: alice.token})
	bob2.expect(wire.RelayGroup{Sender: "alice", Text: "group line"})
	alice.msg("bob", "after")
	bob.expect(wire.Relay{Target: "bob", Sender: "alice", Text: "after"}) // no group line first
	bob2.expect(wire.Relay{Target: "bob", Sender: "alice", Text: "after"})

	// One session leaving leaves the user online through the other.
	bob.send(wire.Quit{Token: bob.token})
	bob.expect(wire.End{Reason: wire.ReasonEndAccepted})
	bob.expectClosed()
	alice.msg("bob", "still there")
	bob2.expect(wire.Relay{Target: "bob", Sender: "alice", Text: "still there"})
}

func TestOldestSessionEndedAtTheCap(t *testing.T) {
	h := startServer(t, func(c *Config) { c.MaxSessionsPerUser = 3 })
	var ss []*tclient
	for i := range 3 {
		c := h.dial(t)
		if i == 0 {
			c.signUp("carol")
		} else {
			c.logIn("carol")
		}
		ss = append(ss, c)
	}
	fourth := h.dial(t)
	fourth.logIn("carol")
	ss[0].expect(wire.End{Fatal: true, Reason: "logged in elsewhere"})
	ss[0].expectClosed()
	checkFor(t, "three sessions", 5*time.Second, func() bool { return h.srv.hub.sessionCount() == 3 })
	for _, c := range append(ss[1:], fourth) {
		c.msg("carol", "ping")
	}
	for _, c := range append(ss[1:], fourth) {
		for range 3 {
			c.expect(wire.Relay{Target: "carol", Sender: "carol", Text: "ping"})
		}
	}
}

// A client that froze (never reads again, never answers) cannot lock its
// owner out: the owner logs in again at once, from the cap or below it.
func TestFrozenClientDoesNotLockOutItsOwner(t *testing.T) {
	h := startServer(t, func(c *Config) { c.MaxSessionsPerUser = 1 })
	frozen := h.dialWith(t, func(c *net.TCPConn) { c.SetReadBuffer(4096) })
	frozen.signUp("dave")
	sender := h.dial(t)
	sender.signUp("erin")
	for i := range 50 { // fill its socket buffers; it reads nothing
		sender.msg("dave", fmt.Sprintf("message %d %0500d", i, 0))
	}
	start := time.Now()
	owner := h.dial(t)
	owner.logIn("dave")
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("log-in took %v", d)
	}
	sender.msg("dave", "to the new session")
	owner.expect(wire.Relay{Target: "dave", Sender: "erin", Text: "to the new session"})
	checkFor(t, "one session of dave", 5*time.Second, func() bool {
		return len(h.srv.hub.lookup("dave")) == 1 && slices.Contains(h.srv.Online(), "dave")
	})
}
