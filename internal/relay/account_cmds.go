package relay

import (
	"errors"
	"time"

	"sslmessager/internal/accounts"
	"sslmessager/internal/wire"
)

// Account queries and ping (sslm/2 only): PASSWD, DELACCT and PING.

// Reasons of the account queries.
const (
	reasonPasswordChanged = "password changed in another session"
	reasonWrongPassword   = "wrong password"
	reasonChecksBusy      = "too many password checks under way, try again"
	reasonNoAccount       = "no such account"
	// reasonAccountChanged ends a log-in whose account was deleted or got
	// a new password while its password was being checked.
	reasonAccountChanged = "the account changed, log in again"
)

var (
	lineOKPasswordChanged = wire.MustFormat(wire.OK{Text: "password changed"})
	lineNoWrongPassword   = wire.MustFormat(wire.No{Reason: reasonWrongPassword})
	lineNoChecksBusy      = wire.MustFormat(wire.No{Reason: reasonChecksBusy})
	lineNoAccount         = wire.MustFormat(wire.No{Reason: reasonNoAccount})
	lineNoServerError     = wire.MustFormat(wire.No{Reason: reasonServerError})
	lineAccountDeleted    = wire.MustFormat(wire.End{Reason: wire.ReasonAccountDeleted})
	lineAccountChanged    = wire.MustFormat(wire.End{Fatal: true, Reason: reasonAccountChanged})
)

// noTooManyFailures refuses an account query that a log-in throttle
// stopped before its password was checked: NO <too many failed log-ins,
// try again in 42s>.
func noTooManyFailures(wait time.Duration) []byte {
	return formatOr(wire.No{Reason: "too many failed log-ins, try again in " + waitText(wait)}, lineNoServerError)
}

// dispatchAccount runs PASSWD, DELACCT and PING. They exist only for a
// client that negotiated sslm/2; to any other they are an unknown query.
func (c *session) dispatchAccount(q wire.Query) bool {
	if !c.ext {
		c.fail(wire.ReasonProtocol, "sslm/2 query without ALPN sslm/2", q.Verb())
		return false
	}
	switch q := q.(type) {
	case wire.ChangePassword:
		return c.handleChangePassword(q)
	case wire.DeleteAccount:
		return c.handleDeleteAccount(q)
	case wire.Ping:
		return c.handlePing(q)
	}
	c.fail(wire.ReasonProtocol, "unexpected query", q.Verb())
	return false
}

// PING nonce token
func (c *session) handlePing(q wire.Ping) bool {
	line, err := wire.Format(wire.Pong{Nonce: q.Nonce})
	if err != nil { // cannot happen: the parser checked the nonce
		c.logger().Error("pong cannot be formatted", "err", err)
		return true
	}
	c.send(line)
	return true
}

// PASSWD old new token
//
// The new password is checked against the rules first (no hash spent on
// it otherwise); the old one goes through the log-in throttles as an AUTH
// does. On success the user's other sessions end with
// END * <password changed in another session>; this one stays.
func (c *session) handleChangePassword(q wire.ChangePassword) bool {
	if err := wire.CheckPassword(q.New); err != nil {
		c.send(c.format(wire.No{Reason: "invalid password: " + err.Error()}, lineNoServerError))
		return true
	}
	release, refusal := c.verifyOwnPassword(q.Old, "PASSWD")
	if refusal != nil {
		c.send(refusal)
		return true
	}
	err := c.srv.cfg.Accounts.SetPassword(c.user, q.New)
	release()
	if c.refusedChange(err, "password change") {
		return true
	}
	ended := c.srv.endUserExcept(c.user, reasonPasswordChanged, c)
	c.logger().Info("password changed", "other_sessions_ended", ended)
	c.send(lineOKPasswordChanged)
	return true
}

// refusedChange answers an account change that failed with err (nil: it
// did not) with NO, and reports whether it did.
func (c *session) refusedChange(err error, what string) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, accounts.ErrNoSuchUser):
		c.send(lineNoAccount)
	default:
		c.logger().Error(what+" failed", "err", err)
		c.send(lineNoServerError)
	}
	return true
}

// DELACCT password token
//
// The account is removed from users.csv (durably) and its queued files
// from the spool; every session of the user ends, this one with
// END <account deleted>, the others with END * <account deleted>. The name
// is then free for a new sign-up.
func (c *session) handleDeleteAccount(q wire.DeleteAccount) bool {
	release, refusal := c.verifyOwnPassword(q.Pass, "DELACCT")
	if refusal != nil {
		c.send(refusal)
		return true
	}
	_, err := c.srv.cfg.Accounts.Delete(c.user)
	release()
	if c.refusedChange(err, "account deletion") {
		return true
	}
	// The account is gone: an upload to it that commits after this is
	// removed again (dropIfRecipientGone).
	files, err := c.srv.DropUserData(c.user)
	if err != nil {
		c.logger().Error("deleted account: its queued files or stored messages not all removed", "removed", files, "err", err)
	}
	ended := c.srv.endUserExcept(c.user, wire.ReasonAccountDeleted, c)
	c.logger().Info("account deleted", "files_removed", files, "other_sessions_ended", ended)
	c.srv.hub.remove(c)
	c.end(lineAccountDeleted, true)
	return false
}

// verifyOwnPassword checks pass against the session's own account under
// the same throttles as an AUTH from this address (checkPassword): the
// attempt is counted against the address and the account before the hash
// is checked, a throttled one is refused without a hash, and a right
// password gives the counts back. On success it returns release, which
// gives back the address's password-check turn (held so that the change
// that follows hashes within the same bound); on refusal it returns the NO
// line to send.
func (c *session) verifyOwnPassword(pass, verb string) (release func(), refusal []byte) {
	_, v, wait, release := c.checkPassword(c.user, pass)
	switch v {
	case passwordRight:
		return release, nil
	case passwordThrottled:
		c.logger().Warn(verb+" refused: throttled", "wait", wait)
		return nil, noTooManyFailures(wait)
	case passwordNoTurn:
		return nil, lineNoChecksBusy
	}
	c.logger().Info(verb + " refused: wrong password")
	return nil, lineNoWrongPassword
}

// endUserExcept ends every session of the user name (any case) but keep
// with END * <reason> and returns how many it ended; keep may be nil.
// reason must be a valid reason; an invalid one is logged and replaced by
// a generic one. The sessions' queued lines go out first.
func (s *Server) endUserExcept(name, reason string, keep *session) int {
	line, err := wire.Format(wire.End{Fatal: true, Reason: reason})
	if err != nil {
		s.log.Error("end user: reason cannot be sent", "reason", reason, "err", err)
		line = lineServerError
	}
	ended := 0
	for _, sess := range s.hub.lookup(name) {
		if sess != keep && s.hub.remove(sess) {
			sess.logger().Info("session ended by the server", "reason", reason)
			sess.end(line, true)
			ended++
		}
	}
	return ended
}

// accountStillCurrent is called by admit once the session is on the hub.
// A log-in whose account was deleted, or got a new password, while its
// password was being checked must not outlive the change: the change ends
// the sessions it finds on the hub, and a session that joins after that
// finds the change here. If the account is gone or its hash differs from
// u's, the session ends with END * <the account changed, log in again> and
// false is returned; the caller takes it off the hub.
func (c *session) accountStillCurrent(u accounts.User) bool {
	now, ok := c.srv.cfg.Accounts.Lookup(u.Name)
	if ok && now.Hash == u.Hash {
		return true
	}
	c.logger().Info("log-in ended: the account changed during it")
	c.end(lineAccountChanged, true)
	return false
}

// dropIfRecipientGone is called after an upload committed: if the
// recipient's account was deleted meanwhile, the file is removed again
// (a deletion removes the files queued when it runs, so one that commits
// just after it would otherwise wait for whoever signs up with the name
// next) and false is returned.
func (c *session) dropIfRecipientGone(recipient, id string) bool {
	if _, ok := c.srv.cfg.Accounts.Lookup(recipient); ok {
		return true
	}
	if err := c.srv.cfg.Spool.Remove(recipient, id); err != nil {
		c.logger().Error("upload to a deleted account not removed", "id", id, "err", err)
	}
	c.logger().Info("upload dropped: the recipient's account was deleted", "id", id)
	return false
}
