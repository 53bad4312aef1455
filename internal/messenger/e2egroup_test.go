package messenger

import (
	"strings"
	"testing"

	"sslmessager/internal/wire"
)

// TestE2EGroup: in group chat, a line from alice is sealed to each keyed
// member (bob and dave, ours), who each show it once as a group line; carol,
// an original client (no ALPN) in group chat, is listed as not delivered
// and receives nothing; :plain_group: still reaches everyone, marked.
func TestE2EGroup(t *testing.T) {
	s, logs := startKeyRelay(t)
	ring := newKeyring(t)
	ca, cb, cd := s.join(t, "alice", true), s.join(t, "bob", true), s.join(t, "dave", true)
	carol := s.Dial(t)
	carol.SignUp("carol")
	carol.Send(wire.Group{Token: carol.Token})
	bob := startRun(t, cb, Options{Target: "alice", NoTimestamps: true, Group: true, Keys: ring.get(t, cb.User())})
	dave := startRun(t, cd, Options{Target: "alice", NoTimestamps: true, Group: true, Keys: ring.get(t, cd.User())})
	bob.typeLine(t, ":fingerprint:")
	waitOutput(t, bob.out, "safety-number half")
	dave.typeLine(t, ":fingerprint:")
	waitOutput(t, dave.out, "safety-number half")
	alice := startRun(t, ca, Options{Target: "bob", NoTimestamps: true, Group: true, Keys: ring.get(t, ca.User())})
	s.waitOnline(t, "four", func(n []string) bool { return len(n) == 4 })

	const secret = "group secret 7f3a"
	alice.typeLine(t, secret)
	waitOutput(t, alice.out, "encrypted to: bob, dave; not delivered to: carol (no key)")
	waitOutput(t, bob.out, "[group] alice: "+secret)
	waitOutput(t, dave.out, "[group] alice: "+secret)
	alice.typeLine(t, "second line")
	waitOutput(t, bob.out, "[group] alice: second line")
	waitOutput(t, dave.out, "[group] alice: second line")
	for name, r := range map[string]*running{"bob": bob, "dave": dave} {
		if n := strings.Count(r.out.String(), secret); n != 1 {
			t.Errorf("%s shows the group line %d times, want once:\n%s", name, n, r.out.String())
		}
	}
	if strings.Contains(logs.String(), secret) {
		t.Error("the server's log holds the group text")
	}

	// carol got nothing: the next line she reads answers her ONLINE.
	carol.Send(wire.Online{Token: carol.Token})
	for {
		q := carol.MustNext()
		if _, ok := q.(wire.OnlineList); ok {
			break
		}
		t.Fatalf("carol (original client in group chat) got %#v", q)
	}

	// The plaintext group reaches carol too, marked on our side.
	alice.typeLine(t, ":plain_group: hello everyone")
	carol.Expect(wire.RelayGroup{Sender: "alice", Text: "hello everyone"})
	waitOutput(t, bob.out, "[group] alice [plain]: hello everyone")
	waitOutput(t, bob.out, "the server operator can read them")
}
