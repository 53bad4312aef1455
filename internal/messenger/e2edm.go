package messenger

import (
	"errors"
	"fmt"
	"time"

	"sslmessager/internal/e2e"
	"sslmessager/internal/e2e/trust"
	"sslmessager/internal/wire"
)

// Direct messages end to end (PROTOCOL.md "End-to-end encryption"): a text
// to a user with a key is sealed into one e2e1. word per part
// (e2e.SealText splits long texts), each sent as the text of a MSG; the
// server relays or queues it as it is. A copy sealed to the sender's own
// identity (peer: the recipient) goes to the sender's own user, so its
// other sessions show "you → bob (other session)"; the carbon of the
// word to bob, which they cannot open, is not shown.

// maxOwnSeqs bounds the self-copies a session remembers sending.
const maxOwnSeqs = 4096

// sendDirect sends text to the target (input loop). handled is false when
// the message is to go as plaintext as before (no end-to-end here, or a
// keyless target the policy allows); tag is then the label's tag.
func (s *session) sendDirect(target, text string) (handled bool, tag string, err error) {
	if s.e2e.keys == nil || !s.e2e.dir {
		if ok, why := s.plainAllowed(target); !ok {
			s.refused("! message not sent: " + Sanitize(why))
			return true, "", nil
		}
		return false, "", nil
	}
	if err := s.rotateIfDue(); err != nil {
		return true, "", err
	}
	b, _, err := s.peerKey(target)
	switch {
	case errors.Is(err, errNoKey):
		if ok, why := s.plainAllowed(target); !ok {
			s.refused("! message not sent: " + Sanitize(why))
			return true, "", nil
		}
		return false, s.markPlain(target), nil
	case err != nil:
		var kr *keyRefusal
		if errors.As(err, &kr) {
			s.refused("! message not sent: " + Sanitize(kr.reason))
			s.updatePrompt()
			return true, "", nil
		}
		return true, "", err
	}
	s.noteConversation(target)
	if err := s.sealAndSend(target, b, text); err != nil {
		var se *sealError
		if errors.As(err, &se) {
			s.refused("! message not sent: " + Sanitize(se.Error()))
			return true, "", nil
		}
		return true, "", err
	}
	return true, "", nil
}

// sealError is a message that could not be sealed (not a connection
// failure).
type sealError struct{ err error }

func (e *sealError) Error() string { return "cannot encrypt: " + e.err.Error() }

// sealAndSend seals text to b (the bundle of target) and to this user's
// own identity, and sends both.
func (s *session) sealAndSend(target string, b *e2e.Bundle, text string) error {
	dm, err := sealDirect(s.e2e.keys, s.c.user, target, b, text, s.opts.Now(), true)
	if err != nil {
		return &sealError{err}
	}
	s.e2e.mu.Lock()
	if len(s.e2e.ownSeqs) > maxOwnSeqs {
		clear(s.e2e.ownSeqs)
	}
	for i := range len(dm.msgs) - dm.parts {
		s.e2e.ownSeqs[dm.ownFirst+uint64(i)] = true
	}
	s.e2e.cntDup = dm.parts - 1
	s.e2e.mu.Unlock()

	s.lastMu.Lock()
	s.lastSent = target
	s.lastMu.Unlock()
	s.remember("you → "+target, text)
	// One write: the parts go out together, no other line between them.
	qs := make([]wire.Query, 0, len(dm.msgs))
	for _, m := range dm.msgs {
		m.Token = s.c.token
		qs = append(qs, m)
	}
	if err := s.c.sendAll(qs...); err != nil {
		return err
	}
	s.unsynced = true
	return nil
}

// foldCNT reports whether a CNT answer is one of the repeats a text sent
// in several parts gets (only the first is shown).
func (s *session) foldCNT() bool {
	s.e2e.mu.Lock()
	defer s.e2e.mu.Unlock()
	if s.e2e.cntDup > 0 {
		s.e2e.cntDup--
		return true
	}
	return false
}

// e2eShow shows a conversation line that carries an e2e1. word, or a
// plaintext line with its tag, and reports whether it handled q
// (receiver).
func (s *session) e2eShow(q wire.Query) bool {
	if s.e2e.keys == nil {
		return false
	}
	switch q := q.(type) {
	case wire.Relay:
		if e2e.IsWord(q.Text) {
			s.openWord(q, q.Sender, q.Text, nil)
			return true
		}
		if s.e2eOn() && !s.mutes.muted(q.Sender) && !isSelf(s, q.Sender) {
			s.out.line(s.render.message(s.plainLabel(q.Sender), q.Text, false))
			s.remember(q.Sender+" [plain]", q.Text)
			return true
		}
	case wire.RelayQueued:
		if e2e.IsWord(q.Text) {
			s.openWord(q, q.Sender, q.Text, &q)
			return true
		}
		if s.e2eOn() && s.stored.received(q.Seq) {
			if !s.mutes.muted(q.Sender) {
				s.out.line(s.render.stored(s.plainLabel(q.Sender), q.Text, q.Sent))
				s.remember(q.Sender+" [plain] (sent "+q.Sent.UTC().Format("2006-01-02 15:04")+" UTC)", q.Text)
			}
			return true
		}
	case wire.Carbon:
		if e2e.IsWord(q.Text) {
			// Sealed to the recipient: the self-copy shows it.
			return true
		}
	case wire.RelayGroup:
		return s.showPlainGroup(q) // e2egroup.go
	}
	return false
}

func isSelf(s *session, name string) bool { return wire.FoldName(name) == wire.FoldName(s.c.user) }

// plainLabel is the sender label of a plaintext line from user: the tag,
// and for a contact whose key is pinned a warning that the server could
// have written it.
func (s *session) plainLabel(user string) string {
	if wire.FoldName(user) == wire.OperatorName {
		// The server operator's notice: from the server itself, which
		// holds no end-to-end key, and no user can send under the name.
		return user
	}
	if _, pinned := s.e2e.keys.contact(user); pinned {
		return user + " [plain – may be forged by the server]"
	}
	return user + " " + s.markPlain(user)
}

// openWord opens an e2e1. word from sender and shows it; stored is the
// RELAYQ it came in (nil for a live RELAY). Without the sender's key the
// line waits for the directory's answer.
func (s *session) openWord(q wire.Query, sender, word string, stored *wire.RelayQueued) {
	fromKey, ok := s.peerIdentity(sender)
	if !ok {
		if s.awaitSenderKey(q, sender) {
			return
		}
		s.wordFailed(stored, "encrypted message from "+Sanitize(sender)+" cannot be opened: "+Sanitize(sender)+" has no end-to-end key")
		return
	}
	m, err := s.opener().Open(word, sender, fromKey)
	if errors.Is(err, e2e.ErrSenderKey) && !isSelf(s, sender) && s.retryKey(q, sender) {
		return // the key changed: fetched anew, then opened again
	}
	if err != nil {
		s.wordFailed(stored, describeOpenError(sender, err))
		return
	}
	if m.SelfCopy {
		s.e2e.mu.Lock()
		mine := s.e2e.ownSeqs[m.Seq]
		s.e2e.mu.Unlock()
		if mine {
			return // sent from this session
		}
	}
	gap, err := s.checkReplay(sender, fromKey, m.Message)
	if err != nil {
		s.wordFailed(stored, "encrypted message from "+Sanitize(sender)+" rejected: "+replayReason(err))
		return
	}
	if stored != nil && !s.stored.received(stored.Seq) {
		return // shown in an earlier session
	}
	if !m.SelfCopy && s.mutes.muted(sender) {
		return
	}
	if gap > 0 {
		s.out.line(fmt.Sprintf("! %d message%s from %s may be missing", gap, plural1(gap), Sanitize(sender)))
	}
	switch m.Kind {
	case e2e.KindText:
		text, whole, err := s.e2e.asm.Add(sender, m.Message, time.Now())
		if err != nil {
			s.out.line("! encrypted message from " + Sanitize(sender) + " rejected: " + Sanitize(err.Error()))
			return
		}
		if !whole {
			return // parts are missing still
		}
		s.showOpened(sender, m, string(text), stored)
	case e2e.KindGroup:
		s.showGroupOpened(sender, m, stored) // e2egroup.go
	default:
		s.out.line("! encrypted " + m.Kind.String() + " from " + Sanitize(sender) + " not shown: this client does not handle it yet")
	}
}

func plural1(n uint64) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// showOpened prints an opened direct text.
func (s *session) showOpened(sender string, m *e2e.Opened, text string, stored *wire.RelayQueued) {
	if m.SelfCopy {
		line := s.render.carbon(s.c.user, m.Peer, text, true)
		if stored != nil {
			line = s.render.stored("you → "+m.Peer+" (other session)", text, stored.Sent)
		}
		s.out.line(line)
		s.remember("you → "+m.Peer+" (other session)", text)
		return
	}
	s.noteConversation(sender)
	label := sender
	if c, ok := s.e2e.keys.contact(sender); ok && c.Blocked {
		label = "UNVERIFIED NEW KEY " + sender
	}
	if stored != nil {
		s.out.line(s.render.stored(label, text, stored.Sent))
		s.remember(label+" (sent "+stored.Sent.UTC().Format("2006-01-02 15:04")+" UTC)", text)
		return
	}
	s.out.line(s.render.message(label, text, false))
	s.remember(label, text)
}

// wordFailed reports a word that was not shown; a stored one is still
// confirmed (it will never open).
func (s *session) wordFailed(stored *wire.RelayQueued, msg string) {
	if stored != nil && !s.stored.received(stored.Seq) {
		return
	}
	s.out.line("! " + msg)
}

// awaitSenderKey parks q until the directory answers for sender (once per
// session); false when it answered already.
func (s *session) awaitSenderKey(q wire.Query, sender string) bool {
	if !s.e2e.dir {
		return false
	}
	s.e2e.mu.Lock()
	p := s.e2e.entry(sender)
	select {
	case <-p.fetched:
		s.e2e.mu.Unlock()
		return false
	default:
	}
	key := wire.FoldName(sender)
	s.e2e.pending[key] = append(s.e2e.pending[key], q)
	ask := !p.asked
	p.asked = true
	s.e2e.mu.Unlock()
	if ask {
		s.sendq.push(wire.GetKey{User: sender, Token: s.c.token})
	}
	return true
}

// retryKey fetches sender's key again after a word sealed by another
// identity than the pinned one (the key changed and no KEYCHANGE came
// yet), once per session and sender, and parks q until then.
func (s *session) retryKey(q wire.Query, sender string) bool {
	if !s.e2e.dir {
		return false
	}
	s.e2e.mu.Lock()
	p := s.e2e.entry(sender)
	if p.retried {
		s.e2e.mu.Unlock()
		return false
	}
	p.retried = true
	p.asked = true
	p.fetched = make(chan struct{})
	key := wire.FoldName(sender)
	s.e2e.pending[key] = append(s.e2e.pending[key], q)
	s.e2e.mu.Unlock()
	s.sendq.push(wire.GetKey{User: sender, Token: s.c.token})
	return true
}

// describeOpenError says why a word did not open.
func describeOpenError(sender string, err error) string {
	name := Sanitize(sender)
	switch {
	case errors.Is(err, e2e.ErrUnknownPrekey):
		return "encrypted message from " + name + " cannot be decrypted: the prekey it was sealed to has expired"
	case errors.Is(err, e2e.ErrSenderKey):
		return "encrypted message from " + name + " rejected: it was sealed by another identity key than " + name + "'s (forged, or " + name + "'s key changed)"
	case errors.Is(err, e2e.ErrWrongPeer):
		return "encrypted message from " + name + " rejected: it was addressed to someone else"
	}
	return "encrypted message from " + name + " rejected: it does not authenticate (altered or forged): " + Sanitize(err.Error())
}

func replayReason(err error) string {
	switch {
	case errors.Is(err, e2e.ErrReplay):
		return "already received (a replay)"
	case errors.Is(err, e2e.ErrTooOld):
		return "too old for the replay window (a replay, or very late)"
	}
	return err.Error()
}

// trustLabel is a short state for :status:.
func trustLabel(st trust.State) string {
	switch st {
	case trust.StateVerified:
		return "verified"
	case trust.StateChanged:
		return "key changed"
	case trust.StateUnverified:
		return "unverified"
	}
	return "no key"
}
