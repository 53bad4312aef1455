package trust

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"sslmessager/internal/wire"
)

var (
	k1 = bytes.Repeat([]byte{1}, 65)
	k2 = bytes.Repeat([]byte{2}, 65)
	k3 = bytes.Repeat([]byte{3}, 65)
)

func observe(t *testing.T, s *Store, user string, key []byte, want Observation) {
	t.Helper()
	got, err := s.Observe(user, key)
	if err != nil || got != want {
		t.Fatalf("Observe(%s, %x…) = %+v, %v; want %+v", user, key[:1], got, err, want)
	}
}

func expect(t *testing.T, s *Store, user string, st State, send bool) {
	t.Helper()
	got, ok := s.State(user)
	if !ok || got != st || s.SendAllowed(user) != send {
		t.Fatalf("%s: state %v (known %v) send %v; want %v send %v", user, got, ok, s.SendAllowed(user), st, send)
	}
	c, _ := s.Contact(user)
	if c.State != st || c.Blocked == send {
		t.Fatalf("%s: contact %+v", user, c)
	}
}

// TestFirstKeyPinnedSilently: TOFU. The first key is pinned unverified,
// sending allowed; the same key again is Same.
func TestFirstKeyPinnedSilently(t *testing.T) {
	s := New()
	if _, ok := s.State("bob"); ok || !s.SendAllowed("bob") {
		t.Fatal("unknown user has a state or is blocked")
	}
	observe(t, s, "bob", k1, Observation{Kind: KeyNew})
	expect(t, s, "bob", StateUnverified, true)
	observe(t, s, "bob", k1, Observation{Kind: KeySame})
	expect(t, s, "bob", StateUnverified, true)
	c, _ := s.Contact("bob")
	if !bytes.Equal(c.Key, k1) || c.Previous != nil || c.VerifiedKey != nil || c.User != "bob" {
		t.Fatalf("contact %+v", c)
	}
}

// TestUnverifiedChangeAccepted: BTBV. A new key for a contact never
// verified replaces the pin, marks it changed, and sending goes on; Trust
// acknowledges it.
func TestUnverifiedChangeAccepted(t *testing.T) {
	s := New()
	observe(t, s, "bob", k1, Observation{Kind: KeyNew})
	observe(t, s, "bob", k2, Observation{Kind: KeyChanged})
	expect(t, s, "bob", StateChanged, true)
	c, _ := s.Contact("bob")
	if !bytes.Equal(c.Key, k2) || !bytes.Equal(c.Previous, k1) {
		t.Fatalf("contact %+v", c)
	}
	observe(t, s, "bob", k2, Observation{Kind: KeySame})
	expect(t, s, "bob", StateChanged, true) // the change stays shown until acknowledged
	if err := s.Trust("bob"); err != nil {
		t.Fatal(err)
	}
	expect(t, s, "bob", StateUnverified, true)
}

// TestVerifiedChangeBlocksUntilVerify: a changed key of a verified contact
// blocks sending, incoming observations of it keep it blocked, verifying
// the old key fails, verifying the new key unblocks.
func TestVerifiedChangeBlocksUntilVerify(t *testing.T) {
	s := New()
	observe(t, s, "bob", k1, Observation{Kind: KeyNew})
	if err := s.Verify("bob", k1); err != nil {
		t.Fatal(err)
	}
	expect(t, s, "bob", StateVerified, true)
	observe(t, s, "bob", k1, Observation{Kind: KeySame})

	observe(t, s, "bob", k2, Observation{Kind: KeyChanged, WasVerified: true, Blocked: true})
	expect(t, s, "bob", StateChanged, false)
	observe(t, s, "bob", k2, Observation{Kind: KeySame, Blocked: true})
	expect(t, s, "bob", StateChanged, false)
	c, _ := s.Contact("bob")
	if !bytes.Equal(c.Key, k2) || !bytes.Equal(c.Previous, k1) || !bytes.Equal(c.VerifiedKey, k1) {
		t.Fatalf("contact %+v", c)
	}
	if err := s.Verify("bob", k1); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("Verify with the old key: %v", err)
	}
	expect(t, s, "bob", StateChanged, false)
	if err := s.Verify("bob", k2); err != nil {
		t.Fatal(err)
	}
	expect(t, s, "bob", StateVerified, true)
}

// TestVerifiedChangeBlocksUntilTrust: Trust unblocks without verifying; a
// later change is then accepted as for any unverified contact.
func TestVerifiedChangeBlocksUntilTrust(t *testing.T) {
	s := New()
	observe(t, s, "bob", k1, Observation{Kind: KeyNew})
	s.Verify("bob", k1)
	observe(t, s, "bob", k2, Observation{Kind: KeyChanged, WasVerified: true, Blocked: true})
	expect(t, s, "bob", StateChanged, false)
	if err := s.Trust("bob"); err != nil {
		t.Fatal(err)
	}
	expect(t, s, "bob", StateUnverified, true)
	if c, _ := s.Contact("bob"); c.VerifiedKey != nil {
		t.Fatalf("verified key kept after Trust: %+v", c)
	}
	observe(t, s, "bob", k3, Observation{Kind: KeyChanged})
	expect(t, s, "bob", StateChanged, true)
}

// TestVerifiedKeyReturns: if the server swaps the key and then shows the
// verified one again, the contact is verified again.
func TestVerifiedKeyReturns(t *testing.T) {
	s := New()
	observe(t, s, "bob", k1, Observation{Kind: KeyNew})
	s.Verify("bob", k1)
	observe(t, s, "bob", k2, Observation{Kind: KeyChanged, WasVerified: true, Blocked: true})
	observe(t, s, "bob", k3, Observation{Kind: KeyChanged, WasVerified: true, Blocked: true})
	observe(t, s, "bob", k1, Observation{Kind: KeyChanged, WasVerified: true})
	expect(t, s, "bob", StateVerified, true)
}

// TestTrustKeepsVerified: Trust on an unchanged verified contact does not
// lower it; Trust on an unverified one is harmless.
func TestTrustKeepsVerified(t *testing.T) {
	s := New()
	observe(t, s, "bob", k1, Observation{Kind: KeyNew})
	observe(t, s, "carol", k2, Observation{Kind: KeyNew})
	s.Verify("bob", k1)
	if s.Trust("bob") != nil || s.Trust("carol") != nil {
		t.Fatal("Trust failed")
	}
	expect(t, s, "bob", StateVerified, true)
	expect(t, s, "carol", StateUnverified, true)
}

func TestUnknownUser(t *testing.T) {
	s := New()
	for name, err := range map[string]error{"Verify": s.Verify("bob", k1), "Trust": s.Trust("bob"), "AllowPlain": s.AllowPlain("bob")} {
		if !errors.Is(err, ErrUnknown) {
			t.Errorf("%s on unknown user: %v", name, err)
		}
	}
	if _, ok := s.Contact("bob"); ok || s.Plaintext("bob") || s.Len() != 0 {
		t.Fatal("unknown user shows up")
	}
}

// TestPlaintextOverride: ":plaintext: NAME" for a pinned contact lasts
// until a key is observed again.
func TestPlaintextOverride(t *testing.T) {
	s := New()
	observe(t, s, "bob", k1, Observation{Kind: KeyNew})
	if s.Plaintext("bob") {
		t.Fatal("plaintext allowed by default")
	}
	if err := s.AllowPlain("Bob"); err != nil {
		t.Fatal(err)
	}
	if !s.Plaintext("bob") {
		t.Fatal("AllowPlain not in force")
	}
	if c, _ := s.Contact("bob"); !c.Plaintext {
		t.Fatal("contact does not show it")
	}
	observe(t, s, "bob", k1, Observation{Kind: KeySame})
	if s.Plaintext("bob") {
		t.Fatal("allowance survived a key")
	}
}

// TestNamesFolded: Bob and bob are one contact, shown as first seen.
func TestNamesFolded(t *testing.T) {
	s := New()
	observe(t, s, "Bob", k1, Observation{Kind: KeyNew})
	observe(t, s, "bob", k1, Observation{Kind: KeySame})
	observe(t, s, "BOB", k2, Observation{Kind: KeyChanged})
	if c, _ := s.Contact("bOb"); c.User != "Bob" || s.Len() != 1 {
		t.Fatalf("contact %+v, %d contacts", c, s.Len())
	}
}

func TestBadInput(t *testing.T) {
	s := New()
	for _, u := range []string{"", "a b", "toolongusername1", "quit", "bob\n", "é"} {
		if _, err := s.Observe(u, k1); !errors.Is(err, wire.ErrUserName) && !errors.Is(err, wire.ErrReservedName) {
			t.Errorf("Observe(%q): %v", u, err)
		}
	}
	for _, k := range [][]byte{nil, {}, make([]byte, MaxKeyBytes+1)} {
		if _, err := s.Observe("bob", k); !errors.Is(err, ErrKey) {
			t.Errorf("key of %d bytes: %v", len(k), err)
		}
	}
	if s.Len() != 0 {
		t.Fatal("bad input stored")
	}
	observe(t, s, "bob", make([]byte, MaxKeyBytes), Observation{Kind: KeyNew})
}

// TestFull: the MaxContacts+1st contact is refused with ErrFull; known
// contacts still work; a full store survives Marshal/Unmarshal.
func TestFull(t *testing.T) {
	s := New()
	for i := 0; i < MaxContacts; i++ {
		if _, err := s.Observe(fmt.Sprintf("u%d", i), k1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Observe("onemore", k1); !errors.Is(err, ErrFull) {
		t.Fatalf("contact %d: %v", MaxContacts+1, err)
	}
	observe(t, s, "u7", k2, Observation{Kind: KeyChanged})
	b := s.Marshal()
	u, err := Unmarshal(b)
	if err != nil || u.Len() != MaxContacts || !bytes.Equal(u.Marshal(), b) {
		t.Fatalf("full store round trip: %v", err)
	}
	t.Logf("a full store marshals to %d bytes", len(b))
}

func sample(t *testing.T) *Store {
	s := New()
	observe(t, s, "alice", k1, Observation{Kind: KeyNew})
	observe(t, s, "Bob", k1, Observation{Kind: KeyNew})
	s.Verify("bob", k1)
	observe(t, s, "bob", k2, Observation{Kind: KeyChanged, WasVerified: true, Blocked: true})
	observe(t, s, "carol", k3, Observation{Kind: KeyNew})
	s.Verify("carol", k3)
	observe(t, s, "dave", k1, Observation{Kind: KeyNew})
	observe(t, s, "dave", k2, Observation{Kind: KeyChanged})
	s.AllowPlain("dave")
	return s
}

func TestMarshalRoundTrip(t *testing.T) {
	s := sample(t)
	b := s.Marshal()
	u, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(u.Contacts(), s.Contacts()) {
		t.Fatalf("round trip:\n%+v\n%+v", u.Contacts(), s.Contacts())
	}
	if !bytes.Equal(u.Marshal(), b) || !bytes.Equal(sample(t).Marshal(), b) {
		t.Fatal("Marshal is not deterministic")
	}
	expect(t, u, "bob", StateChanged, false)
	expect(t, u, "carol", StateVerified, true)
	if !u.Plaintext("dave") {
		t.Fatal("plaintext allowance lost")
	}
	e, err := Unmarshal(New().Marshal())
	if err != nil || e.Len() != 0 {
		t.Fatalf("empty store: %v", err)
	}
}

// TestUnmarshalRejects: every truncation, trailing bytes, a bad header,
// names out of order or twice, invalid names, unknown flags, empty or
// oversized keys, too many contacts: all ErrFormat.
func TestUnmarshalRejects(t *testing.T) {
	good := sample(t).Marshal()
	reject := func(what string, b []byte) {
		t.Helper()
		if s, err := Unmarshal(b); !errors.Is(err, ErrFormat) || s != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	for n := 0; n < len(good); n++ {
		reject(fmt.Sprintf("cut to %d", n), good[:n])
	}
	reject("trailing byte", append(bytes.Clone(good), 0))
	b := bytes.Clone(good)
	b[7] = 2
	reject("version 2", b)

	entry := func(name string, flags byte, keys ...[]byte) []byte {
		e := append([]byte{byte(len(name))}, name...)
		e = append(e, flags)
		for _, k := range keys {
			e = binary.BigEndian.AppendUint16(e, uint16(len(k)))
			e = append(e, k...)
		}
		return e
	}
	store := func(entries ...[]byte) []byte {
		b := binary.BigEndian.AppendUint32(bytes.Clone(magic), uint32(len(entries)))
		for _, e := range entries {
			b = append(b, e...)
		}
		return b
	}
	if _, err := Unmarshal(store(entry("a", 0, k1, nil, nil), entry("b", 3, k2, k1, k1))); err != nil {
		t.Fatalf("hand-made valid store: %v", err)
	}
	reject("out of order", store(entry("b", 0, k1, nil, nil), entry("a", 0, k1, nil, nil)))
	reject("twice", store(entry("a", 0, k1, nil, nil), entry("a", 0, k1, nil, nil)))
	reject("twice, folded", store(entry("A", 0, k1, nil, nil), entry("a", 0, k1, nil, nil)))
	reject("bad name", store(entry("a b", 0, k1, nil, nil)))
	reject("empty name", store(entry("", 0, k1, nil, nil)))
	reject("255-byte name", store(entry(strings.Repeat("a", 255), 0, k1, nil, nil))) // once a panic (1+255 in a byte)
	reject("reserved name", store(entry("quit", 0, k1, nil, nil)))
	reject("unknown flag", store(entry("a", 4, k1, nil, nil)))
	reject("empty key", store(entry("a", 0, nil, nil, nil)))
	reject("long key", store(entry("a", 0, make([]byte, MaxKeyBytes+1), nil, nil)))
	reject("long previous", store(entry("a", 0, k1, make([]byte, MaxKeyBytes+1), nil)))
	big := binary.BigEndian.AppendUint32(bytes.Clone(magic), MaxContacts+1)
	reject("too many", big)
}

// TestConcurrentUse runs observations, checks and Marshal from several
// goroutines (meaningful under -race).
func TestConcurrentUse(t *testing.T) {
	s := New()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				u := fmt.Sprintf("u%d", i%10)
				k := []byte{byte(g), byte(i % 3)}
				s.Observe(u, k)
				s.SendAllowed(u)
				if i%7 == 0 {
					s.Verify(u, k)
				}
				if i%50 == 0 {
					if _, err := Unmarshal(s.Marshal()); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if s.Len() != 10 {
		t.Fatalf("%d contacts", s.Len())
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add(New().Marshal())
	s := New()
	s.Observe("alice", k1)
	s.Observe("bob", k1)
	s.Verify("bob", k1)
	s.Observe("bob", k2)
	s.AllowPlain("alice")
	f.Add(s.Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := Unmarshal(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v is not ErrFormat", err)
			}
			return
		}
		// Unmarshal accepts only canonical encodings.
		if !bytes.Equal(u.Marshal(), b) {
			t.Fatalf("Marshal(Unmarshal(%x)) differs", b)
		}
		for _, c := range u.Contacts() {
			u.SendAllowed(c.User)
		}
	})
}
