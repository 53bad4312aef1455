package messenger

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sslmessager/internal/pki"
	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/spool"
	"sslmessager/internal/wire"
)

// relayServer is a real server on 127.0.0.1:0 with accounts in a
// temporary directory.
type relayServer struct{ *relaytest.Server }

func startRelay(t *testing.T) *relayServer {
	t.Helper()
	return startRelayWith(t, &spool.Options{})
}

// startRelayWith starts a real server whose file spool has the options
// so (nil: no spool, file transfer disabled).
func startRelayWith(t *testing.T, so *spool.Options) *relayServer {
	t.Helper()
	opts := relaytest.Options{NoSpool: so == nil}
	if so != nil {
		opts.Spool = *so
	}
	return &relayServer{relaytest.Start(t, opts)}
}

// join dials and logs in (or signs up) as user.
func (s *relayServer) join(t *testing.T, user string, signUp bool) *Conn {
	t.Helper()
	c, err := Dial(t.Context(), s.Addr, s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, "pw-of-"+strings.ToLower(user), signUp); err != nil {
		t.Fatalf("log in %s: %v", user, err)
	}
	return c
}

// waitOnline waits until the server's online list satisfies ok.
func (s *relayServer) waitOnline(t *testing.T, what string, ok func([]string) bool) {
	t.Helper()
	relaytest.CheckFor(t, waitLimit, func() error {
		if names := s.Online(); !ok(names) {
			return fmt.Errorf("online is %v, want %s", names, what)
		}
		return nil
	})
}

func TestIntegrationChat(t *testing.T) {
	s := startRelay(t)
	alice := startRun(t, s.join(t, "alice", true), Options{Target: "bob", NoTimestamps: true})
	bob := startRun(t, s.join(t, "Bob", true), Options{Target: "alice", Color: true})
	s.waitOnline(t, "alice and Bob", func(n []string) bool { return len(n) == 2 })

	alice.typeLine(t, "hello bob, ünïcode and a \\ backslash")
	waitOutput(t, bob.out, "[15:04:05] alice: hello bob, ünïcode and a \\ backslash\n")
	bob.typeLine(t, "hi alice")
	waitOutput(t, alice.out, "Bob: hi alice\n")
	alice.typeLine(t, "evil \x1b[2J\u202e text")
	waitOutput(t, bob.out, `alice: evil \x1b[2J\u202e text`)

	alice.typeLine(t, ":online:")
	waitOutput(t, alice.out, "online: Bob alice\n")

	// Group chat: both toggle; bob's online answer proves the server has
	// applied his toggle before alice writes to the group.
	alice.typeLine(t, ":toggle:")
	bob.typeLine(t, ":toggle:")
	waitOutput(t, alice.out, "group chat on\n")
	waitOutput(t, bob.out, "group chat on\n")
	bob.typeLine(t, ":online:")
	waitOutput(t, bob.out, "online: Bob alice\n")
	alice.typeLine(t, "hello group")
	waitOutput(t, bob.out, "\x1b[32m[15:04:05] [group] alice: hello group\x1b[0m\n")
	bob.typeLine(t, "group reply")
	waitOutput(t, alice.out, "[group] Bob: group reply\n")
	alice.typeLine(t, ":toggle:")
	waitOutput(t, alice.out, "group chat off\n")

	// An offline target.
	alice.typeLine(t, ":new_target: carol")
	alice.typeLine(t, "anyone there?")
	waitOutput(t, alice.out, "! carol is not online\n")
	alice.typeLine(t, ":status:")
	waitOutput(t, alice.out, "status: user alice, target carol, group chat off, server "+s.Addr+"\n")

	// :quit: ends the session; Run reports the line carol did not get.
	// The server shows alice offline.
	alice.typeLine(t, ":quit:")
	var ue *UndeliveredError
	if err := alice.wait(t); !errors.As(err, &ue) || ue.Lines != 1 {
		t.Fatalf("alice Run = %v, want 1 line not delivered", err)
	}
	s.waitOnline(t, "only Bob", func(n []string) bool { return slices.Equal(n, []string{"Bob"}) })

	// End of input quits too.
	bob.in.Close()
	if err := bob.wait(t); err != nil {
		t.Fatalf("bob Run = %v", err)
	}
	s.waitOnline(t, "nobody", func(n []string) bool { return len(n) == 0 })
}

func TestIntegrationLogInAgainAndRefusals(t *testing.T) {
	s := startRelay(t)
	s.join(t, "alice", true).Close()
	s.waitOnline(t, "nobody", func(n []string) bool { return len(n) == 0 })

	c, err := Dial(t.Context(), s.Addr, s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var re *RefusedError
	if err := c.Login("ALICE", "pw-of-alice", true); !errors.As(err, &re) || !re.Retry {
		t.Fatalf("sign-up of a taken name = %v, want TRY", err)
	}
	if err := c.Login("ALICE", "pw-of-alice", false); err != nil {
		t.Fatalf("log-in on the same connection: %v", err)
	}
	if c.User() != "alice" {
		t.Errorf("User() = %q, want the registered alice", c.User())
	}

	d, err := Dial(t.Context(), s.Addr, s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Login("nobody", "wrong-password", false); !errors.As(err, &re) || re.Retry {
		t.Fatalf("bad log-in = %v, want END refusal", err)
	}
}

func TestIntegrationSend(t *testing.T) {
	s := startRelay(t)
	bob := startRun(t, s.join(t, "bob", true), Options{Target: "alice", NoTimestamps: true})
	s.waitOnline(t, "bob", func(n []string) bool { return len(n) == 1 })

	if err := Send(t.Context(), s.join(t, "alice", true), "bob", "one shot"); err != nil {
		t.Fatalf("Send = %v", err)
	}
	waitOutput(t, bob.out, "alice: one shot\n")
	s.waitOnline(t, "bob alone again", func(n []string) bool { return slices.Equal(n, []string{"bob"}) })

	var noe *NotOnlineError
	if err := Send(t.Context(), s.join(t, "alice", false), "carol", "hello?"); !errors.As(err, &noe) {
		t.Fatalf("Send to an offline user = %v, want *NotOnlineError", err)
	}
}

func TestIntegrationServerShutdown(t *testing.T) {
	s := startRelay(t)
	r := startRun(t, s.join(t, "alice", true), Options{Target: "bob"})
	s.waitOnline(t, "alice", func(n []string) bool { return len(n) == 1 })
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	go s.Shutdown(ctx)
	err := r.wait(t)
	var ce *ClosedError
	if !errors.As(err, &ce) {
		t.Fatalf("Run = %v, want *ClosedError", err)
	}
	waitOutput(t, r.out, "! server closed the session: ")
}

func TestIntegrationWrongCA(t *testing.T) {
	s := startRelay(t)
	other := relaytest.Certs(t)
	_, err := Dial(t.Context(), s.Addr, filepath.Join(other, pki.CAFile))
	if err == nil || !strings.Contains(err.Error(), "SHA256:") {
		t.Fatalf("Dial with the wrong CA = %v, want an error naming the SHA256 fingerprint", err)
	}
}

// TestIntegrationPasswordLimits: a password of wire.MaxPasswordBytes (72)
// works end to end, sign-up and log-in; one byte more is refused before
// anything is sent, with the rule's text, and the connection stays usable.
func TestIntegrationPasswordLimits(t *testing.T) {
	s := startRelay(t)
	pw72 := strings.Repeat("p", 60) + "ééé" + "passwd" // 72 bytes, not ASCII only
	if len(pw72) != wire.MaxPasswordBytes {
		t.Fatalf("test password of %d bytes", len(pw72))
	}
	c, err := Dial(t.Context(), s.Addr, s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var re *RefusedError
	err = c.Login("longpw", pw72+"x", true)
	if !errors.As(err, &re) || !re.Retry || re.Reason != "invalid password: "+wire.ErrPassword.Error() {
		t.Fatalf("sign-up with 73 bytes = %v, want a local refusal with the rule", err)
	}
	err = c.Login("no way", pw72, true)
	if !errors.As(err, &re) || !re.Retry || re.Reason != "invalid username: "+wire.ErrUserName.Error() {
		t.Fatalf("sign-up as %q = %v, want a local refusal with the rule", "no way", err)
	}
	if err := c.Login("longpw", pw72, true); err != nil {
		t.Fatalf("sign-up with 72 bytes on the same connection: %v", err)
	}
	c.Close()
	s.waitOnline(t, "longpw gone", func(n []string) bool { return !slices.Contains(n, "longpw") })

	d, err := Dial(t.Context(), s.Addr, s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Login("LongPW", pw72, false); err != nil || d.User() != "longpw" {
		t.Fatalf("log-in with the 72-byte password: %v (user %q)", err, d.User())
	}
}

// Several sessions of one user against the real server: a script sends
// while the same user chats; the chat shows what the script sent (a
// carbon), both of bob's sessions get it, and a reply reaches both of
// alice's.
func TestIntegrationSeveralSessionsAndCarbons(t *testing.T) {
	s := startRelay(t)
	alice := startRun(t, s.join(t, "alice", true), Options{Target: "bob", NoTimestamps: true})
	bob1 := startRun(t, s.join(t, "bob", true), Options{Target: "alice", NoTimestamps: true})
	bob2 := startRun(t, s.join(t, "bob", false), Options{Target: "alice", NoTimestamps: true})
	relaytest.CheckFor(t, waitLimit, func() error {
		if st := s.Stats(); st.Sessions != 3 {
			return fmt.Errorf("%d sessions", st.Sessions)
		}
		return nil
	})
	// Each chat asked for carbons first thing; an answer to a later query
	// of each shows the server has taken that request.
	for _, r := range []*running{alice, bob1, bob2} {
		r.typeLine(t, ":online:")
		waitOutput(t, r.out, "online: alice bob\n")
	}
	if err := Send(t.Context(), s.join(t, "alice", false), "bob", "from a script"); err != nil {
		t.Fatalf("Send = %v", err)
	}
	waitOutput(t, bob1.out, "alice: from a script\n")
	waitOutput(t, bob2.out, "alice: from a script\n")
	waitOutput(t, alice.out, "you → bob (other session): from a script\n")

	bob1.typeLine(t, "got it")
	waitOutput(t, alice.out, "bob: got it\n")
	waitOutput(t, bob2.out, "you → alice (other session): got it\n")
	alice.typeLine(t, ":online:")
	waitOutput(t, alice.out, "online: alice bob\n")
}
