// Package trust is the client's trust store: for each contact the identity
// key it pinned and how far the user trusts it, with trust on first use
// (TOFU) and blind trust before verification (BTBV):
//
//   - The first key seen for a user is pinned silently (StateUnverified).
//   - A new key for a contact never verified replaces the pin at once and
//     marks the contact StateChanged: the caller warns, sending goes on.
//   - Once the user verified a key (compared the safety number), a
//     different key marks the contact StateChanged and blocked: SendAllowed
//     is false until the user verifies the new key (Verify) or accepts it
//     unverified (Trust). Should the verified key come back, the contact is
//     verified again.
//
// Users are named as on the server; the store keys them by wire.FoldName,
// so Bob and bob are one contact. Keys are opaque bytes (1 to MaxKeyBytes):
// the client passes the safety-number encoding of the identity
// (safety.EncodeIdentityKey), so the pin covers the signing and the DH key.
// Whether the "[unverified]" notice was shown this session is the
// caller's business, not stored here.
//
// Persistence: Marshal and Unmarshal turn the store into bytes and back.
// The client keeps these bytes as a section of the key store's state
// (keystore.Store.SaveState), so pins are encrypted and authenticated at
// rest along with the other per-contact state, and a file editor cannot
// swap a pin unseen. The encoding:
//
//	"sslm-tr\x01" ‖ count (u32) ‖ count × contact, sorted by folded name
//	contact = name length (u8) ‖ name ‖ flags (u8: 1 changed, 2 plaintext)
//	          ‖ key ‖ previous key ‖ verified key, each u16 length ‖ bytes
//
// with big-endian integers, at most MaxContacts contacts and nothing after.
// A Store is safe for concurrent use.
package trust

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"sslmessager/internal/wire"
)

// Limits: contacts in one store and bytes in one key. More contacts is
// ErrFull; a longer or empty key is ErrKey. MaxContacts × the largest
// contact stays below 5 MB of Marshal output.
const (
	MaxContacts = 10000
	MaxKeyBytes = 128
)

// Errors of the store. Invalid user names give wire.ErrUserName or
// wire.ErrReservedName.
var (
	ErrUnknown     = errors.New("trust: no key pinned for this user")
	ErrFull        = fmt.Errorf("trust: store full (%d contacts)", MaxContacts)
	ErrKey         = fmt.Errorf("trust: identity keys are 1 to %d bytes", MaxKeyBytes)
	ErrKeyMismatch = errors.New("trust: the key changed since its safety number was shown; compare again")
	ErrFormat      = errors.New("trust: malformed trust store")
)

// State is how far the user trusts a contact's current key.
type State uint8

// Contact states.
const (
	// StateUnverified: pinned on first sight (or accepted with Trust), not
	// compared by the user.
	StateUnverified State = iota + 1
	// StateVerified: the user compared the safety number of the current key.
	StateVerified
	// StateChanged: the key changed. Sending is blocked when the contact
	// had been verified (Contact.Blocked), allowed otherwise.
	StateChanged
)

func (s State) String() string {
	switch s {
	case StateUnverified:
		return "unverified"
	case StateVerified:
		return "verified"
	case StateChanged:
		return "changed"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Kind says what Observe found.
type Kind uint8

// Observe results.
const (
	KeyNew     Kind = iota + 1 // no pin before: the key is now pinned
	KeySame                    // the key is the pinned one
	KeyChanged                 // another key than the pinned one: now pinned
)

func (k Kind) String() string {
	switch k {
	case KeyNew:
		return "new"
	case KeySame:
		return "same"
	case KeyChanged:
		return "changed"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Observation is what Observe reports.
type Observation struct {
	Kind Kind
	// WasVerified: the contact had a verified key before this
	// observation (KeyChanged only).
	WasVerified bool
	// Blocked: sending to the contact is refused now (SendAllowed false).
	Blocked bool
}

// Contact is a snapshot of one contact.
type Contact struct {
	User        string // the name as first observed
	Key         []byte // current key: the last one observed
	Previous    []byte // the key before the last change; nil if none
	VerifiedKey []byte // the key the user verified; nil if none
	State       State
	Blocked     bool // key changed after verification: no sending
	Plaintext   bool // the user allowed plaintext (AllowPlain)
}

const (
	flagChanged   = 1
	flagPlaintext = 2
	knownFlags    = flagChanged | flagPlaintext
)

type contact struct {
	user                    string
	key, previous, verified []byte
	flags                   uint8
}

func (c *contact) state() (State, bool) {
	switch {
	case c.verified != nil && bytes.Equal(c.key, c.verified):
		return StateVerified, false
	case c.verified != nil:
		return StateChanged, true
	case c.flags&flagChanged != 0:
		return StateChanged, false
	}
	return StateUnverified, false
}

// Store is the trust store. The zero value is not usable: call New or
// Unmarshal.
type Store struct {
	mu       sync.Mutex
	contacts map[string]*contact // by wire.FoldName(user)
	max      int
}

// New returns an empty store.
func New() *Store {
	return &Store{contacts: make(map[string]*contact), max: MaxContacts}
}

func checkKey(key []byte) error {
	if len(key) == 0 || len(key) > MaxKeyBytes {
		return ErrKey
	}
	return nil
}

// Observe records that the directory (or a message) shows key as user's
// identity key and reports what that means; see the package comment for
// the rules. Any observed key also withdraws a plaintext allowance
// (AllowPlain): the user has a key again. Errors: a bad user name, ErrKey,
// ErrFull for a new contact in a full store; the store is unchanged then.
func (s *Store) Observe(user string, key []byte) (Observation, error) {
	if err := wire.CheckUserName(user); err != nil {
		return Observation{}, err
	}
	if err := checkKey(key); err != nil {
		return Observation{}, err
	}
	fold := wire.FoldName(user)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.contacts[fold]
	if c == nil {
		if len(s.contacts) >= s.max {
			return Observation{}, ErrFull
		}
		s.contacts[fold] = &contact{user: user, key: bytes.Clone(key)}
		return Observation{Kind: KeyNew}, nil
	}
	c.flags &^= flagPlaintext
	if bytes.Equal(c.key, key) {
		_, blocked := c.state()
		return Observation{Kind: KeySame, Blocked: blocked}, nil
	}
	c.previous, c.key = c.key, bytes.Clone(key)
	c.flags |= flagChanged
	_, blocked := c.state()
	return Observation{Kind: KeyChanged, WasVerified: c.verified != nil, Blocked: blocked}, nil
}

// Verify marks user's current key verified, after the user compared the
// safety number computed from key. key must be the current key
// (Contact.Key): if another key was observed since the number was shown,
// Verify fails with ErrKeyMismatch and changes nothing. ErrUnknown when no
// key is pinned.
func (s *Store) Verify(user string, key []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.contacts[wire.FoldName(user)]
	if c == nil {
		return ErrUnknown
	}
	if !bytes.Equal(c.key, key) {
		return ErrKeyMismatch
	}
	c.verified = bytes.Clone(c.key)
	c.flags &^= flagChanged
	return nil
}

// Trust accepts user's current key without verification: a changed
// contact (blocked or not) becomes StateUnverified and sending is allowed.
// A verified contact whose key did not change stays verified. ErrUnknown
// when no key is pinned.
func (s *Store) Trust(user string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.contacts[wire.FoldName(user)]
	if c == nil {
		return ErrUnknown
	}
	if st, _ := c.state(); st == StateChanged {
		c.verified = nil
		c.flags &^= flagChanged
	}
	return nil
}

// AllowPlain records the ":plaintext: NAME" override: the user allows
// plaintext to a pinned contact whose directory entry vanished. It lasts
// until a key for the user is observed again. ErrUnknown when no key is
// pinned (an unpinned user without a key needs no override).
func (s *Store) AllowPlain(user string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.contacts[wire.FoldName(user)]
	if c == nil {
		return ErrUnknown
	}
	c.flags |= flagPlaintext
	return nil
}

// Plaintext reports whether AllowPlain is in force for user.
func (s *Store) Plaintext(user string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.contacts[wire.FoldName(user)]
	return c != nil && c.flags&flagPlaintext != 0
}

// SendAllowed reports whether messages may be sealed to user's current
// key: false only for a verified contact whose key changed, until Verify
// or Trust. True for a user with no pin (the caller pins before sending).
func (s *Store) SendAllowed(user string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.contacts[wire.FoldName(user)]
	if c == nil {
		return true
	}
	_, blocked := c.state()
	return !blocked
}

// State returns user's state; ok is false when no key is pinned.
func (s *Store) State(user string) (st State, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.contacts[wire.FoldName(user)]
	if c == nil {
		return 0, false
	}
	st, _ = c.state()
	return st, true
}

// Contact returns a snapshot of user's entry; ok is false when no key is
// pinned.
func (s *Store) Contact(user string) (Contact, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.contacts[wire.FoldName(user)]
	if c == nil {
		return Contact{}, false
	}
	return c.snapshot(), true
}

func (c *contact) snapshot() Contact {
	st, blocked := c.state()
	return Contact{
		User: c.user, Key: bytes.Clone(c.key), Previous: bytes.Clone(c.previous), VerifiedKey: bytes.Clone(c.verified),
		State: st, Blocked: blocked, Plaintext: c.flags&flagPlaintext != 0,
	}
}

// Contacts returns snapshots of all contacts, sorted by folded name.
func (s *Store) Contacts() []Contact {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Contact, 0, len(s.contacts))
	for _, k := range s.sortedKeys() {
		out = append(out, s.contacts[k].snapshot())
	}
	return out
}

// Len returns the number of contacts.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.contacts)
}

// sortedKeys returns the folded names in order; must hold s.mu.
func (s *Store) sortedKeys() []string {
	keys := make([]string, 0, len(s.contacts))
	for k := range s.contacts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

var magic = []byte("sslm-tr\x01")

// Marshal returns the store's encoding (see the package comment). Equal
// stores give equal bytes.
func (s *Store) Marshal() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := append([]byte(nil), magic...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.contacts)))
	for _, k := range s.sortedKeys() {
		c := s.contacts[k]
		b = append(b, byte(len(c.user)))
		b = append(b, c.user...)
		b = append(b, c.flags)
		for _, f := range [][]byte{c.key, c.previous, c.verified} {
			b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
			b = append(b, f...)
		}
	}
	return b
}

// Unmarshal parses bytes from Marshal. Anything else, including empty
// input, trailing bytes, more than MaxContacts contacts, an invalid name,
// a name twice or out of order, or a key longer than MaxKeyBytes, is
// ErrFormat (wrapped with what was wrong).
func Unmarshal(b []byte) (*Store, error) {
	bad := func(format string, a ...any) (*Store, error) {
		return nil, fmt.Errorf("%w: %s", ErrFormat, fmt.Sprintf(format, a...))
	}
	if len(b) < len(magic)+4 || !bytes.Equal(b[:len(magic)], magic) {
		return bad("no header")
	}
	n := binary.BigEndian.Uint32(b[len(magic):])
	b = b[len(magic)+4:]
	if n > MaxContacts {
		return bad("%d contacts, limit %d", n, MaxContacts)
	}
	s := New()
	prev := ""
	for i := uint32(0); i < n; i++ {
		if len(b) < 1 || len(b) < 1+int(b[0])+1 {
			return bad("contact %d cut short", i)
		}
		nameEnd := 1 + int(b[0])
		c := &contact{user: string(b[1:nameEnd])}
		b = b[nameEnd:]
		if err := wire.CheckUserName(c.user); err != nil {
			return bad("contact %d: %v", i, err)
		}
		fold := wire.FoldName(c.user)
		if i > 0 && fold <= prev {
			return bad("contact %q out of order or twice", c.user)
		}
		prev = fold
		c.flags, b = b[0], b[1:]
		if c.flags&^knownFlags != 0 {
			return bad("contact %q: unknown flags %#x", c.user, c.flags)
		}
		fields := []*[]byte{&c.key, &c.previous, &c.verified}
		for j, f := range fields {
			if len(b) < 2 {
				return bad("contact %q cut short", c.user)
			}
			l := int(binary.BigEndian.Uint16(b))
			if l > MaxKeyBytes || len(b) < 2+l || j == 0 && l == 0 {
				return bad("contact %q: key %d of %d bytes", c.user, j, l)
			}
			if l > 0 {
				*f = bytes.Clone(b[2 : 2+l])
			}
			b = b[2+l:]
		}
		s.contacts[fold] = c
	}
	if len(b) != 0 {
		return bad("%d bytes after the last contact", len(b))
	}
	return s, nil
}
