package admin_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"sslmessager/internal/accounts"
	"sslmessager/internal/admin"
	"sslmessager/internal/bans"
	"sslmessager/internal/relay"
	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

// env is a real server with bans, the admin commands and the admin socket.
type env struct {
	t    *testing.T
	srv  *relaytest.Server
	adm  *admin.Admin
	bans *bans.Store
	sock string
}

func start(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	bl, err := bans.Open(filepath.Join(dir, "bans.csv"))
	if err != nil {
		t.Fatal(err)
	}
	srv := relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) { c.Bans = bl }})
	adm := admin.New(admin.Deps{Relay: srv.Server, Accounts: srv.Accounts, Spool: srv.Spool, Bans: bl, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv.SetAdminRunner(adm)
	sock, err := adm.ListenSocket(filepath.Join(dir, "admin.sock"))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- sock.Serve() }()
	t.Cleanup(func() {
		sock.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &env{t: t, srv: srv, adm: adm, bans: bl, sock: sock.Path()}
}

// call runs a command through the real admin socket and returns the
// answer's data lines, its last line, and whether it succeeded.
func (e *env) call(secret string, args ...string) (data []string, last string, ok bool) {
	e.t.Helper()
	var out bytes.Buffer
	read := func() (string, error) { return secret, nil }
	ok, err := admin.Call(e.sock, args, read, &out)
	if err != nil {
		e.t.Fatalf("admin %s: %v", strings.Join(args, " "), err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	return lines[:len(lines)-1], lines[len(lines)-1], ok
}

// mustCall is call that fails the test unless the command succeeded.
func (e *env) mustCall(args ...string) (data []string, last string) {
	e.t.Helper()
	data, last, ok := e.call("", args...)
	if !ok || !strings.HasPrefix(last, "ok") {
		e.t.Fatalf("admin %s: %q %v", strings.Join(args, " "), last, ok)
	}
	return data, last
}

// mustFail is call that fails the test unless the command failed with
// an error line containing want.
func (e *env) mustFail(want string, args ...string) {
	e.t.Helper()
	_, last, ok := e.call("", args...)
	if ok || !strings.HasPrefix(last, "error: ") || !strings.Contains(last, want) {
		e.t.Fatalf("admin %s: %q %v, want an error with %q", strings.Join(args, " "), last, ok, want)
	}
}

func (e *env) user(name string) *relaytest.Client {
	e.t.Helper()
	c := e.srv.DialExt(e.t)
	c.SignUp(name)
	return c
}

// makeAdmin gives name the admin role; a session that logs in afterwards
// gets ROLE admin after ACCEPT.
func (e *env) adminClient(name string) *relaytest.Client {
	e.t.Helper()
	e.user(name).Conn.Close()
	e.mustCall("role", name, "admin")
	c := e.srv.DialExt(e.t)
	c.LogIn(name)
	c.Expect(wire.Role{Role: "admin"})
	return c
}

// expectEnd reads until END and checks its reason.
func expectEnd(t *testing.T, c *relaytest.Client, reason string) {
	t.Helper()
	for {
		q := c.MustNext()
		if end, ok := q.(wire.End); ok {
			if !end.Fatal || end.Reason != reason {
				t.Fatalf("%s got %#v, want END * <%s>", c.User, end, reason)
			}
			c.ExpectClosed()
			return
		}
	}
}

func TestSocketOnlineStatusHelp(t *testing.T) {
	e := start(t)
	a1 := e.user("alice")
	a2 := e.srv.Dial(t)
	a2.LogIn("alice")
	a2.Send(wire.Group{Token: a2.Token})
	e.user("bob")
	relaytest.CheckFor(t, 5*time.Second, func() error {
		if n := e.srv.Stats().GroupMembers; n != 1 {
			return fmt.Errorf("%d group members", n)
		}
		return nil
	})
	data, last := e.mustCall("online")
	if last != "ok 2 users, 3 sessions" || len(data) != 3 {
		t.Fatalf("online: %q %q", data, last)
	}
	re := regexp.MustCompile(`^(alice|bob) 127\.0\.0\.1:\d+ group=(on|off) client=(sslm/3|sslm/2|original) since=\d{4}-\d\d-\d\dT[\d:]+Z$`)
	groups := 0
	for _, l := range data {
		if !re.MatchString(l) {
			t.Errorf("online line %q", l)
		}
		if strings.Contains(l, "group=on client=original") {
			groups++
		}
	}
	if !strings.HasPrefix(data[0], "alice") || !strings.HasPrefix(data[2], "bob") || groups != 1 {
		t.Errorf("online lines not sorted by user, or group mode wrong: %q", data)
	}
	_ = a1

	a1.Upload("bob", "f.txt", []byte("12345"))
	data, last = e.mustCall("status")
	st := map[string]string{}
	for _, l := range data {
		k, v, _ := strings.Cut(l, " ")
		st[k] = v
	}
	for k, want := range map[string]string{"sessions": "3", "users_online": "2", "group_members": "1", "queued_files": "1", "queued_bytes": "5", "accounts": "2", "limit.signup": "open"} {
		if st[k] != want {
			t.Errorf("status %s = %q, want %q (all: %q)", k, st[k], want, data)
		}
	}
	for _, k := range []string{"uptime", "goroutines", "memory_heap_bytes", "bans", "mutes", "limit.max-sessions-per-user"} {
		if st[k] == "" {
			t.Errorf("status lacks %s: %q", k, data)
		}
	}
	data, _ = e.mustCall("help")
	if len(data) < 16 || !strings.HasPrefix(data[2], "kick USER [REASON]") {
		t.Errorf("help: %q", data)
	}
	e.mustFail("unknown command", "frobnicate")
	e.mustFail("takes no arguments", "online", "now")
}

func TestKickEndsEverySession(t *testing.T) {
	e := start(t)
	b1 := e.user("bob")
	b2 := e.srv.Dial(t) // an original client
	b2.LogIn("bob")
	carol := e.user("carol")
	e.mustCall("kick", "BOB", "spamming", "<the>", "group\x1b")
	for _, c := range []*relaytest.Client{b1, b2} {
		expectEnd(t, c, `kicked: spamming \x3cthe\x3e group\x1b`)
	}
	e.mustFail("bob is not online", "kick", "bob")
	e.mustFail("kick", "kick", "no/such")
	// Nobody else was touched, and bob may log in again.
	carol.Send(wire.Online{Token: carol.Token})
	carol.Expect(wire.OnlineList{Users: []string{"carol"}})
	b3 := e.srv.Dial(t)
	b3.LogIn("bob")
	e.mustCall("kick", "bob")
	expectEnd(t, b3, "kicked")
}

func TestMuteRefusesOnlyTheMuted(t *testing.T) {
	e := start(t)
	bob := e.user("bob")
	bob2 := e.srv.Dial(t)
	bob2.LogIn("bob")
	alice := e.user("alice")
	alice.Send(wire.Group{Token: alice.Token})
	carol := e.srv.DialExt(t)
	carol.SignUp("carol")
	carol.Send(wire.Group{Token: carol.Token})
	relaytest.CheckFor(t, 5*time.Second, func() error {
		if n := e.srv.Stats().GroupMembers; n != 2 {
			return fmt.Errorf("%d group members", n)
		}
		return nil
	})
	_, last := e.mustCall("mute", "bob", "10m")
	if !strings.HasPrefix(last, "ok muted bob until ") {
		t.Fatalf("mute: %q", last)
	}
	bob.Msg("alice", "hello")
	q, ok := bob.MustNext().(wire.NotOnline)
	if !ok || !regexp.MustCompile(`^you are muted until \d\d:\d\d UTC$`).MatchString(q.Reason) {
		t.Fatalf("muted MSG answered with %#v", q)
	}
	bob2.Send(wire.GroupMsg{Sender: "bob", Text: "hi all", Token: bob2.Token})
	if q, ok := bob2.MustNext().(wire.NotOnline); !ok || !strings.HasPrefix(q.Reason, "you are muted until") {
		t.Fatalf("muted MSGG answered with %#v", q)
	}
	// Others still talk; alice and carol saw nothing of bob's.
	carol.Msg("alice", "still here")
	alice.Expect(wire.Relay{Target: "alice", Sender: "carol", Text: "still here"})
	carol.Send(wire.GroupMsg{Sender: "carol", Text: "group too", Token: carol.Token})
	alice.Expect(wire.RelayGroup{Sender: "carol", Text: "group too"})
	alice.Msg("bob", "you can read")
	bob.Expect(wire.Relay{Target: "bob", Sender: "alice", Text: "you can read"})

	e.mustCall("unmute", "bob")
	e.mustFail("bob is not muted", "unmute", "bob")
	bob.Msg("alice", "back")
	alice.Expect(wire.Relay{Target: "alice", Sender: "bob", Text: "back"})

	e.mustCall("mute", "bob")
	bob.Msg("alice", "again")
	bob.Expect(wire.NotOnline{Reason: "you are muted"})
	e.mustFail("duration", "mute", "bob", "0s")
	e.mustFail("duration", "mute", "bob", "-5m")
	e.mustFail("no such user", "mute", "nobody")
}

func TestMsgAndGroupFromAdmin(t *testing.T) {
	e := start(t)
	bob := e.user("bob")
	old := e.srv.Dial(t)
	old.SignUp("carol")
	e.mustCall("msg", "BOB", "please  read the rules")
	bob.Expect(wire.Relay{Target: "bob", Sender: "admin", Text: "please  read the rules"})
	e.mustFail("dave is not online", "msg", "dave", "hi")
	e.mustFail("missing TEXT", "msg", "bob")
	_, last := e.mustCall("g", "restart", "at", "noon")
	if last != "ok sent to 2 sessions" {
		t.Fatalf("g: %q", last)
	}
	bob.Expect(wire.RelayGroup{Sender: "admin", Text: "restart at noon"})
	old.Expect(wire.RelayGroup{Sender: "admin", Text: "restart at noon"})
	// Nobody can be admin.
	c := e.srv.Dial(t)
	c.Send(wire.SignUp{User: "Admin", Pass: "password-x1"})
	if q, ok := c.MustNext().(wire.Try); !ok || !strings.Contains(q.Reason, "invalid username") {
		t.Fatalf("sign-up as Admin: %#v", q)
	}
}

func TestUseraddPasswdUserdel(t *testing.T) {
	e := start(t)
	data, last := e.mustCall("useradd", "dave")
	if last != "ok created dave" || len(data) != 1 || !strings.HasPrefix(data[0], "password ") {
		t.Fatalf("useradd: %q %q", data, last)
	}
	pw := strings.TrimPrefix(data[0], "password ")
	logIn := func(user, pass string) *relaytest.Client {
		c := e.srv.DialExt(t)
		c.Send(wire.Auth{User: user, Pass: pass})
		return c
	}
	d1 := logIn("dave", pw)
	d1.AcceptAs("dave")
	d2 := logIn("dave", pw)
	d2.AcceptAs("dave")
	e.mustFail("already exists", "useradd", "DAVE")
	e.mustFail("useradd", "useradd", "admin")

	// A password read from stdin.
	if _, last, ok := e.call("typed-secret-1", "useradd", "erin", "-"); !ok || last != "ok created erin" {
		t.Fatalf("useradd -: %q", last)
	}
	logIn("erin", "typed-secret-1").AcceptAs("erin")
	if _, last, ok := e.call("short", "useradd", "frank", "-"); ok || !strings.Contains(last, "passwords are") {
		t.Fatalf("useradd - with a bad password: %q", last)
	}

	// passwd: the old password fails, the new one works, sessions end.
	data, last = e.mustCall("passwd", "dave")
	if !strings.HasSuffix(last, "2 sessions ended") || len(data) != 1 {
		t.Fatalf("passwd: %q %q", data, last)
	}
	for _, c := range []*relaytest.Client{d1, d2} {
		expectEnd(t, c, "password changed by an admin")
	}
	logIn("dave", pw).Expect(wire.End{Reason: wire.ReasonBadLogin})
	newPW := strings.TrimPrefix(data[0], "password ")
	d3 := logIn("dave", newPW)
	d3.AcceptAs("dave")
	e.mustFail("no such user", "passwd", "nobody")

	// userdel: account, sessions and queued files go; the name is free.
	sender := e.user("gina")
	sender.Upload("dave", "a.txt", []byte("aaa"))
	sender.Upload("dave", "b.txt", []byte("bbb"))
	_, last = e.mustCall("userdel", "Dave")
	if last != "ok deleted dave: 1 sessions ended, 2 queued files removed" {
		t.Fatalf("userdel: %q", last)
	}
	expectEnd(t, d3, "account deleted")
	if _, ok := e.srv.Accounts.Lookup("dave"); ok {
		t.Fatal("dave still has an account")
	}
	if n := e.srv.Spool.Queued("dave"); n != 0 {
		t.Fatalf("%d files still queued for dave", n)
	}
	logIn("dave", newPW).Expect(wire.End{Reason: wire.ReasonBadLogin})
	again := e.srv.DialExt(t)
	again.SignUp("DAVE") // the name is free, in any case
	if n := len(again.Download(true)); n != 0 {
		t.Fatalf("the new DAVE got %d files of the old dave", n)
	}
	e.mustFail("no such user", "userdel", "nobody")
}

func TestRoleAndSignup(t *testing.T) {
	e := start(t)
	bob := e.user("bob")
	e.mustCall("role", "bob", "admin")
	bob.Expect(wire.Role{Role: "admin"})
	if u, _ := e.srv.Accounts.Lookup("bob"); u.Role != accounts.RoleAdmin {
		t.Fatalf("role in the store: %q", u.Role)
	}
	e.mustCall("role", "bob", "user")
	bob.Expect(wire.Role{Role: "user"})
	e.mustFail("want admin or user", "role", "bob", "root")
	e.mustFail("no such user", "role", "nobody", "admin")

	e.mustCall("signup", "closed")
	c := e.srv.Dial(t)
	c.Send(wire.SignUp{User: "newbie", Pass: "password-newbie"})
	c.Expect(wire.Try{Reason: "sign-up is closed on this server"})
	e.mustCall("signup", "open")
	c.SignUp("newbie")
	e.mustFail("want open or closed", "signup", "maybe")
}

func TestBanCommands(t *testing.T) {
	e := start(t)
	bob := e.user("bob")
	bob2 := e.srv.Dial(t)
	bob2.LogIn("bob")
	e.mustCall("ban", "bob", "2h", "spam,", "lots")
	for _, c := range []*relaytest.Client{bob, bob2} {
		expectEnd(t, c, "banned: spam, lots")
	}
	// A correct password, then the ban.
	c := e.srv.DialExt(t)
	c.Send(wire.Auth{User: "BOB", Pass: "password-bob"})
	c.Expect(wire.End{Fatal: true, Reason: "banned: spam, lots"})

	// An address: its connections end, new ones are closed at accept.
	from2 := e.srv.DialFrom(t, "127.0.0.2")
	from2.SignUp("carol")
	e.mustCall("ban", "127.0.0.2")
	expectEnd(t, from2, "banned")
	e.mustCall("ban", "10.0.0.0/8", "7d")
	data, last := e.mustCall("bans")
	if last != "ok 3 bans" || len(data) != 3 ||
		!regexp.MustCompile(`^user bob \S+Z \S+Z spam, lots$`).MatchString(data[0]) ||
		!regexp.MustCompile(`^ip 127\.0\.0\.2 forever \S+Z$`).MatchString(data[1]) ||
		!strings.HasPrefix(data[2], "cidr 10.0.0.0/8 ") {
		t.Fatalf("bans: %q %q", data, last)
	}
	e.mustFail("duration", "ban", "dave", "0")
	e.mustFail("duration", "ban", "dave", "5x", "typo")
	e.mustFail("want a user name", "ban", "bad/name")
	e.mustCall("unban", "BOB")
	e.mustFail("is not banned", "unban", "bob")
	c = e.srv.DialExt(t)
	c.LogIn("bob")
}

// A banned address is closed at accept, before the TLS handshake: it gets
// not one byte, and at once rather than after the first-byte timeout.
func TestBannedAddressNeverReachesTheHandshake(t *testing.T) {
	e := start(t)
	if _, err := e.bans.Add("127.0.0.2", time.Time{}, ""); err != nil {
		t.Fatal(err)
	}
	for _, from := range []string{"127.0.0.2", ""} {
		raw, err := e.srv.DialTCP(t, from)
		if err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		raw.SetReadDeadline(began.Add(3 * time.Second)) // below the 5 s first-byte timeout
		// No ClientHello yet: a server that waited for one would not close.
		n, err := raw.Read(make([]byte, 1))
		if from == "" {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("an allowed address: read %d, %v; want it kept open", n, err)
			}
			continue
		}
		if n != 0 || !(errors.Is(err, io.EOF) || isReset(err)) {
			t.Fatalf("banned address: read %d bytes, %v; want closed", n, err)
		}
		if d := time.Since(began); d > 2*time.Second {
			t.Fatalf("closed after %v, want at once", d)
		}
	}
	// With a ClientHello sent, the handshake fails without a ServerHello.
	if _, err := e.srv.DialTLS(t, "127.0.0.2"); err == nil {
		t.Fatal("a banned address completed a handshake")
	}
	// A prefix ban covers the addresses in it.
	if _, err := e.bans.Add("127.0.0.0/30", time.Time{}, "net"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.DialTLS(t, "127.0.0.3"); err == nil {
		t.Fatal("an address in a banned prefix completed a handshake")
	}
	if _, err := e.srv.DialTLS(t, "127.0.0.5"); err != nil {
		t.Fatalf("an address outside the prefix: %v", err)
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

func TestAdminFromClient(t *testing.T) {
	e := start(t)
	root := e.adminClient("root")
	e.user("bob")
	root.Send(wire.Admin{Command: "online", Token: root.Token})
	var data []string
	for {
		q := root.MustNext()
		if d, ok := q.(wire.AdminData); ok {
			data = append(data, d.Text)
			continue
		}
		if q != (wire.OK{Text: "2 users, 2 sessions"}) || len(data) != 2 {
			t.Fatalf("ADMIN online: %q then %#v", data, q)
		}
		break
	}
	// Every command of the table works from a client; a few here, the
	// rest share the code that the socket tests exercise.
	bob := e.srv.DialExt(t)
	bob.LogIn("bob")
	root.Send(wire.Admin{Command: "msg bob hi from root", Token: root.Token})
	root.Expect(wire.OK{Text: "sent to bob: 2 sessions"})
	bob.Expect(wire.Relay{Target: "bob", Sender: "admin", Text: "hi from root"})
	root.Send(wire.Admin{Command: "useradd zed -", Token: root.Token})
	if q, ok := root.MustNext().(wire.No); !ok || !strings.Contains(q.Reason, "leave it out to generate one") {
		t.Fatalf("useradd - from a client: %#v", q)
	}
	root.Send(wire.Admin{Command: "kick bob <flood>", Token: root.Token})
	root.Expect(wire.OK{Text: "kicked bob: 2 sessions ended"})
	expectEnd(t, bob, `kicked: \x3cflood\x3e`)
	root.Send(wire.Admin{Command: "nonsense", Token: root.Token})
	if q, ok := root.MustNext().(wire.No); !ok || !strings.Contains(q.Reason, "unknown command") {
		t.Fatalf("unknown command: %#v", q)
	}

	// A normal user is refused, and nothing happens.
	carol := e.user("carol")
	carol.Send(wire.Admin{Command: "kick root", Token: carol.Token})
	carol.Expect(wire.No{Reason: "admin commands need the admin role"})
	root.Send(wire.Online{Token: root.Token})
	root.Expect(wire.OnlineList{Users: []string{"carol", "root"}})
	// A role taken away counts at once.
	e.mustCall("role", "root", "user")
	root.Expect(wire.Role{Role: "user"})
	root.Send(wire.Admin{Command: "online", Token: root.Token})
	root.Expect(wire.No{Reason: "admin commands need the admin role"})
	// An original client (no sslm/2) does not know ADMIN: as before.
	old := e.srv.Dial(t)
	old.LogIn("carol")
	old.Send(wire.Admin{Command: "online", Token: old.Token})
	old.Expect(wire.End{Fatal: true, Reason: wire.ReasonProtocol})
}

// Every command the table has is refused for a normal user, and answered
// for an admin.
func TestEveryCommandNeedsTheRole(t *testing.T) {
	e := start(t)
	root := e.adminClient("root")
	carol := e.user("carol")
	for _, line := range admin.Help() {
		name, _, _ := strings.Cut(line, " ")
		if strings.HasPrefix(line, "DURATION") {
			continue
		}
		carol.Send(wire.Admin{Command: name, Token: carol.Token})
		carol.Expect(wire.No{Reason: "admin commands need the admin role"})
		root.Send(wire.Admin{Command: name, Token: root.Token})
		for {
			q := root.MustNext()
			if _, ok := q.(wire.AdminData); ok {
				continue
			}
			_, isOK := q.(wire.OK)
			_, isNo := q.(wire.No)
			if !isOK && !isNo {
				t.Fatalf("%s: answered with %#v", name, q)
			}
			break
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"90s": 90 * time.Second, "10m": 10 * time.Minute, "2h": 2 * time.Hour,
		"7d": 7 * 24 * time.Hour, "1d12h": 36 * time.Hour, "1h30m": 90 * time.Minute,
	} {
		if got, err := admin.ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "0s", "-5m", "0d", "d", "7", "x", "1.5d", "99999d", "1d-2d"} {
		if got, err := admin.ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", bad, got)
		}
	}
}

// The README's command table is the table the console and `server admin
// help` show.
func TestReadmeHasTheTable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range admin.Help() {
		if strings.HasPrefix(line, "DURATION") {
			continue
		}
		syntax, help, _ := strings.Cut(line, "  ")
		row := "| `" + strings.ReplaceAll(strings.TrimSpace(syntax), "|", `\|`) + "` | " + strings.TrimSpace(help) + " |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README lacks the row\n%s", row)
		}
	}
}

func TestConsole(t *testing.T) {
	e := start(t)
	e.user("bob")
	var out bytes.Buffer
	in := strings.NewReader("help\n\n  online  \nkick\nuseradd carol -\n")
	if err := e.adm.Console(in, &out, func() (string, error) { return "carol-secret-1", nil }); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"admin console: type help for the commands\n",
		"kick USER [REASON]", "ok 16 commands\n",
		"\nbob 127.0.0.1:", "ok 1 users, 1 sessions\n",
		"error: kick: missing USER\n",
		"ok created carol\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("console output lacks %q:\n%s", want, got)
		}
	}
	c := e.srv.Dial(t)
	c.Send(wire.Auth{User: "carol", Pass: "carol-secret-1"})
	c.AcceptAs("carol")
}

// The socket answers a bad request with an error line and goes on.
func TestSocketBadRequests(t *testing.T) {
	e := start(t)
	ask := func(req string) string {
		c, err := net.Dial("unix", e.sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, req)
		b, _ := io.ReadAll(c)
		return string(b)
	}
	if got := ask(strings.Repeat("x", admin.MaxRequestBytes+10) + "\n"); !strings.HasPrefix(got, "error: bad request: line longer than") {
		t.Errorf("over-long line: %q", got)
	}
	if got := ask("online\r\n"); got != "ok 0 users, 0 sessions\n" {
		t.Errorf("CR LF line: %q", got)
	}
	if got := ask("msg bob \x1b[2J\n"); got != "error: bob is not online\n" {
		t.Errorf("control characters: %q", got)
	}
	if _, _, ok := e.call("", "online"); !ok {
		t.Error("the socket stopped answering")
	}
}
