package wire

// Account queries and ping of our extensions (ALPN sslm/2 only). A server
// answers them only on connections that negotiated ALPN; on any other
// connection they are what every unknown query is, a protocol error.

// MaxNonceBytes bounds the nonce of PING and PONG.
const MaxNonceBytes = 32

// ChangePassword changes the user's password: PASSWD old new token.
// Answered by OK or NO.
type ChangePassword struct{ Old, New, Token string }

// DeleteAccount deletes the user's account and its queued files:
// DELACCT password token. Answered by END <account deleted> or NO.
type DeleteAccount struct{ Pass, Token string }

// Ping asks the server for a Pong carrying the same nonce: PING nonce
// token. A nonce is 1 to MaxNonceBytes ASCII letters, digits, '-', '_' or
// '.'.
type Ping struct{ Nonce, Token string }

// Pong answers a Ping: PONG nonce
type Pong struct{ Nonce string }

// ReasonAccountDeleted ends every session of an account that was deleted.
const ReasonAccountDeleted = "account deleted"

func (ChangePassword) Verb() string { return "PASSWD" }
func (DeleteAccount) Verb() string  { return "DELACCT" }
func (Ping) Verb() string           { return "PING" }
func (Pong) Verb() string           { return "PONG" }

func (q ChangePassword) SessionToken() string { return q.Token }
func (q DeleteAccount) SessionToken() string  { return q.Token }
func (q Ping) SessionToken() string           { return q.Token }

// ValidNonce reports whether s may be the nonce of a Ping.
func ValidNonce(s string) bool {
	if s == "" || len(s) > MaxNonceBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '-' || c == '_' || c == '.' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func appendPassword(dst []byte, verb, field, pw string) ([]byte, error) {
	return appendWord(dst, verb, field, pw, MaxPasswordWordBytes)
}

func (q ChangePassword) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendPassword(append(dst, "PASSWD"...), "PASSWD", "old password", q.Old)
	if err == nil {
		dst, err = appendPassword(dst, "PASSWD", "new password", q.New)
	}
	if err == nil {
		dst, err = appendWords(dst, "PASSWD", "token", q.Token)
	}
	return end(dst), err
}

func (q DeleteAccount) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendPassword(append(dst, "DELACCT"...), "DELACCT", "password", q.Pass)
	if err == nil {
		dst, err = appendWords(dst, "DELACCT", "token", q.Token)
	}
	return end(dst), err
}

func appendNonce(dst []byte, verb, nonce string) ([]byte, error) {
	if !ValidNonce(nonce) {
		return dst, ferr(verb, "nonce", "must be 1 to 32 ASCII letters, digits, -, _ or .")
	}
	return append(append(dst, ' '), nonce...), nil
}

func (q Ping) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendNonce(append(dst, "PING"...), "PING", q.Nonce)
	if err == nil {
		dst, err = appendWords(dst, "PING", "token", q.Token)
	}
	return end(dst), err
}

func (q Pong) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendNonce(append(dst, "PONG"...), "PONG", q.Nonce)
	return end(dst), err
}

// parseAccountQuery parses the words after PASSWD, DELACCT or PING.
// Error texts never hold a password.
func parseAccountQuery(verb, rest string) (Query, error) {
	switch verb {
	case "PASSWD":
		w, err := words(verb, rest, 3, MaxPasswordWordBytes)
		if err != nil {
			return nil, err
		}
		if len(w[2]) > MaxWordBytes {
			return nil, perr(verb, "token longer than %d bytes", MaxWordBytes)
		}
		return ChangePassword{Old: w[0], New: w[1], Token: w[2]}, nil
	case "DELACCT":
		w, err := words(verb, rest, 2, MaxPasswordWordBytes)
		if err != nil {
			return nil, err
		}
		if len(w[1]) > MaxWordBytes {
			return nil, perr(verb, "token longer than %d bytes", MaxWordBytes)
		}
		return DeleteAccount{Pass: w[0], Token: w[1]}, nil
	default: // PING
		w, err := words(verb, rest, 2, MaxWordBytes)
		if err != nil {
			return nil, err
		}
		if !ValidNonce(w[0]) {
			return nil, perr(verb, "bad nonce")
		}
		return Ping{Nonce: w[0], Token: w[1]}, nil
	}
}

// parsePong parses the words after PONG.
func parsePong(rest string) (Query, error) {
	if !ValidNonce(rest) {
		return nil, perr("PONG", "bad nonce")
	}
	return Pong{Nonce: rest}, nil
}
