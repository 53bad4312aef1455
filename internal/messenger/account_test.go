package messenger

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

// rawSession logs user in with a hand-driven client (no ALPN, as an
// original client), with the password join uses.
func rawSession(t *testing.T, s *relayServer, user, pass string) *relaytest.Client {
	t.Helper()
	c := s.Dial(t)
	c.Send(wire.Auth{User: user, Pass: pass})
	c.AcceptAs(user)
	return c
}

func TestPasswdAgainstARealServer(t *testing.T) {
	s := startRelay(t)
	alice := s.join(t, "alice", true)
	other := rawSession(t, s, "alice", "pw-of-alice")
	r := startRun(t, alice, Options{Target: "bob", ConfigDir: t.TempDir()})

	// Refused before anything is sent: the new password twice differs, or
	// breaks the rules.
	for _, c := range []struct {
		lines []string
		want  string
	}{
		{[]string{"pw-of-alice", "new-password-1", "new-password-2"}, "! password not changed: the new passwords do not match\n"},
		{[]string{"pw-of-alice", "short"}, "! password not changed: " + wire.ErrPassword.Error() + "\n"},
		{[]string{"wrong-old-pw", "new-password-1", "new-password-1"}, "! password not changed: wrong password\n"},
	} {
		r.typeLine(t, ":passwd:")
		for _, l := range c.lines {
			r.typeLine(t, l)
		}
		waitOutput(t, r.out, c.want)
	}
	r.typeLine(t, ":passwd:")
	r.typeLine(t, "pw-of-alice")
	r.typeLine(t, "new-password-1")
	r.typeLine(t, "new-password-1")
	waitOutput(t, r.out, "password changed; your other sessions were logged out\n")
	other.Expect(wire.End{Fatal: true, Reason: "password changed in another session"})
	other.ExpectClosed()
	for _, pw := range []string{"pw-of-alice", "new-password-1", "new-password-2", "wrong-old-pw"} {
		if strings.Contains(r.out.String(), pw) {
			t.Fatalf("the output shows the password %q:\n%s", pw, r.out.String())
		}
	}

	old, err := Dial(t.Context(), s.Addr, s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	var re *RefusedError
	if err := old.Login("alice", "pw-of-alice", false); !errors.As(err, &re) || re.Reason != wire.ReasonBadLogin {
		t.Fatalf("log-in with the old password: %v, want refused", err)
	}
	rawSession(t, s, "alice", "new-password-1")

	// The session that changed it goes on.
	r.typeLine(t, ":ping:")
	waitOutput(t, r.out, "pong from server in ")
	r.typeLine(t, ":quit:")
	if err := r.wait(t); err != nil {
		t.Fatal(err)
	}
}

func TestDeleteAccountFromTheClient(t *testing.T) {
	s := startRelay(t)
	alice := s.join(t, "alice", true)
	other := rawSession(t, s, "alice", "pw-of-alice")
	bob := s.Dial(t)
	bob.SignUp("bob")
	bob.Upload("alice", "for-alice.txt", []byte("queued"))
	r := startRun(t, alice, Options{Target: "bob", ConfigDir: t.TempDir()})

	r.typeLine(t, ":delete_account:")
	r.typeLine(t, "")
	waitOutput(t, r.out, "account kept\n")
	r.typeLine(t, ":delete_account:")
	r.typeLine(t, "not-the-password")
	waitOutput(t, r.out, "! account not deleted: wrong password\n")
	if _, ok := s.Accounts.Lookup("alice"); !ok {
		t.Fatal("the account went on a wrong password")
	}

	r.typeLine(t, ":delete_account:")
	r.typeLine(t, "pw-of-alice")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run after the deletion: %v, want nil\n%s", err, r.out.String())
	}
	waitOutput(t, r.out, "account alice deleted; goodbye\n")
	other.Expect(wire.End{Fatal: true, Reason: wire.ReasonAccountDeleted})
	other.ExpectClosed()
	if _, ok := s.Accounts.Lookup("alice"); ok {
		t.Fatal("the account is still there")
	}
	if n := s.Spool.Queued("alice"); n != 0 {
		t.Fatalf("%d files still queued for the deleted account", n)
	}

	// The name is free: a new sign-up gets it, with nothing of the old.
	again := s.join(t, "alice", true)
	if err := Download(t.Context(), again, t.TempDir(), TransferOptions{Out: &relaytest.SyncBuffer{}}); err != nil {
		t.Fatal(err)
	}
	if n := s.Spool.Queued("alice"); n != 0 {
		t.Fatalf("%d files queued for the new alice", n)
	}
}

func TestPingAgainstARealServer(t *testing.T) {
	s := startRelay(t)
	alice := s.join(t, "alice", true)
	r := startRun(t, alice, Options{Target: "bob", ConfigDir: t.TempDir()})
	r.typeLine(t, ":ping:")
	r.typeLine(t, ":ping:")
	relaytest.CheckFor(t, waitLimit, func() error {
		if n := len(regexp.MustCompile(`(?m)^pong from server in [0-9]+\.[0-9] ms$`).FindAllString(r.out.String(), -1)); n != 2 {
			return errors.New("want two pong lines, output:\n" + r.out.String())
		}
		return nil
	})
}

func TestExtensionCommandsNeedSSLM2(t *testing.T) {
	s := startFake(t) // negotiates no ALPN, as the original server
	c, fc := loggedIn(t, s, "alice")
	if c.Extended() {
		t.Fatal("the fake server negotiated sslm/2")
	}
	r := startRun(t, c, Options{Target: "bob", ConfigDir: t.TempDir()})
	fc.expectCarbons()
	for _, cmd := range []string{"ping", "passwd", "delete_account"} {
		r.typeLine(t, ":"+cmd+":")
		waitOutput(t, r.out, "! :"+cmd+": needs a server that speaks sslm/2\n")
	}
	// Nothing was sent (and no password asked): the next query is this.
	r.typeLine(t, "pw-of-alice")
	if q := fc.next(); q != (wire.Msg{Target: "bob", Sender: "alice", Text: "pw-of-alice", Token: testToken}) {
		t.Fatalf("server got %#v", q)
	}
}

func TestMuteHidesOnlyThatUserAcrossSessions(t *testing.T) {
	s := startRelay(t)
	cfg := t.TempDir()
	alice := s.join(t, "alice", true)
	bob, carol := s.Dial(t), s.Dial(t)
	bob.SignUp("bob")
	carol.SignUp("carol")
	alice2 := rawSession(t, s, "alice", "pw-of-alice")
	r := startRun(t, alice, Options{Target: "carol", ConfigDir: cfg})

	r.typeLine(t, ":mute: Bob")
	waitOutput(t, r.out, "muted Bob: their messages are not shown")
	r.typeLine(t, ":mute: alice")
	waitOutput(t, r.out, "! you cannot mute yourself\n")
	r.typeLine(t, ":toggle:")
	waitOutput(t, r.out, "group chat on\n")
	relaytest.CheckFor(t, waitLimit, func() error {
		if n := s.Stats().GroupMembers; n != 1 {
			return fmt.Errorf("%d group members, want alice", n)
		}
		return nil
	})
	// bob's lines reach alice's queue before carol's: the online list
	// answers bob only after his earlier queries were relayed.
	bob.Msg("alice", "direct from bob")
	bob.Send(wire.GroupMsg{Sender: "bob", Text: "group from bob", Token: bob.Token})
	bob.Send(wire.Online{Token: bob.Token})
	if _, ok := bob.MustNext().(wire.OnlineList); !ok {
		t.Fatal("want the online list")
	}
	carol.Send(wire.GroupMsg{Sender: "carol", Text: "group from carol", Token: carol.Token})
	carol.Msg("alice", "direct from carol")
	alice2.Msg("bob", "to bob from my other session")
	bob.Expect(wire.Relay{Target: "bob", Sender: "alice", Text: "to bob from my other session"})
	waitOutput(t, r.out, "[group] carol: group from carol\n")
	waitOutput(t, r.out, "carol: direct from carol\n")
	waitOutput(t, r.out, "you → bob (other session): to bob from my other session\n") // carbons are never muted
	if strings.Contains(r.out.String(), "from bob") {
		t.Fatalf("a muted user's message was shown:\n%s", r.out.String())
	}
	export := filepath.Join(t.TempDir(), "chat.txt")
	r.typeLine(t, ":export: "+export)
	waitOutput(t, r.out, "exported ")
	if b, err := os.ReadFile(export); err != nil || strings.Contains(string(b), "from bob") || !strings.Contains(string(b), "direct from carol") {
		t.Fatalf("export (err %v) holds the muted or lacks the shown:\n%s", err, b)
	}
	r.typeLine(t, ":quit:")
	if err := r.wait(t); err != nil {
		t.Fatal(err)
	}

	path := MuteFile(cfg, s.Addr, "alice")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mute file mode %v, want 0600", fi.Mode().Perm())
	}

	// A new session with the same configuration directory: bob is still
	// muted, until unmuted.
	r = startRun(t, s.join(t, "alice", false), Options{Target: "carol", ConfigDir: cfg})
	r.typeLine(t, ":mute:")
	waitOutput(t, r.out, "muted: Bob\n")
	bob.Msg("alice", "still muted")
	bob.Send(wire.Online{Token: bob.Token})
	if _, ok := bob.MustNext().(wire.OnlineList); !ok {
		t.Fatal("want the online list")
	}
	carol.Msg("alice", "marker")
	waitOutput(t, r.out, "carol: marker\n")
	r.typeLine(t, ":unmute: BOB")
	waitOutput(t, r.out, "unmuted BOB\n")
	bob.Msg("alice", "heard again")
	waitOutput(t, r.out, "bob: heard again\n")
	if strings.Contains(r.out.String(), "still muted") {
		t.Fatalf("a muted user's message was shown in the new session:\n%s", r.out.String())
	}
	r.typeLine(t, ":mute:")
	waitOutput(t, r.out, "nobody is muted\n")
	if b, err := os.ReadFile(path); err != nil || len(b) != 0 {
		t.Fatalf("mute file after unmuting: %q, %v", b, err)
	}
}

func TestMuteFileName(t *testing.T) {
	got := MuteFile("/cfg", "chat.example.org:18443", "Alice")
	if want := filepath.Join("/cfg", "muted-chat.example.org_18443-alice"); got != want {
		t.Errorf("MuteFile = %q, want %q", got, want)
	}
	if got := MuteFile("/cfg", "[::1]:18443", "bob"); got != filepath.Join("/cfg", "muted-___1__18443-bob") {
		t.Errorf("MuteFile for IPv6 = %q", got)
	}
}

// The key store follows a password change when the log-in password locked
// it (the default), so the next log-in opens it; a store with a passphrase
// of its own is left alone.
func TestPasswdRekeysKeyStore(t *testing.T) {
	s := startRelay(t)
	for _, c := range []struct {
		user, storePass string
		follows         bool
	}{{"alice", "pw-of-alice", true}, {"bob", "a passphrase of its own", false}} {
		conn := s.join(t, c.user, true)
		dir := KeyStoreDir(t.TempDir(), "test-server", c.user)
		k, err := OpenKeys(dir, c.user, c.storePass, true)
		if err != nil {
			t.Fatal(err)
		}
		r := startRun(t, conn, Options{Target: "carol", ConfigDir: t.TempDir(), Keys: k})
		r.typeLine(t, ":passwd:")
		for _, l := range []string{"pw-of-" + c.user, "new-password-1", "new-password-1"} {
			r.typeLine(t, l)
		}
		waitOutput(t, r.out, "password changed; your other sessions were logged out\n")
		r.typeLine(t, ":status:")
		waitOutput(t, r.out, "status: ")
		said := strings.Contains(r.out.String(), "your end-to-end key store now opens with the new password\n")
		if said != c.follows {
			t.Errorf("%s: rekey notice %v, want %v:\n%s", c.user, said, c.follows, r.out.String())
		}
		wantPass, notPass := "new-password-1", "pw-of-"+c.user
		if !c.follows {
			wantPass, notPass = c.storePass, "new-password-1"
		}
		if _, err := OpenKeys(dir, c.user, wantPass, false); err != nil {
			t.Errorf("%s: the store does not open with %q: %v", c.user, wantPass, err)
		}
		if _, err := OpenKeys(dir, c.user, notPass, false); !errors.Is(err, ErrKeyPassphrase) {
			t.Errorf("%s: the store opens with %q: %v", c.user, notPass, err)
		}
	}
}
