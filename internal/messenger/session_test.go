package messenger

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sslmessager/internal/pki"
	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

func TestSessionAgainstScriptedServer(t *testing.T) {
	s := startFake(t)
	c, fc := loggedIn(t, s, "alice")
	r := startRun(t, c, Options{Target: "bob", Color: true})
	fc.expectCarbons()

	fc.send(wire.Check{})
	fc.send(wire.Relay{Target: "alice", Sender: "bob", Text: "hi \x1b[31malice\u202e"})
	waitOutput(t, r.out, `[15:04:05] bob: hi \x1b[31malice\u202e`+"\n")

	r.typeLine(t, "hello bob\r")
	if q := fc.next(); q != (wire.Msg{Target: "bob", Sender: "alice", Text: "hello bob", Token: testToken}) {
		t.Fatalf("got %#v", q)
	}
	fc.send(wire.NotOnline{Reason: wire.ReasonNotOnline})
	waitOutput(t, r.out, "! bob is not online\n")

	r.typeLine(t, ":online:")
	if q := fc.next(); q != (wire.Online{Token: testToken}) {
		t.Fatalf("got %#v", q)
	}
	fc.send(wire.OnlineList{Users: []string{"alice", "bob"}})
	waitOutput(t, r.out, "online: alice bob\n")

	r.typeLine(t, ":toggle:")
	if q := fc.next(); q != (wire.Group{Token: testToken}) {
		t.Fatalf("got %#v", q)
	}
	waitOutput(t, r.out, "group chat on\n")
	r.typeLine(t, "to the group")
	if q := fc.next(); q != (wire.GroupMsg{Sender: "alice", Text: "to the group", Token: testToken}) {
		t.Fatalf("got %#v", q)
	}
	fc.send(wire.RelayGroup{Sender: "carol", Text: "yo\nall"})
	waitOutput(t, r.out, "\x1b[32m[15:04:05] [group] carol: yo\x1b[0m\n\x1b[32m"+strings.Repeat(" ", len("[15:04:05] [group] carol: "))+"all\x1b[0m\n")

	r.typeLine(t, ":new_target: carol")
	waitOutput(t, r.out, "target: carol (group chat is on")
	r.typeLine(t, ":toggle:")
	if q := fc.next(); q != (wire.Group{Token: testToken}) {
		t.Fatalf("got %#v", q)
	}
	waitOutput(t, r.out, "group chat off\n")

	r.typeLine(t, strings.Repeat("é", wire.MaxTextRunes+1))
	waitOutput(t, r.out, "! message not sent: 4001 characters, the limit is 4000\n")
	r.typeLine(t, "")
	r.typeLine(t, "::quit: is how you leave")
	if q := fc.next(); q != (wire.Msg{Target: "carol", Sender: "alice", Text: ":quit: is how you leave", Token: testToken}) {
		t.Fatalf("got %#v (the over-long line must not be sent)", q)
	}

	r.typeLine(t, ":status:")
	waitOutput(t, r.out, "status: user alice, target carol, group chat off, server "+s.addr+"\n")
	r.typeLine(t, ":help:")
	waitOutput(t, r.out, ":download:")
	for _, want := range []string{":quit:", ":online:", ":new_target: [NAME]", ":toggle:", ":status:", ":help:", ":upload: PATH [NAME]", "quote a PATH with spaces", ":download: saves into "} {
		if !strings.Contains(r.out.String(), want) {
			t.Errorf(":help: lacks %q", want)
		}
	}
	if strings.Contains(r.out.String(), "coming soon") {
		t.Error(":help: still says coming soon")
	}
	r.typeLine(t, ":upload:")
	waitOutput(t, r.out, "! usage: :upload: PATH [NAME] (quote a PATH with spaces)\n")
	r.typeLine(t, ":bogus:")
	waitOutput(t, r.out, "unknown command :bogus:, try :help:\n")
	r.typeLine(t, ":quit: now")
	waitOutput(t, r.out, "! :quit: takes no argument\n")

	r.typeLine(t, ":quit:")
	if q := fc.next(); q != (wire.Quit{Token: testToken}) {
		t.Fatalf("got %#v", q)
	}
	fc.send(wire.End{Reason: wire.ReasonEndAccepted})
	fc.tc.Close()
	// Not delivered: to bob (not online), the over-long line, :bogus:
	// and ":quit: now".
	var ue *UndeliveredError
	if err := r.wait(t); !errors.As(err, &ue) || ue.Lines != 4 {
		t.Fatalf("Run = %v, want 4 input lines not delivered", err)
	}
	if strings.Contains(r.out.String(), "CHECK") {
		t.Error("CHECK was printed")
	}
}

func TestSessionCarbons(t *testing.T) {
	s := startFake(t)
	c, fc := loggedIn(t, s, "Alice")
	r := startRun(t, c, Options{Target: "bob"})
	fc.expectCarbons() // before anything else, and only once
	fc.send(wire.Carbon{Target: "bob", Sender: "alice", Text: "from my phone\x1b[2J"})
	waitOutput(t, r.out, "[15:04:05] you → bob (other session): from my phone\\x1b[2J\n")
	fc.send(wire.Carbon{Target: "carol", Sender: "mallory", Text: "x"})
	waitOutput(t, r.out, "[15:04:05] mallory → carol (other session): x\n")
	r.typeLine(t, "hi")
	if q := fc.next(); q != (wire.Msg{Target: "bob", Sender: "Alice", Text: "hi", Token: testToken}) {
		t.Fatalf("got %#v, want the message (no second opt-in)", q)
	}
	r.typeLine(t, ":quit:")
	if q := fc.next(); q != (wire.Quit{Token: testToken}) {
		t.Fatalf("got %#v", q)
	}
	fc.send(wire.End{Reason: wire.ReasonEndAccepted})
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

// TestTargetRule: a target that breaks the user-name rule is refused
// locally with the rule's text, and nothing is sent for it.
func TestTargetRule(t *testing.T) {
	s := startFake(t)
	c, fc := loggedIn(t, s, "alice")
	file := writeTestFile(t, t.TempDir(), "f.txt", []byte("x"))
	for _, bad := range []string{"bob smith", "ünïcode", "help", "Quit", strings.Repeat("x", wire.MaxUserNameBytes+1), "a\u202eb", ""} {
		rule := wire.CheckUserName(bad)
		if rule == nil {
			t.Fatalf("%q follows the rule", bad)
		}
		if err := Send(t.Context(), c, bad, "hi"); err == nil || !strings.HasSuffix(err.Error(), rule.Error()) {
			t.Errorf("Send to %q = %v, want the rule %q", bad, err, rule)
		}
		if err := Upload(t.Context(), c, bad, []string{file}, TransferOptions{}); err == nil || !strings.HasSuffix(err.Error(), rule.Error()) {
			t.Errorf("Upload to %q = %v, want the rule %q", bad, err, rule)
		}
	}
	r := startRun(t, c, Options{Target: "bob smith"})
	fc.expectCarbons() // nothing was sent before
	waitOutput(t, r.out, "! target: "+wire.ErrUserName.Error()+"\n")
	r.typeLine(t, "bob")
	r.typeLine(t, ":new_target: help")
	waitOutput(t, r.out, "! target unchanged: "+wire.ErrReservedName.Error()+"\n")
	r.typeLine(t, ":upload: "+file+" toolongname_1234")
	waitOutput(t, r.out, "! upload: "+wire.ErrUserName.Error()+"\n")
	r.typeLine(t, "hi")
	if q := fc.next(); q != (wire.Msg{Target: "bob", Sender: "alice", Text: "hi", Token: testToken}) {
		t.Fatalf("got %#v, want only the message to bob", q)
	}
}

func TestSessionEndOfInputQuits(t *testing.T) {
	s := startFake(t)
	c, fc := loggedIn(t, s, "alice")
	r := startRun(t, c, Options{Target: "bob", NoTimestamps: true})
	fc.expectCarbons()
	r.typeLine(t, "last words")
	fc.next()
	r.in.Close()
	if q := fc.next(); q != (wire.Quit{Token: testToken}) {
		t.Fatalf("got %#v", q)
	}
	fc.send(wire.End{Reason: wire.ReasonEndAccepted})
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	fc.expectEOF()
}

func TestSessionAsksForTarget(t *testing.T) {
	s := startFake(t)
	c, fc := loggedIn(t, s, "alice")
	r := startRun(t, c, Options{})
	fc.expectCarbons()
	waitOutput(t, r.out, "target: ")
	r.typeLine(t, "bad name")
	waitOutput(t, r.out, "! target: user name")
	// A command at the target prompt runs, or is refused; it never
	// becomes the target.
	r.typeLine(t, ":online:")
	if q := fc.next(); q != (wire.Online{Token: testToken}) {
		t.Fatalf("got %#v, want :online: run at the target prompt", q)
	}
	r.typeLine(t, ":nosuch:")
	waitOutput(t, r.out, "unknown command :nosuch:")
	r.typeLine(t, ":new_target: carol")
	waitOutput(t, r.out, "target: carol\n")
	r.typeLine(t, "hi carol")
	if q := fc.next(); q != (wire.Msg{Target: "carol", Sender: "alice", Text: "hi carol", Token: testToken}) {
		t.Fatalf("got %#v", q)
	}
	r.typeLine(t, ":new_target:")
	waitOutput(t, r.out, "target: carol\ntarget: ")
	r.typeLine(t, " bob ")
	r.typeLine(t, "hi")
	if q := fc.next(); q != (wire.Msg{Target: "bob", Sender: "alice", Text: "hi", Token: testToken}) {
		t.Fatalf("got %#v", q)
	}
	r.typeLine(t, ":new_target:")
	waitOutput(t, r.out, "target: \ntarget: ")
	r.typeLine(t, "dave")
	waitOutput(t, r.out, "target: dave\n")
	r.typeLine(t, "hey")
	if q := fc.next(); q != (wire.Msg{Target: "dave", Sender: "alice", Text: "hey", Token: testToken}) {
		t.Fatalf("got %#v", q)
	}
	if !strings.HasPrefix(r.out.String(), "target: \n") {
		t.Errorf("prompt not followed by a fresh line: %q", r.out.String())
	}
}

func TestSessionServerDropsUs(t *testing.T) {
	s := startFake(t)
	c, fc := loggedIn(t, s, "alice")
	r := startRun(t, c, Options{Target: "bob"})
	fc.expectCarbons()
	fc.send(wire.End{Fatal: true, Reason: "invalid session token"})
	fc.tc.Close()
	err := r.wait(t) // the input loop is still blocked on the pipe
	var ce *ClosedError
	if !errors.As(err, &ce) || !ce.Fatal || ce.Reason != "invalid session token" {
		t.Fatalf("Run = %v, want a fatal *ClosedError", err)
	}
	if !strings.Contains(r.out.String(), "! server closed the session: invalid session token\n") {
		t.Errorf("output: %q", r.out.String())
	}
}

func TestSessionConnectionLost(t *testing.T) {
	s := startFake(t)
	c, fc := loggedIn(t, s, "alice")
	r := startRun(t, c, Options{Target: "bob"})
	fc.expectCarbons()
	fc.tc.Close()
	if err := r.wait(t); !errors.Is(err, ErrConnectionClosed) {
		t.Fatalf("Run = %v, want ErrConnectionClosed", err)
	}
}

func TestSessionQuitWithoutAnswer(t *testing.T) {
	s := startFake(t)
	c, fc := loggedIn(t, s, "alice")
	r := startRun(t, c, Options{Target: "bob", QuitTimeout: 100 * time.Millisecond})
	fc.expectCarbons()
	r.typeLine(t, ":quit:")
	fc.next()
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if !strings.Contains(r.out.String(), "did not confirm") {
		t.Errorf("output: %q", r.out.String())
	}
}

func TestSessionContextCancelSendsQuit(t *testing.T) {
	s := startFake(t)
	c, fc := loggedIn(t, s, "alice")
	ctx, cancel := context.WithCancel(t.Context())
	out := &relaytest.SyncBuffer{}
	done := make(chan error, 1)
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	go func() { done <- c.Run(ctx, pr, out, Options{Target: "bob", Downloads: t.TempDir()}) }()
	fc.expectCarbons()
	cancel()
	if q := fc.next(); q != (wire.Quit{Token: testToken}) {
		t.Fatalf("got %#v", q)
	}
	fc.send(wire.End{Reason: wire.ReasonEndAccepted})
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Run did not return")
	}
}

func TestSessionTerminalMode(t *testing.T) {
	s := startFake(t)
	c, fc := loggedIn(t, s, "alice")
	r := startRun(t, c, Options{Target: "bob", Terminal: true, Width: 80, Height: 24})
	fc.expectCarbons()
	waitOutput(t, r.out, "bob> ")
	r.in.Write([]byte("hi there\r"))
	if q := fc.next(); q != (wire.Msg{Target: "bob", Sender: "alice", Text: "hi there", Token: testToken}) {
		t.Fatalf("got %#v", q)
	}
	r.in.Write([]byte("half a li")) // being typed when a message arrives
	fc.send(wire.Relay{Target: "alice", Sender: "bob", Text: "hello"})
	waitOutput(t, r.out, "[15:04:05] bob: hello\r\nbob> half a li")
	r.in.Write([]byte("ne\r:toggle:\r"))
	if q := fc.next(); q.(wire.Msg).Text != "half a line" {
		t.Fatalf("got %#v", q)
	}
	fc.next()
	waitOutput(t, r.out, "[group]> ")
	r.in.Write([]byte{4}) // Ctrl-D on an empty line: end of input
	if q := fc.next(); q != (wire.Quit{Token: testToken}) {
		t.Fatalf("got %#v", q)
	}
	fc.send(wire.End{Reason: wire.ReasonEndAccepted})
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

func TestLoginRefusals(t *testing.T) {
	s := startFake(t)
	errc := make(chan error, 1)
	var c *Conn
	go func() {
		var err error
		c, err = Dial(t.Context(), s.addr, s.caFile)
		if err == nil {
			err = c.Login("bob", "pw-one-two", true)
		}
		errc <- err
	}()
	fc := s.accept(t)
	if q := fc.next(); q != (wire.SignUp{User: "bob", Pass: "pw-one-two"}) {
		t.Fatalf("got %#v", q)
	}
	fc.send(wire.Try{Reason: wire.ReasonTaken})
	var re *RefusedError
	if err := <-errc; !errors.As(err, &re) || !re.Retry || re.Reason != wire.ReasonTaken {
		t.Fatalf("Login = %v, want TRY refusal", err)
	}
	defer c.Close()

	go func() { errc <- c.Login("Bob", "wrong-password", false) }()
	if q := fc.next(); q != (wire.Auth{User: "Bob", Pass: "wrong-password"}) {
		t.Fatalf("got %#v", q)
	}
	fc.send(wire.End{Reason: wire.ReasonBadLogin})
	if err := <-errc; !errors.As(err, &re) || re.Retry || re.Reason != wire.ReasonBadLogin {
		t.Fatalf("Login = %v, want END refusal", err)
	}

	if err := c.Login("bob smith", "x", false); err == nil || !strings.Contains(err.Error(), "one word") {
		t.Fatalf("Login with a space = %v", err)
	}
}

func TestLoginUsesRegisteredName(t *testing.T) {
	s := startFake(t)
	errc := make(chan error, 1)
	var c *Conn
	go func() {
		var err error
		if c, err = Dial(t.Context(), s.addr, s.caFile); err == nil {
			err = c.Login("ALICE", "secret-password", false)
		}
		errc <- err
	}()
	fc := s.accept(t)
	fc.next()
	fc.send(wire.Accept{User: "Alice", Token: testToken})
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.User() != "Alice" {
		t.Fatalf("User() = %q", c.User())
	}
	r := startRun(t, c, Options{Target: "bob"})
	fc.expectCarbons()
	r.typeLine(t, "x")
	if q := fc.next().(wire.Msg); q.Sender != "Alice" {
		t.Fatalf("sender %q, want the registered name", q.Sender)
	}
}

func TestSendOneShot(t *testing.T) {
	for _, online := range []bool{true, false} {
		s := startFake(t)
		c, fc := loggedIn(t, s, "alice")
		errc := make(chan error, 1)
		go func() { errc <- Send(t.Context(), c, "bob", "one shot") }()
		// The message comes first: a one-shot command sends no CMD <carbons>.
		if q := fc.next(); q != (wire.Msg{Target: "bob", Sender: "alice", Text: "one shot", Token: testToken}) {
			t.Fatalf("got %#v", q)
		}
		if q := fc.next(); q != (wire.Quit{Token: testToken}) {
			t.Fatalf("got %#v", q)
		}
		if !online {
			fc.send(wire.NotOnline{Reason: wire.ReasonNotOnline})
		}
		fc.send(wire.Check{})
		fc.send(wire.End{Reason: wire.ReasonEndAccepted})
		err := <-errc
		var noe *NotOnlineError
		switch {
		case online && err != nil:
			t.Errorf("Send = %v, want nil", err)
		case !online && (!errors.As(err, &noe) || err.Error() != "bob is not online"):
			t.Errorf("Send = %v, want bob is not online", err)
		}
	}
	s := startFake(t)
	c, _ := loggedIn(t, s, "alice")
	if err := Send(t.Context(), c, "bob", strings.Repeat("x", wire.MaxTextRunes+1)); err == nil {
		t.Error("Send accepted an over-long text")
	}
}

// TestOneShotsAskNoCarbons: upload and download start with their own
// query; only the interactive session opts in to carbons.
func TestOneShotsAskNoCarbons(t *testing.T) {
	s := startFake(t)
	c, fc := loggedIn(t, s, "alice")
	file := writeTestFile(t, t.TempDir(), "f.txt", []byte("x"))
	errc := make(chan error, 1)
	go func() { errc <- Upload(t.Context(), c, "bob", []string{file}, TransferOptions{}) }()
	if q, ok := fc.next().(wire.Upload); !ok || q.Target != "bob" {
		t.Fatalf("first query of upload %#v, want BEGINF", q)
	}
	fc.send(wire.Stop{Reason: "file too large"})
	var re *UploadRefusedError
	if err := <-errc; !errors.As(err, &re) {
		t.Fatalf("Upload = %v, want the refusal", err)
	}

	c, fc = loggedIn(t, s, "alice")
	go func() { errc <- Download(t.Context(), c, t.TempDir(), TransferOptions{}) }()
	if q := fc.next(); q != (wire.Get{Ack: true, Token: testToken}) {
		t.Fatalf("first query of download %#v, want CMD <get ack>", q)
	}
	fc.send(wire.Begin{Count: 0})
	fc.send(wire.Notice{Text: wire.NoticeSendComplete})
	if q := fc.next(); q != (wire.Quit{Token: testToken}) {
		t.Fatalf("got %#v, want the quit", q)
	}
	fc.send(wire.End{Reason: wire.ReasonEndAccepted})
	if err := <-errc; err != nil {
		t.Fatalf("Download = %v", err)
	}
}

func TestDialWrongCA(t *testing.T) {
	s := startFake(t)
	other := relaytest.Certs(t)
	_, err := Dial(t.Context(), s.addr, filepath.Join(other, pki.CAFile))
	var ve *VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("Dial = %v, want *VerifyError", err)
	}
	for _, want := range []string{"SHA256:", "--ca"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, err := Dial(t.Context(), s.addr, filepath.Join(t.TempDir(), "missing.pem")); err == nil {
		t.Error("Dial with a missing CA file succeeded")
	}
}
