package messenger

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sslmessager/internal/e2e"
	"sslmessager/internal/e2e/safety"
	"sslmessager/internal/e2e/trust"
	"sslmessager/internal/keydir"
	"sslmessager/internal/offline"
	"sslmessager/internal/relay"
	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

// startKeyRelay starts a real server with a key directory and offline
// messages; its log goes to the returned buffer.
func startKeyRelay(t testing.TB) (*relayServer, *relaytest.SyncBuffer) {
	t.Helper()
	logs := &relaytest.SyncBuffer{}
	s := relaytest.Start(t, relaytest.Options{
		Keys:    &keydir.Options{MaxChangesPerHour: keydir.NoLimit},
		Offline: &offline.Options{},
		Config: func(c *relay.Config) {
			c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		},
	})
	return &relayServer{s}, logs
}

// testKeyring opens (creating) each user's key store once per test:
// scrypt makes an open cost about a second.
type testKeyring struct {
	mu   sync.Mutex
	dir  string
	keys map[string]*Keys
}

func newKeyring(t *testing.T) *testKeyring {
	return &testKeyring{dir: t.TempDir(), keys: map[string]*Keys{}}
}

// get returns user's keys (the first process of user).
func (r *testKeyring) get(t *testing.T, user string) *Keys { return r.getAs(t, user, "") }

// getAs is get for another process of the user (instance != ""): the same
// store opened again, as a second client process would.
func (r *testKeyring) getAs(t *testing.T, user, instance string) *Keys {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	user = strings.ToLower(user)
	if k := r.keys[user+instance]; k != nil {
		return k
	}
	k, err := OpenKeys(KeyStoreDir(r.dir, "test-server", user), user, "pw-of-"+user, true)
	if err != nil {
		t.Fatal(err)
	}
	r.keys[user+instance] = k
	return k
}

// open opens the key stores of users (before anything connects: under
// the race detector each takes several seconds).
func (r *testKeyring) open(t *testing.T, users ...string) *testKeyring {
	t.Helper()
	for _, u := range users {
		user, instance, _ := strings.Cut(u, "#")
		if instance != "" {
			instance = "#" + instance
		}
		r.getAs(t, user, instance)
	}
	return r
}

// chat starts our client for user with its keys and waits until its
// bundle is in the directory.
func (s *relayServer) chat(t *testing.T, ring *testKeyring, user, target string, policy E2EPolicy) *running {
	return s.chatAs(t, ring, user, "", target, policy)
}

// chatAs is chat as another process (instance) of user.
func (s *relayServer) chatAs(t *testing.T, ring *testKeyring, user, instance, target string, policy E2EPolicy) *running {
	t.Helper()
	_, exists := s.Accounts.Lookup(user)
	c := s.join(t, user, !exists)
	r := startRun(t, c, Options{Target: target, NoTimestamps: true, Keys: ring.getAs(t, user, instance), E2E: policy})
	if policy != E2EOff {
		relaytest.CheckFor(t, waitLimit, func() error {
			if _, ok := s.Keys.Get(user); !ok {
				return fmt.Errorf("%s has not published a key", user)
			}
			return nil
		})
	}
	return r
}

// rawAs logs a protocol client (not ours) in as user, with our test
// password, offering the ALPN protocols protos.
func (s *relayServer) rawAs(t *testing.T, user string, protos ...string) *relaytest.Client {
	t.Helper()
	c := s.DialALPN(t, protos...)
	c.Send(wire.Auth{User: user, Pass: "pw-of-" + user})
	c.AcceptAs(user)
	return c
}

// recorder reads every line a raw client gets until its connection
// closes.
type recorder struct {
	mu    sync.Mutex
	lines []wire.Query
	raw   bytes.Buffer
}

func record(c *relaytest.Client) *recorder {
	r := &recorder{}
	go func() {
		for {
			line, err := c.R.ReadLine()
			if err != nil {
				return
			}
			q, _ := wire.ParseServer(line)
			r.mu.Lock()
			r.raw.Write(line)
			r.raw.WriteByte('\n')
			if q != nil {
				r.lines = append(r.lines, q)
			}
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *recorder) relays() []wire.Relay {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []wire.Relay
	for _, q := range r.lines {
		if m, ok := q.(wire.Relay); ok {
			out = append(out, m)
		}
	}
	return out
}

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.raw.Bytes())
}

func markers(t *testing.T, n int) []string {
	out := make([]string, n)
	for i := range out {
		var b [16]byte
		rand.Read(b[:])
		out[i] = "marker-" + hex.EncodeToString(b[:])
	}
	return out
}

// TestE2EDirectLiveOfflineRestartNoPlaintext: 100 random markers sent as
// direct messages, 50 live and 50 while the recipient is offline across a
// server restart, all arrive; none is in anything the server relayed (as
// a recipient that is not our client sees it), stored (offline queue,
// spool, key directory, accounts: every file under its directory) or
// logged (at debug level). A long text is split and rejoined; the
// sender's other session gets a copy it can open.
func TestE2EDirectLiveOfflineRestartNoPlaintext(t *testing.T) {
	s, logs := startKeyRelay(t)
	ring := newKeyring(t).open(t, "alice", "alice#2", "bob")
	bob := s.chat(t, ring, "bob", "alice", E2EPrefer)
	alice := s.chat(t, ring, "alice", "bob", E2EPrefer)
	alice2 := s.chatAs(t, ring, "alice", "#2", "carol", E2EPrefer) // alice's other client process
	otherBob := s.rawAs(t, "bob", wire.ALPN)                       // a client that is not ours, logged in as bob
	plainBob := record(otherBob)
	waitOutput(t, alice.out, "bob [unverified]")

	marks := markers(t, 100)
	for _, m := range marks[:50] {
		alice.typeLine(t, "live "+m)
	}
	for _, m := range marks[:50] {
		waitOutput(t, bob.out, "alice: live "+m+"\n")
		waitOutput(t, alice2.out, "you → bob (other session): live "+m+"\n")
	}
	long := strings.Repeat("long text ✓ ", 320) + "end" // 3,843 characters, 4,163 bytes: two parts
	alice.typeLine(t, long)
	waitOutput(t, bob.out, "alice: "+long+"\n")
	if strings.Contains(alice2.out.String(), "e2e1.") || strings.Contains(bob.out.String(), "e2e1.") {
		t.Fatalf("an envelope was shown as text:\n%s\n%s", alice2.out.String(), bob.out.String())
	}
	if n := len(plainBob.relays()); n < 51 {
		t.Fatalf("the other client of bob got %d RELAY lines, want at least 51", n)
	}
	for _, m := range plainBob.relays() {
		if m.Sender == "alice" && !e2e.IsWord(m.Text) {
			t.Fatalf("relayed in plaintext: %q", m.Text)
		}
	}

	bob.in.Close()
	if err := bob.wait(t); err != nil {
		t.Fatal(err)
	}
	otherBob.Conn.Close()
	s.waitOnline(t, "bob offline", func(n []string) bool { return !strings.Contains(" "+strings.Join(n, " ")+" ", " bob ") })
	for _, m := range marks[50:] {
		alice.typeLine(t, "offline "+m)
	}
	relaytest.CheckFor(t, waitLimit, func() error {
		if n := strings.Count(alice.out.String(), "queued for bob (offline)"); n < 50 {
			return fmt.Errorf("%d queued; alice:\n%s", n, alice.out.String())
		}
		return nil
	})
	s.Restart()
	bobAgain := s.chat(t, ring, "bob", "alice", E2EPrefer)
	for _, m := range marks[50:] {
		waitOutput(t, bobAgain.out, "] alice: offline "+m+"\n")
	}

	// Everything the server holds or said.
	var held [][]byte
	err := filepath.WalkDir(s.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while walking (bob's confirmations compact the offline queue)
		}
		held = append(held, b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	held = append(held, []byte(logs.String()), plainBob.bytes())
	if !strings.Contains(logs.String(), "alice") {
		t.Fatal("the server log holds nothing: the capture is broken")
	}
	for _, m := range marks {
		for _, b := range held {
			if bytes.Contains(b, []byte(m)) {
				t.Fatalf("the server holds the plaintext %s", m)
			}
		}
	}
	if bytes.Contains(bytes.Join(held, nil), []byte("long text")) {
		t.Fatal("the server holds the long text")
	}
}

// TestE2EHostileKeySwap: the server (here: someone with bob's password,
// which every server learns at log-in) publishes a new valid bundle for
// bob. alice, who verified bob's real key, gets a warning, a different
// safety number, and cannot send to bob until she verifies or trusts the
// new key; before verification a change only warns.
func TestE2EHostileKeySwap(t *testing.T) {
	s, _ := startKeyRelay(t)
	ring := newKeyring(t).open(t, "alice", "bob")
	bob := s.chat(t, ring, "bob", "alice", E2EPrefer)
	alice := s.chat(t, ring, "alice", "bob", E2EPrefer)
	alice.typeLine(t, "first")
	waitOutput(t, bob.out, "alice: first\n")

	ak, bk := ring.keys["alice"], ring.keys["bob"]
	want := safety.Number(ak.safetyKey(), "alice", bk.safetyKey(), "bob")
	alice.typeLine(t, ":verify: bob")
	waitOutput(t, alice.out, safety.Format(want[:30])+"\n  "+safety.Format(want[30:]))
	alice.typeLine(t, ":verify: bob "+safety.Format(want))
	waitOutput(t, alice.out, "bob verified")
	if c, _ := ak.contact("bob"); c.State != trust.StateVerified {
		t.Fatalf("bob is %v after :verify:", c.State)
	}

	// The swap: a valid bundle for a new identity named bob.
	evil, err := e2e.NewIdentity(nil)
	if err != nil {
		t.Fatal(err)
	}
	spk, err := evil.NewSignedPrekey(7, ak.now().Add(SPKLifetime), nil)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := evil.Bundle("bob", spk)
	if err != nil {
		t.Fatal(err)
	}
	mallory := s.rawAs(t, "bob", wire.ALPNKeys, wire.ALPN)
	mallory.Send(wire.SetKey{Bundle: eb.Encode(), Token: mallory.Token})
	mallory.Expect(wire.OK{Text: wire.ReasonKeySaved})

	waitOutput(t, alice.out, "bob's end-to-end key CHANGED since you verified it")
	alice.typeLine(t, "secret after the swap")
	waitOutput(t, alice.out, "! message not sent: bob's key changed since you verified it: sending is blocked")
	alice.typeLine(t, ":verify: bob")
	evilKey := safetyKeyOf(eb.Identity())
	changed := safety.Number(ak.safetyKey(), "alice", evilKey, "bob")
	if changed == want {
		t.Fatal("the same safety number for another key")
	}
	waitOutput(t, alice.out, safety.Format(changed[:30]))
	// The digits bob reads out (his real key) do not match the new key.
	alice.typeLine(t, ":verify: bob "+want)
	waitOutput(t, alice.out, "the digits do NOT match")
	alice.typeLine(t, "still blocked")
	relaytest.CheckFor(t, waitLimit, func() error {
		if n := strings.Count(alice.out.String(), "sending is blocked"); n < 2 {
			return errors.New("the second message was not refused")
		}
		return nil
	})
	if strings.Contains(bob.out.String(), "swap") || strings.Contains(bob.out.String(), "still blocked") {
		t.Fatal("a blocked message went out")
	}
	// :trust: accepts the new key: sending goes on (to whoever holds it).
	alice.typeLine(t, ":trust: bob")
	waitOutput(t, alice.out, "bob's current key accepted without verification")
	if c, _ := ak.contact("bob"); c.Blocked || c.State != trust.StateUnverified {
		t.Fatalf("after :trust: bob is %+v", c)
	}
}

// TestE2EReplayAndGap: an envelope sent again (by someone with alice's
// password, as the server could) is rejected with a notice; a sequence
// number skipped shows a gap.
func TestE2EReplayAndGap(t *testing.T) {
	s, _ := startKeyRelay(t)
	ring := newKeyring(t).open(t, "alice", "bob")
	bob := s.chat(t, ring, "bob", "alice", E2EPrefer)
	tap := record(s.rawAs(t, "bob", wire.ALPN))
	alice := s.chat(t, ring, "alice", "bob", E2EPrefer)
	alice.typeLine(t, "once only")
	waitOutput(t, bob.out, "alice: once only\n")
	var word string
	relaytest.CheckFor(t, waitLimit, func() error {
		for _, m := range tap.relays() {
			if m.Sender == "alice" {
				word = m.Text
				return nil
			}
		}
		return errors.New("no envelope captured")
	})
	replayer := s.rawAs(t, "alice", wire.ALPN)
	replayer.Msg("bob", word)
	waitOutput(t, bob.out, "! encrypted message from alice rejected: already received (a replay)\n")
	if strings.Count(bob.out.String(), "once only") != 1 {
		t.Fatalf("the replay was shown:\n%s", bob.out.String())
	}

	// A message lost on the way: its sequence number is used, not sent.
	if _, err := ring.keys["alice"].reserveSeq("bob", 1); err != nil {
		t.Fatal(err)
	}
	alice.typeLine(t, "after a loss")
	waitOutput(t, bob.out, "! 1 message from alice may be missing\nalice: after a loss\n")
}

// TestE2ERequireAndOriginalClients: an original client (no ALPN) signs up
// and exchanges direct messages with ours in plaintext, tagged [plain]
// with a once-per-contact notice, and never sees a key line or an
// envelope; --e2e=require refuses to send it plaintext; a plaintext line
// from a contact whose key is pinned is marked as possibly forged.
func TestE2ERequireAndOriginalClients(t *testing.T) {
	s, _ := startKeyRelay(t)
	ring := newKeyring(t).open(t, "alice", "bob", "carol")
	olga := s.Dial(t) // the original protocol: no ALPN
	olga.SignUp("olga")
	olgaSaw := record(olga)
	alice := s.chat(t, ring, "alice", "olga", E2EPrefer)
	waitOutput(t, alice.out, "olga has no end-to-end key")
	alice.typeLine(t, "hello olga")
	alice.typeLine(t, "second line")
	relaytest.CheckFor(t, waitLimit, func() error {
		if n := len(olgaSaw.relays()); n < 2 {
			return fmt.Errorf("olga got %d messages", n)
		}
		return nil
	})
	if got := olgaSaw.relays()[0]; got.Sender != "alice" || got.Text != "hello olga" {
		t.Fatalf("olga got %+v", got)
	}
	olga.Msg("alice", "hi from olga")
	waitOutput(t, alice.out, "olga [plain]: hi from olga\n")
	if n := strings.Count(alice.out.String(), "the server operator can read this"); n != 1 {
		t.Fatalf("the plaintext notice was shown %d times:\n%s", n, alice.out.String())
	}

	carol := s.chat(t, ring, "carol", "olga", E2ERequire)
	carol.typeLine(t, "not for a keyless user")
	waitOutput(t, carol.out, "! message not sent: olga has no end-to-end key, and --e2e=require refuses plaintext\n")

	// bob has a key pinned by alice; a plaintext line "from bob" may be
	// the server's.
	bob := s.chat(t, ring, "bob", "alice", E2EPrefer)
	bob.typeLine(t, "keyed")
	waitOutput(t, alice.out, "bob [unverified]")
	waitOutput(t, alice.out, "bob: keyed\n")
	forger := s.rawAs(t, "bob")
	forger.Msg("alice", "trust me")
	waitOutput(t, alice.out, "bob [plain – may be forged by the server]: trust me\n")

	olga.Send(wire.Quit{Token: olga.Token})
	relaytest.CheckFor(t, waitLimit, func() error {
		if !bytes.Contains(olgaSaw.bytes(), []byte("END")) {
			return errors.New("olga's session has not ended")
		}
		return nil
	})
	for _, q := range olgaSaw.lines {
		switch q := q.(type) {
		case wire.Key, wire.KeyChange:
			t.Fatalf("the original client got %v", q)
		case wire.Relay:
			if e2e.IsWord(q.Text) {
				t.Fatalf("the original client got an envelope: %.60s", q.Text)
			}
		}
	}
	if strings.Contains(string(olgaSaw.bytes()), "not for a keyless user") {
		t.Fatal("--e2e=require sent plaintext")
	}
}

// TestE2EServerWithoutDirectory: against a server without the key
// directory everything is plaintext as before (no tags), and
// --e2e=require refuses.
func TestE2EServerWithoutDirectory(t *testing.T) {
	s := startRelay(t)
	ring := newKeyring(t).open(t, "alice", "bob", "carol")
	cb := s.join(t, "bob", true)
	bob := startRun(t, cb, Options{Target: "alice", NoTimestamps: true, Keys: ring.get(t, "bob")})
	ca := s.join(t, "alice", true)
	alice := startRun(t, ca, Options{Target: "bob", NoTimestamps: true, Keys: ring.get(t, "alice")})
	cr := s.join(t, "carol", true)
	carol := startRun(t, cr, Options{Target: "bob", NoTimestamps: true, Keys: ring.get(t, "carol"), E2E: E2ERequire})
	s.waitOnline(t, "three", func(n []string) bool { return len(n) == 3 })
	alice.typeLine(t, "as before")
	waitOutput(t, bob.out, "alice: as before\n")
	carol.typeLine(t, "refused")
	waitOutput(t, carol.out, "! message not sent: this server has no key directory, and --e2e=require refuses plaintext\n")
	if strings.Contains(bob.out.String(), "[plain]") || strings.Contains(bob.out.String(), "refused") {
		t.Fatalf("bob's output:\n%s", bob.out.String())
	}
}

// TestE2ETerminalPrompt: on a terminal the prompt shows the conversation's
// encryption state.
func TestE2ETerminalPrompt(t *testing.T) {
	s, _ := startKeyRelay(t)
	ring := newKeyring(t).open(t, "alice", "bob")
	s.chat(t, ring, "bob", "alice", E2EPrefer)
	olga := s.Dial(t)
	olga.SignUp("olga")
	ca := s.join(t, "alice", true)
	r := startRun(t, ca, Options{Target: "bob", Terminal: true, Width: 200, Height: 24, Keys: ring.get(t, "alice")})
	waitOutput(t, r.out, "bob [e2e, unverified]> ")
	r.in.Write([]byte(":new_target: olga\r"))
	waitOutput(t, r.out, "olga [plain]> ")
	num := safety.Number(ring.get(t, "alice").safetyKey(), "alice", ring.get(t, "bob").safetyKey(), "bob")
	r.in.Write([]byte(":verify: bob " + num + "\r"))
	waitOutput(t, r.out, "bob verified")
	r.in.Write([]byte(":new_target: bob\r"))
	waitOutput(t, r.out, "bob [e2e, verified]> ")
}

// TestE2EStalePrekey: bob has not logged in since his announced prekey
// expired. Up to e2e.PrekeyGrace after its expiry alice still sends to
// him, encrypted, told once that bob is away and what it costs, and bob
// reads it; beyond the grace she is refused with the reason and nothing
// reaches bob.
func TestE2EStalePrekey(t *testing.T) {
	s, _ := startKeyRelay(t)
	ring := newKeyring(t).open(t, "alice", "bob")
	bob := s.chat(t, ring, "bob", "alice", E2EPrefer)
	var shift atomic.Int64 // alice's clock runs ahead: bob has been away
	shift.Store(int64(SPKLifetime + 20*24*time.Hour))
	ring.keys["alice"].now = func() time.Time { return time.Now().Add(time.Duration(shift.Load())) }
	alice := s.chat(t, ring, "alice", "bob", E2EPrefer)
	alice.typeLine(t, "while you were away")
	waitOutput(t, bob.out, "while you were away\n")
	waitOutput(t, alice.out, "! bob has not logged in since about ")
	if out := alice.out.String(); !strings.Contains(out, "weaker forward secrecy") || strings.Count(out, "has not logged in since") != 1 {
		t.Fatalf("alice's notice:\n%s", out)
	}
	alice.typeLine(t, "again")
	waitOutput(t, bob.out, "alice: again\n")
	if n := strings.Count(alice.out.String(), "has not logged in since"); n != 1 {
		t.Fatalf("the notice was shown %d times", n)
	}

	shift.Store(int64(SPKLifetime + e2e.PrekeyGrace + 24*time.Hour))
	alice.typeLine(t, "far too late")
	waitOutput(t, alice.out, "bob's published prekey cannot be used")
	if !strings.Contains(alice.out.String(), "more than 60 days ago") {
		t.Fatalf("no reason given:\n%s", alice.out.String())
	}
	alice.typeLine(t, ":ping:")
	waitOutput(t, alice.out, "pong from server")
	bob.typeLine(t, ":ping:")
	waitOutput(t, bob.out, "pong from server")
	if strings.Contains(bob.out.String(), "far too late") {
		t.Fatal("a message was sent to an expired prekey")
	}
}
