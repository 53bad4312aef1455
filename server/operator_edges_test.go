package main

import (
	"path/filepath"
	"strings"
	"testing"

	"sslmessager/internal/wire"
)

// TestHandRemovedAccountTakesItsDataAlong: the operator removes bob
// from users.csv by hand and sends SIGHUP, as the README describes. bob's
// stored offline messages and queued files must go with the account (as
// with userdel and DELACCT): otherwise whoever signs up as bob next reads
// what alice wrote to the old bob.
func TestHandRemovedAccountTakesItsDataAlong(t *testing.T) {
	st := newState(t)
	offDir := filepath.Join(st.dir, "offline")
	srv := st.start(t, "--offline", offDir, "--log-level", "info")
	alice := dial(t, st, srv.addr)
	alice.login(wire.SignUp{User: "alice", Pass: "alice-password"})
	bob := dial(t, st, srv.addr)
	bob.login(wire.SignUp{User: "bob", Pass: "bob-password"})
	bob.send(wire.Quit{Token: bob.token})
	if q := bob.next(); q != (wire.End{Reason: wire.ReasonEndAccepted}) {
		t.Fatalf("quit answered with %#v", q)
	}
	alice.send(wire.Msg{Target: "bob", Sender: "alice", Text: "the private thing", Token: alice.token})
	if q := alice.next(); q != (wire.NotOnline{Reason: wire.ReasonQueued}) {
		t.Fatalf("MSG answered with %#v", q)
	}
	alice.upload("bob", "private.txt", []byte("private file"))

	st.editUsers(t, []string{"bob"}, nil)
	srv.hup(t, 1)

	mallory := dial(t, st, srv.addr)
	mallory.login(wire.SignUp{User: "bob", Pass: "mallory-password"})
	mallory.send(wire.Online{Token: mallory.token})
	if q := mallory.next(); !isOnline(q) {
		t.Errorf("the new bob got %#v, a message to the removed account", q)
		for !isOnline(mallory.next()) {
		}
	}
	if files := mallory.download(); len(files) != 0 {
		t.Errorf("the new bob got %d files queued for the removed account (%s)", len(files), files[0].hdr.Name)
	}
}

func isOnline(q wire.Query) bool { _, ok := q.(wire.OnlineList); return ok }

// TestSignUpClosedByAdminSurvivesReload: `server admin signup
// closed`, then a SIGHUP that changes nothing about --signup (say a
// certificate renewal's `systemctl reload`). The README says signup
// changes live in memory and a restart lifts them; a reload must not
// silently reopen sign-up.
func TestSignUpClosedByAdminSurvivesReload(t *testing.T) {
	st := newState(t)
	srv := st.start(t, "--log-level", "info")
	st.mustAdmin(t, "signup", "closed")
	c := dial(t, st, srv.addr)
	c.send(wire.SignUp{User: "spammer1", Pass: "spam-password"})
	if q := c.next(); q != (wire.Try{Reason: "sign-up is closed on this server"}) {
		t.Fatalf("PUT with sign-up closed answered with %#v", q)
	}
	srv.hup(t, 1)
	c = dial(t, st, srv.addr)
	c.send(wire.SignUp{User: "spammer2", Pass: "spam-password"})
	if q := c.next(); q != (wire.Try{Reason: "sign-up is closed on this server"}) {
		out := strings.Join(st.mustAdmin(t, "status"), "\n")
		t.Fatalf("after a SIGHUP, PUT answered with %#v: the reload reopened sign-up the admin closed\n%s", q, out)
	}
}
