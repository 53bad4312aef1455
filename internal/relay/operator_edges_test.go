package relay_test

import (
	"path/filepath"
	"testing"
	"time"

	"sslmessager/internal/bans"
	"sslmessager/internal/relay"
	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

// TestDeletedAccountLeavesNoMuteBehind: an admin mutes bob; bob
// deletes his own account (DELACCT) and the name is free. Whoever signs up
// as bob next is a new person and must not inherit the old account's mute
// (userdel lifts it; DELACCT must too).
func TestDeletedAccountLeavesNoMuteBehind(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	alice := h.DialExt(t)
	alice.SignUp("alice")
	bob := h.DialExt(t)
	bob.SignUp("bob")
	h.Mute("bob", time.Time{})
	bob.Msg("alice", "hello")
	bob.Expect(wire.NotOnline{Reason: "you are muted"})

	bob.Send(wire.DeleteAccount{Pass: "password-bob", Token: bob.Token})
	bob.Expect(wire.End{Reason: wire.ReasonAccountDeleted})
	bob.ExpectClosed()

	nb := h.DialExt(t)
	nb.SignUp("bob") // a new person with the free name
	nb.Msg("alice", "hi, I am new here")
	nb.Send(wire.Online{Token: nb.Token})
	if q := nb.MustNext(); !isOnlineList(q) {
		t.Fatalf("the new bob's first message was answered with %#v: the old account's mute stayed on the name", q)
	}
	alice.Expect(wire.Relay{Target: "alice", Sender: "bob", Text: "hi, I am new here"})
	if m := h.Mutes(); len(m) != 0 {
		t.Errorf("mutes after the account was deleted: %v", m)
	}
}

// TestSignUpOfABannedNameCreatesNoAccount: the user name bob is
// banned (say for 7d, after userdel bob). A PUT bob is refused with
// END * <banned: ...>, but must not create the account: otherwise whoever
// sent it owns the name, with their password, when the ban ends.
func TestSignUpOfABannedNameCreatesNoAccount(t *testing.T) {
	bl, err := bans.Open(filepath.Join(t.TempDir(), "bans.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bl.Add("bob", time.Now().Add(7*24*time.Hour), "impersonation"); err != nil {
		t.Fatal(err)
	}
	h := relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) { c.Bans = bl }})
	c := h.DialExt(t)
	c.Send(wire.SignUp{User: "bob", Pass: "password-bob"})
	c.Expect(wire.End{Fatal: true, Reason: "banned: impersonation"})
	c.ExpectClosed()
	if _, ok := h.Accounts.Lookup("bob"); ok {
		t.Errorf("a refused sign-up of the banned name bob created the account")
	}
}

func isOnlineList(q wire.Query) bool { _, ok := q.(wire.OnlineList); return ok }
