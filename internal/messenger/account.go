package messenger

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"sslmessager/internal/e2e/keystore"
	"sslmessager/internal/wire"
)

// Account commands and ping in the interactive session (sslm/2 only).
//
// The receiver stays the only reader of the connection: it hands the
// answers to our queries (OK, NO, PONG) to the command waiting for one
// through s.replies. The input loop runs one command at a time, so at most
// one waits.

// Waits for the answers to our queries.
const (
	// PingTimeout bounds the wait for a PONG.
	PingTimeout = 30 * time.Second
	// AccountTimeout bounds the wait for the answer to :passwd: or
	// :delete_account:. The server may first wait its turn for a password
	// check (up to its log-in timeout, 60 s by default), then hash twice.
	AccountTimeout = 90 * time.Second
)

// errNoReply is a query's answer not arriving in time.
var errNoReply = errors.New("no answer from the server")

// needsExt says, and returns true, when the server cannot run the command.
func (s *session) needsExt(cmd string) bool {
	if s.c.ext {
		return false
	}
	s.out.line("! :" + cmd + ": needs a server that speaks sslm/2")
	return true
}

// expectReplies opens the slot the receiver hands answers to; the
// returned function closes it. The slot holds one answer; more than that
// (a late PONG after a timeout) are dropped.
func (s *session) expectReplies() (<-chan wire.Query, func()) {
	ch := make(chan wire.Query, 1)
	s.replyMu.Lock()
	s.replies = ch
	s.replyMu.Unlock()
	return ch, func() {
		s.replyMu.Lock()
		s.replies = nil
		s.replyMu.Unlock()
	}
}

// deliverReply hands an answer to the command waiting for one, in the
// receiver. It reports false when none waits.
func (s *session) deliverReply(q wire.Query) bool {
	s.replyMu.Lock()
	defer s.replyMu.Unlock()
	if s.replies == nil {
		return false
	}
	select {
	case s.replies <- q:
	default:
	}
	return true
}

// awaitReply waits up to limit for an answer that want accepts; others
// are skipped. It fails when the session ends first.
func (s *session) awaitReply(ch <-chan wire.Query, limit time.Duration, want func(wire.Query) bool) (wire.Query, error) {
	t := time.NewTimer(limit)
	defer t.Stop()
	for {
		select {
		case q := <-ch:
			if want(q) {
				return q, nil
			}
		case <-s.recvGone:
			return nil, ErrConnectionClosed
		case <-s.cancel:
			return nil, errors.New("interrupted")
		case <-t.C:
			return nil, fmt.Errorf("%w within %v", errNoReply, limit)
		}
	}
}

// isAnswer accepts OK and NO.
func isAnswer(q wire.Query) bool {
	switch q.(type) {
	case wire.OK, wire.No:
		return true
	}
	return false
}

// :ping:
func cmdPing(s *session, _ string) (bool, error) {
	if s.needsExt("ping") {
		return false, nil
	}
	rtt, sent, err := s.roundTrip(PingTimeout)
	switch {
	case !sent:
		return false, err
	case err != nil:
		s.out.line("! ping: " + err.Error())
	default:
		s.out.line("pong from server in " + formatRTT(rtt))
	}
	return false, nil
}

// roundTrip sends a PING (sslm/2 only) and waits up to limit for its PONG.
// The server answers queries in order, so once it returns without an
// error every line the server sent for the queries before it has been
// received. sent is false (with the write's error) when the PING could not
// be written.
func (s *session) roundTrip(limit time.Duration) (rtt time.Duration, sent bool, err error) {
	s.pingSeq++
	nonce := strconv.FormatUint(s.pingSeq, 10)
	ch, done := s.expectReplies()
	defer done()
	start := time.Now()
	if err := s.c.send(wire.Ping{Nonce: nonce, Token: s.c.token}); err != nil {
		return 0, false, err
	}
	_, err = s.awaitReply(ch, limit, func(q wire.Query) bool { return q == wire.Pong{Nonce: nonce} })
	return time.Since(start), true, err
}

// formatRTT writes a round-trip time in milliseconds with one decimal.
func formatRTT(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) + " ms"
}

// askSecret asks for a password without echo on a terminal (from the
// input lines otherwise). ok is false at the end of input.
func (s *session) askSecret(prompt string) (string, bool) {
	p, err := s.in.askSecret(prompt)
	if err != nil {
		return "", false
	}
	return p, true
}

// :passwd:
func cmdPasswd(s *session, _ string) (bool, error) {
	if s.needsExt("passwd") {
		return false, nil
	}
	const not = "! password not changed: "
	old, ok := s.askSecret("current password: ")
	if !ok {
		return true, nil // end of input while asking: quit
	}
	if old == "" {
		s.out.line(not + "no password given")
		return false, nil
	}
	pw, ok := s.askSecret("new password: ")
	if !ok {
		return true, nil
	}
	if err := wire.CheckPassword(pw); err != nil {
		s.out.line(not + err.Error())
		return false, nil
	}
	again, ok := s.askSecret("new password again: ")
	if !ok {
		return true, nil
	}
	switch {
	case again != pw:
		s.out.line(not + "the new passwords do not match")
		return false, nil
	case pw == old:
		s.out.line(not + "the new password is the current one")
		return false, nil
	}
	ch, done := s.expectReplies()
	defer done()
	err := s.c.send(wire.ChangePassword{Old: old, New: pw, Token: s.c.token})
	if errors.Is(err, wire.ErrField) {
		s.out.line(not + "the current password cannot be sent (spaces or too long)")
		return false, nil
	}
	if err != nil {
		return false, err
	}
	q, err := s.awaitReply(ch, AccountTimeout, isAnswer)
	switch q := q.(type) {
	case wire.OK:
		s.out.line("password changed; your other sessions were logged out")
		s.rekeyStore(old, pw)
	case wire.No:
		s.out.line(not + Sanitize(q.Reason))
	default:
		s.out.line(not + "unknown: " + err.Error())
	}
	return false, nil
}

// rekeyStore, after a password change, re-encrypts the end-to-end key
// store under the new password when the old one locked it (the default),
// so the next log-in opens it; a store with a passphrase of its own is
// left as it is.
func (s *session) rekeyStore(old, pw string) {
	if s.opts.Keys == nil {
		return
	}
	switch err := s.opts.Keys.store.Rekey(old, pw); {
	case err == nil:
		s.out.line("your end-to-end key store now opens with the new password")
	case errors.Is(err, keystore.ErrPassphrase):
		// Locked with --key-passphrase: not the log-in password's business.
	default:
		s.out.line("! your end-to-end key store still opens with the old password only (" + Sanitize(err.Error()) + "): give it with --key-passphrase at the next log-in")
	}
}

// :delete_account:
func cmdDeleteAccount(s *session, _ string) (bool, error) {
	if s.needsExt("delete_account") {
		return false, nil
	}
	const not = "! account not deleted: "
	s.out.line("this deletes the account " + Sanitize(s.c.user) + " and the files waiting for it, and logs out all its sessions; it cannot be undone")
	pw, ok := s.askSecret("password (empty to keep the account): ")
	if !ok {
		return true, nil
	}
	if pw == "" {
		s.out.line("account kept")
		return false, nil
	}
	ch, done := s.expectReplies()
	defer done()
	s.deleting.Store(true)
	err := s.c.send(wire.DeleteAccount{Pass: pw, Token: s.c.token})
	if errors.Is(err, wire.ErrField) {
		s.deleting.Store(false)
		s.out.line(not + "the password cannot be sent (spaces or too long)")
		return false, nil
	}
	if err != nil {
		return false, err
	}
	// Success is END <account deleted>, which the receiver shows and
	// which ends the session (accountDeletedEnd).
	q, err := s.awaitReply(ch, AccountTimeout, isAnswer)
	s.deleting.Store(false)
	switch q := q.(type) {
	case wire.No:
		s.out.line(not + Sanitize(q.Reason))
	case wire.OK:
		s.out.line("! unexpected answer from the server: OK " + Sanitize(q.Text))
	default:
		if !errors.Is(err, ErrConnectionClosed) {
			s.out.line(not + "unknown: " + err.Error())
		}
	}
	return false, nil
}

// accountDeletedEnd reports whether q is the end of the session after
// :delete_account: succeeded (END <account deleted>), and says so; the
// session then ends as if the user had quit.
func (s *session) accountDeletedEnd(q wire.End) bool {
	if !s.deleting.Load() || q.Fatal || q.Reason != wire.ReasonAccountDeleted {
		return false
	}
	s.out.line("account " + Sanitize(s.c.user) + " deleted; goodbye")
	return true
}
