package relay_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"sslmessager/internal/e2e"
	"sslmessager/internal/keydir"
	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

// newBundle returns a bundle word for user, signed by a new identity, whose
// prekey expires after life.
func newBundle(t testing.TB, user string, life time.Duration) string {
	t.Helper()
	id, err := e2e.NewIdentity(nil)
	if err != nil {
		t.Fatal(err)
	}
	spk, err := id.NewSignedPrekey(7, time.Now().Add(life), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := id.Bundle(user, spk)
	if err != nil {
		t.Fatal(err)
	}
	return b.Encode()
}

const week = 7 * 24 * time.Hour

func startKeys(t *testing.T, opts keydir.Options) *relaytest.Server {
	t.Helper()
	return relaytest.Start(t, relaytest.Options{Keys: &opts})
}

// keysLog returns the lines of the server's keys.log.
func keysLog(t *testing.T, h *relaytest.Server) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(h.Dir, "keys", keydir.LogFile))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// expectQuiet fails the test if c, an sslm/2 or sslm/3 session, has any
// line waiting: the answer to a PING must come next.
func expectQuiet(c *relaytest.Client) {
	c.T.Helper()
	c.Send(wire.Ping{Nonce: "quiet", Token: c.Token})
	c.Expect(wire.Pong{Nonce: "quiet"})
}

// expectQuietOriginal is expectQuiet for a client without ALPN: the
// online list must come next.
func expectQuietOriginal(c *relaytest.Client, online ...string) {
	c.T.Helper()
	c.Send(wire.Online{Token: c.Token})
	c.Expect(wire.OnlineList{Users: online})
}

func TestKeySetAndFetch(t *testing.T) {
	h := startKeys(t, keydir.Options{})
	alice := h.DialKeys(t)
	alice.SignUp("Alice")
	bob := h.DialKeys(t)
	bob.SignUp("bob")
	h.Dial(t).SignUp("carol") // an account without a bundle

	word := newBundle(t, "Alice", week)
	alice.Send(wire.SetKey{Bundle: word, Token: alice.Token})
	alice.Expect(wire.OK{Text: wire.ReasonKeySaved})
	// Publishing the same bundle again is no change.
	alice.Send(wire.SetKey{Bundle: word, Token: alice.Token})
	alice.Expect(wire.OK{Text: wire.ReasonKeySaved})

	bob.Send(wire.GetKey{User: "alice", Token: bob.Token})
	bob.Expect(wire.Key{User: "alice", Bundle: word})
	got, err := e2e.ParseBundle(word)
	if err != nil || got.User != "Alice" {
		t.Fatalf("the bundle fetched: %v, %v", got, err)
	}
	// The name as asked, in any case; a name without a bundle, one that
	// is no account, one that is no user name at all: all "-" alike.
	for _, name := range []string{"ALICE", "carol", "nobody", "help", "no.such!name", strings.Repeat("x", 64)} {
		bob.Send(wire.GetKey{User: name, Token: bob.Token})
		want := wire.Key{User: name}
		if name == "ALICE" {
			want.Bundle = word
		}
		bob.Expect(want)
	}
	if lines := keysLog(t, h); len(lines) != 1 || !strings.Contains(lines[0], "user=Alice action=set new="+keydir.Hash(word)+" old=-") {
		t.Fatalf("keys.log: %q", lines)
	}
}

// The key queries exist only on sslm/3: on sslm/2 and without ALPN they
// end the session as any unknown query does, and a server without a key
// directory does not negotiate sslm/3 at all.
func TestKeyQueriesOnlyOnSslm3(t *testing.T) {
	h := startKeys(t, keydir.Options{})
	h.DialKeys(t).SignUp("alice")
	word := newBundle(t, "alice", week)
	for _, dial := range []func(testing.TB) *relaytest.Client{h.DialExt, h.Dial} {
		for _, q := range []func(token string) wire.Query{
			func(tok string) wire.Query { return wire.SetKey{Bundle: word, Token: tok} },
			func(tok string) wire.Query { return wire.GetKey{User: "alice", Token: tok} },
		} {
			c := dial(t)
			c.LogIn("alice")
			c.Send(q(c.Token))
			c.Expect(wire.End{Fatal: true, Reason: wire.ReasonProtocol})
			c.ExpectClosed()
		}
	}
	if _, ok := h.Keys.Get("alice"); ok {
		t.Fatal("a SETKEY outside sslm/3 was stored")
	}

	plain := relaytest.Start(t, relaytest.Options{})
	c := plain.DialALPN(t, wire.ALPNKeys, wire.ALPN)
	if p := c.Conn.ConnectionState().NegotiatedProtocol; p != wire.ALPN {
		t.Fatalf("a server without a key directory negotiated %q", p)
	}
	c.SignUp("alice")
	c.Send(wire.GetKey{User: "alice", Token: c.Token})
	c.Expect(wire.End{Fatal: true, Reason: wire.ReasonProtocol})
	c.ExpectClosed()
}

// Every bundle that does not verify, names another user or has a prekey
// that is not fresh is refused, and the session goes on.
func TestKeyBundleRefused(t *testing.T) {
	h := startKeys(t, keydir.Options{})
	h.DialKeys(t).SignUp("alice")
	h.Dial(t).SignUp("bob")

	// Each in a session of its own: a session gets 6 SETKEYs checked at
	// once (TestSetKeyBudget).
	refuse := func(word, reason string) {
		t.Helper()
		alice := h.DialKeys(t)
		alice.LogIn("alice")
		alice.Send(wire.SetKey{Bundle: word, Token: alice.Token})
		q := alice.MustNext()
		no, ok := q.(wire.No)
		if !ok || !regexp.MustCompile(reason).MatchString(no.Reason) {
			t.Fatalf("SETKEY %.40s...: got %v, want NO matching %q", word, q, reason)
		}
		expectQuiet(alice)
		alice.Conn.Close()
	}
	refuse(newBundle(t, "bob", week), `^the key bundle is for bob, not for alice$`)
	refuse(newBundle(t, "Alice", week), `^the key bundle is for Alice, not for alice$`) // exactly as registered
	refuse(newBundle(t, "alice", -time.Minute), `^invalid key bundle: .*expired`)
	refuse(newBundle(t, "alice", e2e.MaxSPKLifetime+time.Hour), `^invalid key bundle: .*90 days`)
	refuse("hello", `^invalid key bundle: .*malformed`)
	good := newBundle(t, "alice", week)
	// A character changed in each field (version, identity keys, prekey
	// id, prekey, expiry, name length, name, signature): none verifies.
	// (internal/e2e's tests change every byte.)
	for _, i := range []int{0, 13, 53, 88, 107, 140, 145, 147, 150, 173, 227, len(good) - 1} {
		b := []byte(good)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		refuse(string(b), `^invalid key bundle: `)
	}
	refuse(good+"AA", `^invalid key bundle: `)
	refuse(good[:len(good)-4], `^invalid key bundle: `)
	if _, ok := h.Keys.Get("alice"); ok || keysLog(t, h) != nil {
		t.Fatal("a refused bundle was stored or logged")
	}
	alice := h.DialKeys(t)
	alice.LogIn("alice")
	alice.Send(wire.SetKey{Bundle: good, Token: alice.Token})
	alice.Expect(wire.OK{Text: wire.ReasonKeySaved})
}

// A session gets 6 SETKEYs checked at once, then one every 10 s; past
// that it is told to wait, without a signature checked, and goes on.
func TestSetKeyBudget(t *testing.T) {
	h := startKeys(t, keydir.Options{})
	alice := h.DialKeys(t)
	alice.SignUp("alice")
	word := newBundle(t, "alice", week)
	for range 6 {
		alice.Send(wire.SetKey{Bundle: word, Token: alice.Token})
		alice.Expect(wire.OK{Text: wire.ReasonKeySaved})
	}
	alice.Send(wire.SetKey{Bundle: newBundle(t, "alice", week), Token: alice.Token})
	q := alice.MustNext()
	if no, ok := q.(wire.No); !ok || !regexp.MustCompile(`^too many key bundles sent, try again in (9|10)s$`).MatchString(no.Reason) {
		t.Fatalf("seventh SETKEY: %v", q)
	}
	expectQuiet(alice)
	if now, _ := h.Keys.Get("alice"); now != word {
		t.Fatal("the refused bundle was stored")
	}
	// Another session of the user has its own budget.
	other := h.DialKeys(t)
	other.LogIn("alice")
	other.Send(wire.SetKey{Bundle: word, Token: other.Token})
	other.Expect(wire.OK{Text: wire.ReasonKeySaved})
}

// A change reaches every sslm/3 session that fetched the name, with the new
// bundle, and nobody else: not the original client, not an sslm/2 one,
// not an sslm/3 session that did not ask.
func TestKeyChangeNotification(t *testing.T) {
	h := startKeys(t, keydir.Options{})
	alice := h.DialKeys(t)
	alice.SignUp("alice")
	watcher := h.DialKeys(t)
	watcher.SignUp("bob")
	watcher2 := h.DialKeys(t) // bob's second device
	watcher2.LogIn("bob")
	other := h.DialKeys(t) // fetches someone else
	other.SignUp("erin")
	ext := h.DialExt(t)
	ext.SignUp("dave")
	orig := h.Dial(t)
	orig.SignUp("carol")

	watcher.Send(wire.GetKey{User: "alice", Token: watcher.Token})
	watcher.Expect(wire.Key{User: "alice"})
	watcher2.Send(wire.GetKey{User: "ALICE", Token: watcher2.Token})
	watcher2.Expect(wire.Key{User: "ALICE"})
	other.Send(wire.GetKey{User: "carol", Token: other.Token})
	other.Expect(wire.Key{User: "carol"})

	for range 2 {
		word := newBundle(t, "alice", week)
		alice.Send(wire.SetKey{Bundle: word, Token: alice.Token})
		alice.Expect(wire.OK{Text: wire.ReasonKeySaved})
		watcher.Expect(wire.KeyChange{User: "alice", Bundle: word})
		watcher2.Expect(wire.KeyChange{User: "alice", Bundle: word})
	}
	// Publishing the same bundle again tells nobody anything.
	word, _ := h.Keys.Get("alice")
	alice.Send(wire.SetKey{Bundle: word, Token: alice.Token})
	alice.Expect(wire.OK{Text: wire.ReasonKeySaved})

	// A session that ends stops watching; the others still watch.
	watcher2.Send(wire.Quit{Token: watcher2.Token})
	watcher2.Expect(wire.End{Reason: wire.ReasonEndAccepted})
	word = newBundle(t, "alice", week)
	alice.Send(wire.SetKey{Bundle: word, Token: alice.Token})
	alice.Expect(wire.OK{Text: wire.ReasonKeySaved})
	watcher.Expect(wire.KeyChange{User: "alice", Bundle: word})

	for _, c := range []*relaytest.Client{alice, watcher, other, ext} {
		expectQuiet(c)
	}
	expectQuietOriginal(orig, "alice", "bob", "carol", "dave", "erin")
}

// A session watches at most 512 names; a fetch past that is answered but
// brings no notifications.
func TestKeyWatchCap(t *testing.T) {
	h := startKeys(t, keydir.Options{})
	alice := h.DialKeys(t)
	alice.SignUp("alice")
	bob := h.DialKeys(t)
	bob.SignUp("bob")
	var b strings.Builder
	for i := range 512 {
		b.WriteString("GETKEY w" + strings.Repeat("x", i%5) + string(rune('a'+i%26)) + "_" + itoa(i) + " " + bob.Token + " \r\n")
	}
	bob.Raw(b.String())
	for range 512 {
		if q, ok := bob.MustNext().(wire.Key); !ok || q.Bundle != "" {
			t.Fatalf("got %v", q)
		}
	}
	bob.Send(wire.GetKey{User: "alice", Token: bob.Token})
	bob.Expect(wire.Key{User: "alice"})
	alice.Send(wire.SetKey{Bundle: newBundle(t, "alice", week), Token: alice.Token})
	alice.Expect(wire.OK{Text: wire.ReasonKeySaved})
	expectQuiet(bob)
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func TestKeyChangeRate(t *testing.T) {
	h := startKeys(t, keydir.Options{MaxChangesPerHour: 2})
	alice := h.DialKeys(t)
	alice.SignUp("alice")
	for range 2 {
		alice.Send(wire.SetKey{Bundle: newBundle(t, "alice", week), Token: alice.Token})
		alice.Expect(wire.OK{Text: wire.ReasonKeySaved})
	}
	kept, _ := h.Keys.Get("alice")
	alice.Send(wire.SetKey{Bundle: newBundle(t, "alice", week), Token: alice.Token})
	q := alice.MustNext()
	if no, ok := q.(wire.No); !ok || !regexp.MustCompile(`^too many key changes, try again in (59|60)m$`).MatchString(no.Reason) {
		t.Fatalf("third change: %v", q)
	}
	// The same bundle again is not refused.
	alice.Send(wire.SetKey{Bundle: kept, Token: alice.Token})
	alice.Expect(wire.OK{Text: wire.ReasonKeySaved})
	if now, _ := h.Keys.Get("alice"); now != kept {
		t.Fatal("the refused change was made")
	}
	if n := len(keysLog(t, h)); n != 2 {
		t.Fatalf("keys.log has %d lines, want 2", n)
	}
}

// Bundles survive a restart, and keys.log has one line per change.
func TestKeysSurviveRestart(t *testing.T) {
	h := startKeys(t, keydir.Options{})
	var words []string
	for _, u := range []string{"alice", "bob"} {
		c := h.DialKeys(t)
		c.SignUp(u)
		for range 2 {
			w := newBundle(t, u, week)
			c.Send(wire.SetKey{Bundle: w, Token: c.Token})
			c.Expect(wire.OK{Text: wire.ReasonKeySaved})
			words = append(words, w)
		}
	}
	h.Restart()
	c := h.DialKeys(t)
	c.SignUp("carol")
	c.Send(wire.GetKey{User: "alice", Token: c.Token})
	c.Expect(wire.Key{User: "alice", Bundle: words[1]})
	c.Send(wire.GetKey{User: "bob", Token: c.Token})
	c.Expect(wire.Key{User: "bob", Bundle: words[3]})
	lines := keysLog(t, h)
	if len(lines) != 4 {
		t.Fatalf("keys.log has %d lines, want 4:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	want := "user=alice action=set new=" + keydir.Hash(words[1]) + " old=" + keydir.Hash(words[0])
	if !strings.Contains(lines[1], want) {
		t.Errorf("keys.log line 2 = %q, want %q", lines[1], want)
	}
}

// Deleting an account removes its bundle, logs it and tells the watchers;
// whoever signs up with the name next has none.
func TestDeletedAccountLosesItsKey(t *testing.T) {
	h := startKeys(t, keydir.Options{})
	alice := h.DialKeys(t)
	alice.SignUp("alice")
	bob := h.DialKeys(t)
	bob.SignUp("bob")
	word := newBundle(t, "alice", week)
	alice.Send(wire.SetKey{Bundle: word, Token: alice.Token})
	alice.Expect(wire.OK{Text: wire.ReasonKeySaved})
	bob.Send(wire.GetKey{User: "alice", Token: bob.Token})
	bob.Expect(wire.Key{User: "alice", Bundle: word})

	alice.Send(wire.DeleteAccount{Pass: "password-alice", Token: alice.Token})
	alice.Expect(wire.End{Reason: wire.ReasonAccountDeleted})
	bob.Expect(wire.KeyChange{User: "alice"})
	if _, err := os.Stat(filepath.Join(h.Dir, "keys", "alice.key")); !os.IsNotExist(err) {
		t.Fatalf("alice.key: %v", err)
	}
	lines := keysLog(t, h)
	if len(lines) != 2 || !strings.Contains(lines[1], "user=alice action=remove new=- old="+keydir.Hash(word)) {
		t.Fatalf("keys.log:\n%s", strings.Join(lines, "\n"))
	}
	again := h.DialKeys(t)
	again.SignUp("alice")
	bob.Send(wire.GetKey{User: "alice", Token: bob.Token})
	bob.Expect(wire.Key{User: "alice"})

	// The operator's removal (admin userdel, users.csv reload) goes
	// through the same DropUserData.
	again.Send(wire.SetKey{Bundle: word, Token: again.Token})
	again.Expect(wire.OK{Text: wire.ReasonKeySaved})
	bob.Expect(wire.KeyChange{User: "alice", Bundle: word})
	if _, err := h.Accounts.Delete("alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.DropUserData("alice"); err != nil {
		t.Fatal(err)
	}
	bob.Expect(wire.KeyChange{User: "alice"})
	if _, ok := h.Keys.Get("alice"); ok {
		t.Fatal("bundle kept after DropUserData")
	}
}
