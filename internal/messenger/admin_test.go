package messenger

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"sslmessager/internal/accounts"
	"sslmessager/internal/admin"
	"sslmessager/internal/relay/relaytest"
)

// :admin: against a real server: an admin sees the admin section of
// :help: and the answers of its commands; a normal user sees neither the
// section nor a result, only the refusal.
func TestAdminCommandFromChat(t *testing.T) {
	srv := relaytest.Start(t, relaytest.Options{})
	adm := admin.New(admin.Deps{Relay: srv.Server, Accounts: srv.Accounts, Spool: srv.Spool, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv.SetAdminRunner(adm)
	for _, u := range []string{"root", "bob"} {
		if _, err := srv.Accounts.Create(u, "password-"+u); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Accounts.SetRole("root", accounts.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	login := func(user string) *running {
		c, err := Dial(t.Context(), srv.Addr, srv.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Login(user, "password-"+user, false); err != nil {
			t.Fatal(err)
		}
		return startRun(t, c, Options{Target: "bob"})
	}

	root := login("root")
	waitOutput(t, root.out, "your account has the admin role: :admin: help lists the admin commands\n")
	root.typeLine(t, ":help:")
	waitOutput(t, root.out, "admin commands (your account has the admin role):\n  :admin: COMMAND [ARGS]")
	root.typeLine(t, ":admin: online")
	waitOutput(t, root.out, "admin: root 127.0.0.1:")
	waitOutput(t, root.out, "admin: ok 1 users, 1 sessions\n")
	root.typeLine(t, ":admin: kick nobody")
	waitOutput(t, root.out, "! admin: nobody is not online\n")

	bob := login("bob")
	bob.typeLine(t, ":admin: kick root")
	waitOutput(t, bob.out, "! admin: admin commands need the admin role\n")
	bob.typeLine(t, ":help:")
	waitOutput(t, bob.out, "commands:")
	bob.typeLine(t, ":quit:")
	if err := bob.wait(t); err != nil {
		t.Fatal(err)
	}
	if out := bob.out.String(); strings.Contains(out, "admin commands (") || strings.Contains(out, ":admin:") {
		t.Errorf("a normal user's :help: shows the admin section:\n%s", out)
	}
	// The role taken away: the section goes.
	root.typeLine(t, ":admin: role root user")
	waitOutput(t, root.out, "your account no longer has the admin role\n")
	waitOutput(t, root.out, "admin: ok root is now user\n")
	root.typeLine(t, ":quit:")
	if err := root.wait(t); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(root.out.String(), "admin commands (your account"); n != 1 {
		t.Errorf("admin section shown %d times", n)
	}
}

// :admin: on a server without our extensions says so and sends nothing.
func TestAdminCommandWithoutExtensions(t *testing.T) {
	s := startFake(t)
	c, fc := loggedIn(t, s, "alice")
	r := startRun(t, c, Options{Target: "bob"})
	fc.expectCarbons()
	r.typeLine(t, ":admin: online")
	waitOutput(t, r.out, "! this server has no admin commands for clients\n")
	r.typeLine(t, "hi")
	if q := fc.next(); q.Verb() != "MSG" {
		t.Fatalf("server got %#v, want the message and nothing before it", q)
	}
}
