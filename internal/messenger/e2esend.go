package messenger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"sslmessager/internal/e2e"
	"sslmessager/internal/e2e/trust"
	"sslmessager/internal/wire"
)

// SendOptions are the end-to-end settings of a one-shot send.
type SendOptions struct {
	Keys *Keys     // nil: plaintext (refused under E2ERequire)
	E2E  E2EPolicy // as Options.E2E
}

// SendResult says how a one-shot message went.
type SendResult struct {
	Queued    bool // stored for the recipient, who is offline
	Encrypted bool // sealed end to end; false: plaintext
}

// SendWith is SendTo with end-to-end encryption: when the server has a
// key directory and o.Keys is set, it publishes this user's bundle, fetches
// the recipient's (pinning it in the trust store as a chat would) and
// sends the text sealed, with a copy for this user's other sessions. A
// recipient without a key gets plaintext under E2EPrefer; E2ERequire
// refuses that, and a server without a key directory, with an error that
// says so. A recipient whose key changed after it was verified is refused
// (a chat's :verify: or :trust: lifts it).
func SendWith(ctx context.Context, c *Conn, to, text string, o SendOptions) (SendResult, error) {
	if c.token == "" {
		return SendResult{}, errors.New("not logged in")
	}
	if err := wire.CheckUserName(to); err != nil {
		return SendResult{}, fmt.Errorf("target: %w", err)
	}
	if err := checkText(text); err != nil {
		return SendResult{}, err
	}
	if o.E2E == E2EOff {
		o.Keys = nil
	}
	if o.Keys == nil || !c.KeyDirectory() {
		if o.E2E == E2ERequire {
			return SendResult{}, errors.New("not sent: this server has no key directory (or no end-to-end keys here), and --e2e=require refuses plaintext")
		}
		q, err := SendTo(ctx, c, to, text)
		return SendResult{Queued: q}, err
	}
	deadline := time.Now().Add(SendTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.tc.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.tc.SetReadDeadline(time.Now()) })
	b, err := oneShotKey(c, o.Keys, to)
	stop()
	c.tc.SetReadDeadline(time.Time{})
	if err != nil {
		if ctx.Err() != nil {
			return SendResult{}, ctx.Err()
		}
		return SendResult{}, err
	}
	if b == nil {
		if o.E2E == E2ERequire {
			return SendResult{}, fmt.Errorf("not sent: %s has no end-to-end key, and --e2e=require refuses plaintext", Sanitize(to))
		}
		q, err := SendTo(ctx, c, to, text)
		return SendResult{Queued: q}, err
	}
	dm, err := sealDirect(o.Keys, c.user, to, b, text, time.Now(), false)
	if err != nil {
		return SendResult{}, fmt.Errorf("cannot encrypt: %w", err)
	}
	q, err := sendWords(ctx, c, to, dm.msgs)
	return SendResult{Queued: q, Encrypted: true}, err
}

// oneShotKey publishes this user's bundle, then fetches to's and applies
// the trust rules; nil bundle: to has no key and plaintext is allowed by
// the trust store. It reads the connection itself.
func oneShotKey(c *Conn, k *Keys, to string) (*e2e.Bundle, error) {
	own, _, err := k.bundle(c.user)
	if err != nil {
		return nil, err
	}
	if err := c.send(wire.SetKey{Bundle: own.Encode(), Token: c.token}); err != nil {
		return nil, c.closedBy(err)
	}
	if err := c.send(wire.GetKey{User: to, Token: c.token}); err != nil {
		return nil, c.closedBy(err)
	}
	var word string
	for got := false; !got; {
		q, err := c.read()
		var pe *wire.ProtocolError
		if errors.As(err, &pe) {
			continue
		}
		if err != nil {
			return nil, c.closedBy(err)
		}
		switch q := q.(type) {
		case wire.Key:
			if wire.FoldName(q.User) == wire.FoldName(to) {
				word, got = q.Bundle, true
			}
		case wire.End:
			return nil, &ClosedError{Reason: q.Reason, Fatal: q.Fatal}
		}
	}
	if word == "" {
		c, pinned := k.contact(to)
		if pinned && !c.Plaintext {
			return nil, fmt.Errorf("not sent: %s had an end-to-end key, but the directory has none now (the server may be attacking); a chat's :plaintext: %s allows plaintext", Sanitize(to), Sanitize(to))
		}
		return nil, nil
	}
	b, err := e2e.ParseBundle(word)
	if err == nil && wire.FoldName(b.User) != wire.FoldName(to) {
		err = fmt.Errorf("it is signed for %s", b.User)
	}
	if err != nil {
		return nil, fmt.Errorf("not sent: the server sent an invalid end-to-end key for %s: %s", Sanitize(to), Sanitize(err.Error()))
	}
	var obs trust.Observation
	if err := k.trustDo(func(t *trust.Store) error {
		obs, err = t.Observe(to, safetyKeyOf(b.Identity()))
		return err
	}); err != nil {
		return nil, err
	}
	if !obs.Blocked {
		var blocked bool
		k.view(func(st *keyState) { blocked = !st.trust.SendAllowed(to) })
		obs.Blocked = blocked
	}
	if obs.Blocked {
		return nil, fmt.Errorf("not sent: %s's end-to-end key changed since you verified it; compare the new safety number in a chat (:verify: %s) or accept it (:trust: %s)", Sanitize(to), Sanitize(to), Sanitize(to))
	}
	// A prekey expired up to e2e.PrekeyGrace ago is used (its owner is
	// away); the chat says so, a one-shot command does not.
	if _, err := b.CheckSendable(time.Now()); err != nil {
		return nil, fmt.Errorf("not sent: %s's published prekey cannot be used (%v)", Sanitize(to), err)
	}
	return b, nil
}

// sealedDM is a direct text sealed for its recipient and for the
// sender's other sessions.
type sealedDM struct {
	msgs     []wire.Msg // MSG lines without token: the parts to the recipient, then the self-copies
	parts    int        // how many of msgs go to the recipient
	ownFirst uint64     // seq of the first self-copy
}

// sealDirect seals text from user to to (whose bundle is b), and a copy to
// user's own identity (peer: to) for user's other sessions. block: reserve
// the sequence numbers in blocks (a session; see Keys.reserveSeqs).
func sealDirect(k *Keys, user, to string, b *e2e.Bundle, text string, now time.Time, block bool) (sealedDM, error) {
	n := e2e.PartsFor(text)
	sealer := &e2e.Sealer{Self: k.id, Name: user}
	own, _, err := k.bundle(user)
	if err != nil {
		return sealedDM{}, err
	}
	firsts, err := k.reserveSeqs(block, seqRequest{to, n}, seqRequest{user, n})
	if err != nil {
		return sealedDM{}, err
	}
	first, ownFirst := firsts[0], firsts[1]
	words, err := sealer.SealText(b, e2e.KindText, b.User, text, first, now)
	if err != nil {
		return sealedDM{}, err
	}
	copies, err := sealer.SealText(own, e2e.KindText, to, text, ownFirst, now)
	if err != nil {
		return sealedDM{}, err
	}
	var msgs []wire.Msg
	for _, w := range words {
		msgs = append(msgs, wire.Msg{Target: to, Sender: user, Text: w})
	}
	for _, w := range copies {
		msgs = append(msgs, wire.Msg{Target: user, Sender: user, Text: w})
	}
	return sealedDM{msgs: msgs, parts: len(words), ownFirst: ownFirst}, nil
}

// sendWords sends the sealed messages, quits and reads the answers as
// SendTo does.
func sendWords(ctx context.Context, c *Conn, to string, msgs []wire.Msg) (queued bool, err error) {
	deadline := time.Now().Add(SendTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.tc.SetReadDeadline(deadline)
	defer c.tc.SetReadDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { c.tc.SetReadDeadline(time.Now()) })
	defer stop()
	// One write for the parts and QUIT.
	qs := make([]wire.Query, 0, len(msgs)+1)
	for _, m := range msgs {
		m.Token = c.token
		qs = append(qs, m)
	}
	if err := c.sendAll(append(qs, wire.Quit{Token: c.token})...); err != nil {
		return false, c.closedBy(err)
	}
	var notOnline error
	for {
		q, err := c.read()
		var pe *wire.ProtocolError
		if errors.As(err, &pe) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			return false, c.closedBy(err)
		}
		switch q := q.(type) {
		case wire.NotOnline:
			switch q.Reason {
			case wire.ReasonNotOnline:
				notOnline = &NotOnlineError{Target: to}
			case wire.ReasonQueued:
				queued = true
			default:
				notOnline = &NotDeliveredError{Target: to, Reason: q.Reason}
			}
		case wire.End:
			if !q.Fatal && q.Reason == wire.ReasonEndAccepted {
				return queued && notOnline == nil, notOnline
			}
			return false, &ClosedError{Reason: q.Reason, Fatal: q.Fatal}
		}
	}
}
