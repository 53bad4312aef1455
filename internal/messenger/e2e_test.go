package messenger

import (
	"strings"
	"sync"
	"testing"

	"sslmessager/internal/keydir"
	"sslmessager/internal/offline"
	"sslmessager/internal/relay/relaytest"
)

// startKeyRelay starts a real server with a key directory and offline
// messages.
func startKeyRelay(t *testing.T) *relayServer {
	t.Helper()
	return &relayServer{relaytest.Start(t, relaytest.Options{Keys: &keydir.Options{}, Offline: &offline.Options{}})}
}

// testKeys opens (creating) the key store of user under dir once per
// test and user: scrypt makes each open cost about a second.
type testKeyring struct {
	mu   sync.Mutex
	dir  string
	keys map[string]*Keys
}

func newKeyring(t *testing.T) *testKeyring {
	return &testKeyring{dir: t.TempDir(), keys: map[string]*Keys{}}
}

func (r *testKeyring) get(t *testing.T, c *Conn) *Keys {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	user := strings.ToLower(c.User())
	if k := r.keys[user]; k != nil {
		return k
	}
	k, err := OpenKeys(KeyStoreDir(r.dir, c.ServerCertSHA256(), user), user, "pw-of-"+user, true)
	if err != nil {
		t.Fatal(err)
	}
	r.keys[user] = k
	return k
}

func TestE2EDirectLive(t *testing.T) {
	s := startKeyRelay(t)
	ring := newKeyring(t)
	ca := s.join(t, "alice", true)
	cb := s.join(t, "bob", true)
	alice := startRun(t, ca, Options{Target: "bob", NoTimestamps: true, Keys: ring.get(t, ca)})
	bob := startRun(t, cb, Options{Target: "alice", NoTimestamps: true, Keys: ring.get(t, cb)})
	s.waitOnline(t, "alice and bob", func(n []string) bool { return len(n) == 2 })
	// bob must have published before alice fetches his key.
	bob.typeLine(t, ":fingerprint:")
	waitOutput(t, bob.out, "safety-number half")
	alice.typeLine(t, ":new_target: bob")
	waitOutput(t, alice.out, "bob [unverified]")
	alice.typeLine(t, "hello bob, secret")
	waitOutput(t, bob.out, "alice: hello bob, secret\n")
	long := strings.Repeat("0123456789ü", 360)
	alice.typeLine(t, long)
	waitOutput(t, bob.out, "alice: "+long+"\n")
	t.Log(alice.out.String())
	t.Log(bob.out.String())
}
