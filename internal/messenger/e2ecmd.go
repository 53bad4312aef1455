package messenger

import (
	"errors"
	"strings"
	"unicode"

	"sslmessager/internal/e2e/safety"
	"sslmessager/internal/e2e/trust"
	"sslmessager/internal/wire"
)

// The trust commands: :fingerprint:, :verify:, :trust:, :plaintext:.

// needsE2E says, and returns true, when the session has no end-to-end
// encryption.
func (s *session) needsE2E(cmd string) bool {
	switch {
	case s.e2e.keys == nil && s.e2e.policy == E2EOff:
		s.refused("! :" + cmd + ": end-to-end encryption is off (--e2e=off)")
	case s.e2e.keys == nil:
		s.refused("! :" + cmd + ": no end-to-end keys in this session")
	case !s.e2e.dir:
		s.refused("! :" + cmd + ": this server has no key directory: messages are not end-to-end encrypted")
	default:
		return false
	}
	return true
}

// :fingerprint:
func cmdFingerprint(s *session, _ string) (bool, error) {
	if s.e2e.keys == nil {
		s.needsE2E("fingerprint")
		return false, nil
	}
	s.out.line("your safety-number half (publish it where your contacts can read it; they check it with :verify: " +
		Sanitize(s.c.user) + " DIGITS):\n  " + safety.Format(s.e2e.keys.Fingerprint(s.c.user)))
	return false, nil
}

// :verify: NAME [DIGITS]
func cmdVerify(s *session, arg string) (bool, error) {
	if s.needsE2E("verify") {
		return false, nil
	}
	name, digits, _ := strings.Cut(arg, " ")
	digits = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, digits)
	if err := wire.CheckUserName(name); err != nil {
		s.refused("! :verify: NAME [DIGITS]: " + err.Error())
		return false, nil
	}
	if _, err := s.fetchKey(name); err != nil {
		if errors.Is(err, ErrConnectionClosed) {
			return false, nil
		}
		s.refused("! :verify: " + Sanitize(err.Error()))
		return false, nil
	}
	c, ok := s.e2e.keys.contact(name)
	if !ok {
		s.refused("! :verify: " + Sanitize(name) + " has no end-to-end key")
		return false, nil
	}
	mine := s.e2e.keys.safetyKey()
	if digits == "" {
		num := safety.Number(mine, s.c.user, c.Key, name)
		s.out.line("safety number with " + Sanitize(name) + " (" + trustLabel(c.State) + "); compare it with " + Sanitize(name) + "'s:\n  " +
			safety.Format(num[:30]) + "\n  " + safety.Format(num[30:]) +
			"\nthe same on both sides: mark it verified with :verify: " + Sanitize(name) + " followed by the 60 digits, or by " + Sanitize(name) + "'s published 30 (:fingerprint:)")
		return false, nil
	}
	var match bool
	var err error
	switch len(digits) {
	case safety.HalfDigits:
		match, err = safety.CheckHalf(digits, c.Key, name)
	case safety.NumberDigits:
		match, err = safety.CheckNumber(digits, mine, s.c.user, c.Key, name)
	default:
		err = safety.ErrDigits
	}
	if err != nil {
		s.refused("! :verify: " + Sanitize(name) + ": give 30 digits (their published half) or 60 (the whole number)")
		return false, nil
	}
	if !match {
		s.refused("! :verify: the digits do NOT match " + Sanitize(name) + "'s key: it may not be " + Sanitize(name) + "'s (the server may be in the middle); nothing changed")
		return false, nil
	}
	if err := s.e2e.keys.trustDo(func(t *trust.Store) error { return t.Verify(name, c.Key) }); err != nil {
		s.refused("! :verify: " + Sanitize(err.Error()))
		return false, nil
	}
	s.out.line(Sanitize(name) + " verified: the digits match the key your client pinned")
	s.updatePrompt()
	return false, nil
}

// :trust: NAME
func cmdTrust(s *session, arg string) (bool, error) {
	return false, s.trustCommand("trust", arg, func(t *trust.Store) error { return t.Trust(arg) },
		Sanitize(arg)+"'s current key accepted without verification; :verify: "+Sanitize(arg)+" compares it")
}

// :plaintext: NAME
func cmdPlaintext(s *session, arg string) (bool, error) {
	return false, s.trustCommand("plaintext", arg, func(t *trust.Store) error { return t.AllowPlain(arg) },
		"plaintext to "+Sanitize(arg)+" allowed while "+Sanitize(arg)+" has no key: the server operator can read it")
}

func (s *session) trustCommand(cmd, name string, fn func(*trust.Store) error, done string) error {
	if s.needsE2E(cmd) {
		return nil
	}
	if err := wire.CheckUserName(name); err != nil {
		s.refused("! :" + cmd + ": NAME: " + err.Error())
		return nil
	}
	err := s.e2e.keys.trustDo(fn)
	switch {
	case errors.Is(err, trust.ErrUnknown):
		s.refused("! :" + cmd + ": no key is pinned for " + Sanitize(name))
	case err != nil:
		s.refused("! :" + cmd + ": " + Sanitize(err.Error()))
	default:
		s.out.line(done)
		s.updatePrompt()
	}
	return nil
}
