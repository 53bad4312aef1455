package messenger

// End-to-end encryption in the interactive session (PROTOCOL.md
// "End-to-end encryption"; the cryptography is package e2e's).
//
// Keys: the client binary opens the user's key store once per process,
// after the first log-in (OpenKeys in e2ekeys.go, under
// Options.ConfigDir/<server-cert-sha256>/<user>/, unlocked with the
// log-in password or --key-passphrase) and passes it as Options.Keys.
// Every session then publishes the bundle (SETKEY) before it reads input,
// rotating the signed prekey when fewer than SPKRotateBefore are left.
// With Options.Keys nil, a server without the key directory (no ALPN
// sslm/3) or --e2e=off, everything is plaintext, as before.
//
// API for the session's other end-to-end features (files, group). Input
// loop only, unless said otherwise:
//
//	s.e2eOn() bool
//		the session can seal: keys loaded, directory there, policy not off.
//		Any goroutine.
//	s.identity() *e2e.Identity
//		the user's identity (nil when !e2eOn()). Any goroutine.
//	s.sealer() *e2e.Sealer / s.opener() *e2e.Opener
//		ready for this user (Name is the name as the server registered it;
//		the opener finds every held prekey). Any goroutine.
//	s.peerKey(user) (*e2e.Bundle, trustInfo, error)
//		user's bundle, fetched once per session (GETKEY, kept up to date by
//		KEYCHANGE) and pinned in the trust store (first key silently,
//		changes per BTBV, with the warning printed once by the receiver).
//		err nil: seal to the bundle (its prekey is fresh). errNoKey: the
//		user has no key and plaintext is allowed by the trust store (never
//		pinned, or :plaintext: NAME); the caller applies the policy
//		(s.plainAllowed). Any other error (a *keyRefusal, errNoDirectory,
//		the connection's) is the reason not to send, to show as it is.
//	s.peerIdentity(user) (e2e.PublicIdentity, bool)
//		the pinned identity to open what user sent (Opener.Open,
//		DecryptFile); any goroutine, no network.
//	s.reserveSeq(peer, n) (uint64, error)
//		n consecutive sequence numbers for envelopes to peer (on disk
//		before it returns). Any goroutine.
//	s.checkReplay(from, fromKey, m) (gap uint64, err error)
//		the replay window for an opened message (e2e.ErrReplay,
//		e2e.ErrTooOld); gap > 0: that many messages may be missing.
//		Receiver.
//	s.plainAllowed(user) (ok bool, reason string)
//		whether the policy lets plaintext go to user (a keyless user,
//		errNoKey from peerKey), and the refusal otherwise.
//	s.markPlain(user) string
//		the "[plain]" tag, after printing the once-per-contact notice
//		that the server operator can read it.
//	trustInfo.Label()
//		"e2e, verified", "e2e, unverified", "e2e, KEY CHANGED", "plain".
//
// Incoming words (RELAY, RELAYQ and carbons whose text is an e2e1. word)
// are opened in the receiver by e2eShow (e2edm.go), which dispatches on
// the message kind; kinds other than text are for the files and group
// code to add there.

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"sslmessager/internal/e2e"
	"sslmessager/internal/e2e/trust"
	"sslmessager/internal/wire"
)

// E2EPolicy is what the session does about plaintext (--e2e).
type E2EPolicy int

const (
	// E2EPrefer (the default) encrypts to every user with a key and sends
	// plaintext only to users without one, every such line tagged
	// "[plain]".
	E2EPrefer E2EPolicy = iota
	// E2ERequire refuses plaintext: no message goes to a user without a
	// key, nor through a server without a key directory.
	E2ERequire
	// E2EOff sends and shows everything as plaintext, as the original
	// client does; the key store is not used.
	E2EOff
)

// ParseE2EPolicy parses "prefer", "require" or "off".
func ParseE2EPolicy(s string) (E2EPolicy, error) {
	switch strings.ToLower(s) {
	case "prefer", "":
		return E2EPrefer, nil
	case "require":
		return E2ERequire, nil
	case "off":
		return E2EOff, nil
	}
	return 0, fmt.Errorf("--e2e %q: want prefer, require or off", s)
}

func (p E2EPolicy) String() string {
	switch p {
	case E2ERequire:
		return "require"
	case E2EOff:
		return "off"
	}
	return "prefer"
}

// KeyTimeout bounds the wait for the answer to SETKEY or GETKEY.
const KeyTimeout = 30 * time.Second

var (
	// errNoKey: the user has no key, and nothing forbids plaintext to
	// them but the policy.
	errNoKey = errors.New("no end-to-end key")
	// errNoDirectory: the session cannot seal at all.
	errNoDirectory = errors.New("end-to-end encryption is not available on this server")
)

// keyRefusal is why a message to a user is not sent although (or because)
// they have a key: blocked after a key change, a key withdrawn, a stale
// prekey, a key the server sent that does not verify.
type keyRefusal struct{ reason string }

func (e *keyRefusal) Error() string { return e.reason }

// trustInfo is what the session knows of a contact's key.
type trustInfo struct {
	Keyed    bool        // the contact has a key in the directory
	State    trust.State // 0: not pinned
	Blocked  bool        // key changed after verification: no sending
	Fetched  bool        // the directory was asked this session
	Withheld bool        // pinned, but the directory has no key now
}

// Label is the conversation's encryption state as the prompt shows it.
func (t trustInfo) Label() string {
	switch {
	case !t.Fetched:
		return ""
	case t.Blocked:
		return "e2e, KEY CHANGED – blocked"
	case t.Keyed && t.State == trust.StateVerified:
		return "e2e, verified"
	case t.Keyed && t.State == trust.StateChanged:
		return "e2e, key changed"
	case t.Keyed:
		return "e2e, unverified"
	case t.Withheld:
		return "key withdrawn"
	}
	return "plain"
}

// e2eSession is the end-to-end state of one session.
type e2eSession struct {
	keys   *Keys // nil: no end-to-end here
	policy E2EPolicy
	dir    bool // the server has a key directory

	mu       sync.Mutex
	peers    map[string]*peerEntry   // by folded name
	pending  map[string][]wire.Query // lines waiting for their sender's key, by folded name
	noticed  map[string]bool         // folded name → "[unverified]" or the plaintext notice shown
	ownSeqs  map[uint64]bool         // self-copies this session sent, not to show again
	cntDup   int                     // CNT answers still to fold into the one shown
	asm      e2e.Assembler           // receiver only
	lastSave time.Time               // receiver only: the last flush of replay windows
}

// peerEntry is one user's directory entry as this session saw it.
type peerEntry struct {
	asked   bool          // GETKEY sent
	fetched chan struct{} // closed at the first KEY
	bundle  *e2e.Bundle   // nil: no bundle
	err     error         // the bundle the server sent does not verify
	retried bool          // refetched once after a word sealed by another key
}

func newE2ESession(opts Options, c *Conn) *e2eSession {
	e := &e2eSession{policy: opts.E2E, dir: c.KeyDirectory(),
		peers: map[string]*peerEntry{}, pending: map[string][]wire.Query{},
		noticed: map[string]bool{}, ownSeqs: map[uint64]bool{}}
	if opts.E2E != E2EOff {
		e.keys = opts.Keys
	}
	return e
}

// e2eOn says whether the session can seal and open.
func (s *session) e2eOn() bool { return s.e2e.keys != nil && s.e2e.dir }

// identity is the user's identity, nil when !e2eOn().
func (s *session) identity() *e2e.Identity {
	if !s.e2eOn() {
		return nil
	}
	return s.e2e.keys.id
}

// sealer seals from this user.
func (s *session) sealer() *e2e.Sealer {
	return &e2e.Sealer{Self: s.e2e.keys.id, Name: s.c.user}
}

// opener opens what was sealed to this user, with every held prekey.
func (s *session) opener() *e2e.Opener {
	return &e2e.Opener{Self: s.e2e.keys.id, Name: s.c.user, Prekeys: s.e2e.keys.prekey}
}

// reserveSeq reserves n sequence numbers for envelopes to peer.
func (s *session) reserveSeq(peer string, n int) (uint64, error) {
	return s.e2e.keys.reserveSeq(peer, n)
}

// checkReplay runs from's replay window on m and saves the windows now and
// then (and at the end of the session).
func (s *session) checkReplay(from string, fromKey e2e.PublicIdentity, m *e2e.Message) (uint64, error) {
	gap, err := s.e2e.keys.checkReplay(from, fromKey, m)
	if now := time.Now(); now.Sub(s.e2e.lastSave) > time.Second {
		s.e2e.lastSave = now
		if err := s.e2e.keys.flushWindows(); err != nil {
			s.out.line("! cannot save the replay windows: " + Sanitize(err.Error()))
		}
	}
	return gap, err
}

// entry returns user's directory entry, making it.
func (e *e2eSession) entry(user string) *peerEntry {
	key := wire.FoldName(user)
	p := e.peers[key]
	if p == nil {
		p = &peerEntry{fetched: make(chan struct{})}
		e.peers[key] = p
	}
	return p
}

// publishKey sends this user's bundle (SETKEY) and waits for the answer,
// in the input loop before the first line is read. A refusal is shown:
// others cannot encrypt to this user then, but sending still works.
func (s *session) publishKey() error {
	if !s.e2eOn() {
		return nil
	}
	b, _, err := s.e2e.keys.bundle(s.c.user)
	if err != nil {
		s.out.line("! end-to-end key not published: " + Sanitize(err.Error()))
		return nil
	}
	ch, done := s.expectReplies()
	defer done()
	if err := s.c.send(wire.SetKey{Bundle: b.Encode(), Token: s.c.token}); err != nil {
		return err
	}
	q, err := s.awaitReply(ch, KeyTimeout, func(q wire.Query) bool {
		switch q := q.(type) {
		case wire.OK:
			return q.Text == wire.ReasonKeySaved
		case wire.No:
			return true
		}
		return false
	})
	if err != nil {
		if errors.Is(err, ErrConnectionClosed) {
			return nil // the receiver reports it
		}
		s.out.line("! end-to-end key not published: " + Sanitize(err.Error()))
		return nil
	}
	if no, ok := q.(wire.No); ok {
		s.out.line("! end-to-end key not published: " + Sanitize(no.Reason) + "; others cannot encrypt to you")
	}
	return nil
}

// rotateIfDue publishes a new prekey when the current one is near its end
// (a session that stays up for days), before a message is sealed.
func (s *session) rotateIfDue() error {
	if !s.e2eOn() {
		return nil
	}
	var due bool
	s.e2e.keys.view(func(st *keyState) {
		p := st.current()
		due = p == nil || p.Expires.Sub(s.e2e.keys.now()) <= SPKRotateBefore
	})
	if !due {
		return nil
	}
	return s.publishKey()
}

// fetchKey asks the directory for user's bundle, once per session, and
// waits for the answer.
func (s *session) fetchKey(user string) (*peerEntry, error) {
	s.e2e.mu.Lock()
	p := s.e2e.entry(user)
	ask := !p.asked
	p.asked = true
	fetched := p.fetched // retryKey may replace it
	s.e2e.mu.Unlock()
	if ask {
		if err := s.c.send(wire.GetKey{User: user, Token: s.c.token}); err != nil {
			return nil, err
		}
	}
	t := time.NewTimer(KeyTimeout)
	defer t.Stop()
	select {
	case <-fetched:
		return p, nil
	case <-s.recvGone:
		return nil, ErrConnectionClosed
	case <-s.cancel:
		return nil, errors.New("interrupted")
	case <-t.C:
		return nil, &keyRefusal{fmt.Sprintf("the key directory did not answer for %s within %v", user, KeyTimeout)}
	}
}

// peerKey returns user's bundle to seal to, or why not (see the API at
// the top of this file).
func (s *session) peerKey(user string) (*e2e.Bundle, trustInfo, error) {
	if !s.e2eOn() {
		return nil, trustInfo{}, errNoDirectory
	}
	p, err := s.fetchKey(user)
	if err != nil {
		return nil, trustInfo{}, err
	}
	// The bundle first, then the trust store: the receiver pins a new
	// bundle before it makes it the entry's, so the trust read after
	// knows of any bundle read here.
	s.e2e.mu.Lock()
	b, perr := p.bundle, p.err
	s.e2e.mu.Unlock()
	info := s.trustOf(user)
	if b != nil && perr == nil {
		// Seal only to the key the trust store pinned and clears for
		// sending: a change it could not record (the key store cannot
		// be written) must not go around a block.
		c, ok := s.e2e.keys.contact(user)
		switch {
		case !ok || !bytes.Equal(c.Key, safetyKeyOf(b.Identity())):
			return nil, info, &keyRefusal{user + "'s current key is not recorded in your trust store (it could not be saved); nothing is sent"}
		case c.Blocked:
			info.Blocked = true
		}
	}
	switch {
	case perr != nil:
		return nil, info, &keyRefusal{"the key the server sent for " + user + " is invalid (" + perr.Error() + "); nothing is sent"}
	case b == nil && info.State != 0 && !s.e2e.keys.plainAllowedByTrust(user):
		return nil, info, &keyRefusal{user + " had an end-to-end key, but the directory has none now (the server may be attacking); :plaintext: " + user + " sends in plaintext anyway"}
	case b == nil:
		return nil, info, errNoKey
	case info.Blocked:
		return nil, info, &keyRefusal{user + "'s key changed since you verified it: sending is blocked; compare the new safety number (:verify: " + user + ") or accept the new key (:trust: " + user + ")"}
	}
	stale, err := b.CheckSendable(s.e2e.keys.now())
	if err != nil {
		return nil, info, &keyRefusal{user + "'s published prekey cannot be used (" + err.Error() + "; " + user + " has not logged in for a long time): not sent"}
	}
	if stale {
		s.noteStale(user, b)
	}
	return b, info, nil
}

// noteStale tells once per contact and session that user's prekey has
// expired (user has not logged in since) and what that costs.
func (s *session) noteStale(user string, b *e2e.Bundle) {
	key := "stale\x00" + wire.FoldName(user)
	s.e2e.mu.Lock()
	first := !s.e2e.noticed[key]
	s.e2e.noticed[key] = true
	s.e2e.mu.Unlock()
	if first {
		name := Sanitize(user)
		s.out.line("! " + name + " has not logged in since about " + b.SPKExpires.Add(-SPKLifetime).Format("2006-01-02") + " (the published prekey expired " +
			b.SPKExpires.Format("2006-01-02") + "): messages still go encrypted, with weaker forward secrecy until " + name + " logs in again")
	}
}

// plainAllowedByTrust: the trust store allows plaintext to user (never
// pinned, or :plaintext: NAME).
func (k *Keys) plainAllowedByTrust(user string) bool {
	var ok bool
	k.view(func(st *keyState) {
		_, pinned := st.trust.Contact(user)
		ok = !pinned || st.trust.Plaintext(user)
	})
	return ok
}

// trustOf is what the session knows of user now, without the network.
func (s *session) trustOf(user string) trustInfo {
	var info trustInfo
	if !s.e2eOn() {
		return info
	}
	s.e2e.mu.Lock()
	if p := s.e2e.peers[wire.FoldName(user)]; p != nil {
		select {
		case <-p.fetched:
			info.Fetched = true
			info.Keyed = p.bundle != nil
		default:
		}
	}
	s.e2e.mu.Unlock()
	if c, ok := s.e2e.keys.contact(user); ok {
		info.State, info.Blocked = c.State, c.Blocked
		info.Withheld = info.Fetched && !info.Keyed
	}
	return info
}

// peerIdentity is the identity pinned for user: the directory's current
// key once fetched, else the trust store's pin.
func (s *session) peerIdentity(user string) (e2e.PublicIdentity, bool) {
	if !s.e2eOn() {
		return e2e.PublicIdentity{}, false
	}
	if isSelf(s, user) {
		// Self-copies: every device of a user holds the same identity
		// (keys export and import).
		return s.e2e.keys.id.PublicIdentity(), true
	}
	s.e2e.mu.Lock()
	p := s.e2e.peers[wire.FoldName(user)]
	var b *e2e.Bundle
	if p != nil {
		b = p.bundle
	}
	s.e2e.mu.Unlock()
	if b != nil {
		return b.Identity(), true
	}
	return s.e2e.keys.pinnedIdentity(user)
}

// plainAllowed says whether the policy lets a plaintext message go to user
// (who has no key), with the reason when not.
func (s *session) plainAllowed(user string) (bool, string) {
	if s.e2e.policy == E2ERequire {
		if !s.e2e.dir || s.e2e.keys == nil {
			return false, "this server has no key directory, and --e2e=require refuses plaintext"
		}
		return false, user + " has no end-to-end key, and --e2e=require refuses plaintext"
	}
	return true, ""
}

// markPlain returns the tag of a plaintext line to or from user, after
// printing once per contact that the server operator can read it. Only
// where end-to-end encryption is on: elsewhere everything is plaintext.
func (s *session) markPlain(user string) string {
	if !s.e2eOn() {
		return ""
	}
	key := wire.FoldName(user)
	s.e2e.mu.Lock()
	first := !s.e2e.noticed["plain\x00"+key]
	s.e2e.noticed["plain\x00"+key] = true
	s.e2e.mu.Unlock()
	if first {
		s.out.line("! " + Sanitize(user) + " has no end-to-end key: messages with " + Sanitize(user) + " are [plain], the server operator can read this")
	}
	return "[plain]"
}

// handleKeyLine acts on KEY and KEYCHANGE (receiver). It reports whether
// q was one.
func (s *session) handleKeyLine(q wire.Query) bool {
	var user, word string
	change := false
	switch q := q.(type) {
	case wire.Key:
		user, word = q.User, q.Bundle
	case wire.KeyChange:
		user, word, change = q.User, q.Bundle, true
	default:
		return false
	}
	if s.e2e.keys == nil {
		return true
	}
	var b *e2e.Bundle
	var berr error
	if word != "" {
		b, berr = e2e.ParseBundle(word)
		if berr == nil && wire.FoldName(b.User) != wire.FoldName(user) {
			b, berr = nil, fmt.Errorf("it is signed for %s", b.User)
		}
		if berr != nil {
			b = nil
			s.out.line("! the server sent an invalid end-to-end key for " + Sanitize(user) + ": " + Sanitize(berr.Error()))
		}
	}
	if b != nil {
		s.observeKey(user, b)
	}
	s.e2e.mu.Lock()
	p := s.e2e.entry(user)
	p.bundle, p.err = b, berr
	first := false
	select {
	case <-p.fetched:
	default:
		close(p.fetched)
		first = true
	}
	key := wire.FoldName(user)
	waiting := s.e2e.pending[key]
	delete(s.e2e.pending, key)
	wasPlain := s.e2e.noticed["plain\x00"+key]
	if b != nil {
		delete(s.e2e.noticed, "plain\x00"+key)
	}
	s.e2e.mu.Unlock()
	switch {
	case change && !first && word == "":
		if _, pinned := s.e2e.keys.contact(user); pinned {
			s.out.line("! " + Sanitize(user) + "'s end-to-end key was withdrawn from the directory")
		}
	case b != nil && wasPlain:
		s.out.line(Sanitize(user) + " has an end-to-end key now: messages with " + Sanitize(user) + " are encrypted from here on")
	}
	s.updatePromptLater()
	for _, w := range waiting {
		s.show(w)
	}
	return true
}

// observeKey pins b in the trust store and warns about a change.
func (s *session) observeKey(user string, b *e2e.Bundle) {
	var obs trust.Observation
	err := s.e2e.keys.trustDo(func(t *trust.Store) error {
		var err error
		obs, err = t.Observe(user, safetyKeyOf(b.Identity()))
		return err
	})
	if err != nil {
		s.out.line("! cannot record " + Sanitize(user) + "'s end-to-end key: " + Sanitize(err.Error()))
		return
	}
	if obs.Kind != trust.KeyChanged {
		return
	}
	name := Sanitize(user)
	if obs.Blocked {
		s.out.line("! WARNING: " + name + "'s end-to-end key CHANGED since you verified it. Sending to " + name +
			" is blocked until you compare the new safety number (:verify: " + name + ") or accept the key (:trust: " + name + ").")
	} else {
		s.out.line("! " + name + "'s end-to-end key changed (a new device, or someone else): the safety number is new; compare it with :verify: " + name)
	}
	s.updatePromptLater()
}

// updatePromptLater refreshes the prompt from the receiver (terminal mode
// only; the input loop owns target and group, so it reads kept).
func (s *session) updatePromptLater() {
	if s.term == nil {
		return
	}
	s.keptMu.Lock()
	k := s.kept
	s.keptMu.Unlock()
	if !k.group && k.target != "" {
		// The terminal's own lock guards this; the input loop's copy of
		// the prompt is set again at its next updatePrompt.
		s.term.SetPrompt(s.promptFor(k.target))
	}
}

// promptFor is the prompt of a conversation with target: its name and,
// where end-to-end encryption is on, its state: "bob [e2e, verified]> ".
func (s *session) promptFor(target string) string {
	p := Sanitize(target)
	if l := s.trustOf(target).Label(); l != "" {
		p += " [" + l + "]"
	}
	return p + "> "
}

// noteConversation prints, once per conversation and session, that user's
// key is pinned but not verified. Any goroutine.
func (s *session) noteConversation(user string) {
	info := s.trustOf(user)
	if info.State != trust.StateUnverified && info.State != trust.StateChanged {
		return
	}
	key := wire.FoldName(user)
	s.e2e.mu.Lock()
	first := !s.e2e.noticed[key]
	s.e2e.noticed[key] = true
	s.e2e.mu.Unlock()
	if first {
		s.out.line(Sanitize(user) + " [unverified]: messages are end-to-end encrypted; compare safety numbers with :verify: " + Sanitize(user))
	}
}

// targetChanged fetches the new target's key so the prompt shows its state
// (input loop).
func (s *session) targetChanged() {
	if !s.e2eOn() || s.target == "" {
		return
	}
	switch _, _, err := s.peerKey(s.target); {
	case err == nil:
		s.noteConversation(s.target)
	case errors.Is(err, errNoKey):
		s.markPlain(s.target)
	}
	s.in.setPrompt(s.promptFor(s.target))
}

// endE2E saves what the session changed (at its end).
func (s *session) endE2E() {
	if s.e2e.keys != nil {
		s.e2e.keys.releaseSeqs() // the unused sequence numbers of its blocks
		s.e2e.keys.flushWindows()
	}
}
