package wire

// The key directory (ALPN sslm/3 only): each user publishes one signed key
// bundle for end-to-end encryption, and anyone logged in fetches anyone's.
// A server answers these queries only on connections that negotiated
// ALPNKeys; on any other connection they are what every unknown query is,
// a protocol error, and the server never sends KEY or KEYCHANGE there.
//
//	client: SETKEY bundle token      publish (or replace) the user's bundle
//	server: OK <key saved> | NO <reason>
//	client: GETKEY user token        fetch user's bundle, and watch it
//	server: KEY user bundle | KEY user -
//	server: KEYCHANGE user bundle | KEYCHANGE user -   pushed to watchers
//
// A bundle is one word of printable ASCII (its format and signature are
// internal/e2e's; the wire checks only its shape). "-" stands for "no
// bundle", so it is never a bundle.

// ALPNKeys is the TLS application protocol of our extensions with the key
// directory: everything of ALPN (sslm/2) plus SETKEY, GETKEY, KEY and
// KEYCHANGE. Our client offers it before ALPN; a server without a key
// directory does not list it and negotiates ALPN instead.
const ALPNKeys = "sslm/3"

// MaxBundleBytes bounds a key bundle word. A bundle of today's format is
// 234 to 252 bytes (by the length of the user's name); the room above is
// for later versions (several devices).
const MaxBundleBytes = 2048

// NoBundle is the bundle word of KEY and KEYCHANGE for "no bundle".
const NoBundle = "-"

// ReasonKeySaved is the text of the OK that answers a SETKEY.
const ReasonKeySaved = "key saved"

// SetKey publishes the user's key bundle, replacing any earlier one:
// SETKEY bundle token. Answered by OK <key saved> or NO <reason>.
type SetKey struct{ Bundle, Token string }

// GetKey fetches the bundle of User (any case) and makes the session a
// watcher of that name's bundle: GETKEY user token. Answered by Key.
type GetKey struct{ User, Token string }

// Key answers a GetKey: KEY user bundle, or KEY user - when the name has
// no bundle (no such user, a name that is not a user name, or a user who
// published none). User is the name as the GetKey asked for it; Bundle ""
// is sent as "-".
type Key struct{ User, Bundle string }

// KeyChange tells a watcher that User's bundle changed: KEYCHANGE user
// bundle, or KEYCHANGE user - when it was withdrawn (the account was
// deleted). User is the name as registered; Bundle "" is sent as "-".
type KeyChange struct{ User, Bundle string }

func (SetKey) Verb() string    { return "SETKEY" }
func (GetKey) Verb() string    { return "GETKEY" }
func (Key) Verb() string       { return "KEY" }
func (KeyChange) Verb() string { return "KEYCHANGE" }

func (q SetKey) SessionToken() string { return q.Token }
func (q GetKey) SessionToken() string { return q.Token }

// ValidBundle reports whether s may stand as a bundle word: 1 to
// MaxBundleBytes bytes of printable ASCII (0x21 to 0x7e), and not NoBundle.
func ValidBundle(s string) bool { return s != NoBundle && printableWord(s, MaxBundleBytes) }

// ValidKeyUser reports whether s may be the user word of GETKEY, KEY or
// KEYCHANGE: 1 to MaxWordBytes bytes of printable ASCII. It need not be a
// user name: a server answers KEY s - for one that is not.
func ValidKeyUser(s string) bool { return printableWord(s, MaxWordBytes) }

// printableWord reports a word of 1 to max bytes, each 0x21 to 0x7e: no
// space, no control character, nothing a terminal could act on.
func printableWord(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func appendKeyUser(dst []byte, verb, user string) ([]byte, error) {
	if !ValidKeyUser(user) {
		return dst, ferr(verb, "user", "must be 1 to 64 bytes of printable ASCII")
	}
	return append(append(dst, ' '), user...), nil
}

// appendBundle appends " bundle", or " -" for "".
func appendBundle(dst []byte, verb, bundle string) ([]byte, error) {
	if bundle == "" {
		return append(dst, " "+NoBundle...), nil
	}
	if !ValidBundle(bundle) {
		return dst, ferr(verb, "bundle", "must be 1 to 2048 bytes of printable ASCII, not -")
	}
	return append(append(dst, ' '), bundle...), nil
}

func (q SetKey) AppendTo(dst []byte) ([]byte, error) {
	dst = append(dst, "SETKEY"...)
	var err error
	if q.Bundle == "" {
		err = ferr("SETKEY", "bundle", "is empty")
	}
	if err == nil {
		dst, err = appendBundle(dst, "SETKEY", q.Bundle)
	}
	if err == nil {
		dst, err = appendWords(dst, "SETKEY", "token", q.Token)
	}
	return end(dst), err
}

func (q GetKey) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendKeyUser(append(dst, "GETKEY"...), "GETKEY", q.User)
	if err == nil {
		dst, err = appendWords(dst, "GETKEY", "token", q.Token)
	}
	return end(dst), err
}

func (q Key) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendKeyUser(append(dst, "KEY"...), "KEY", q.User)
	if err == nil {
		dst, err = appendBundle(dst, "KEY", q.Bundle)
	}
	return end(dst), err
}

func (q KeyChange) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendKeyUser(append(dst, "KEYCHANGE"...), "KEYCHANGE", q.User)
	if err == nil {
		dst, err = appendBundle(dst, "KEYCHANGE", q.Bundle)
	}
	return end(dst), err
}

// parseKeyQuery parses the words after SETKEY or GETKEY.
func parseKeyQuery(verb, rest string) (Query, error) {
	w, err := words(verb, rest, 2, MaxBundleBytes)
	if err != nil {
		return nil, err
	}
	if len(w[1]) > MaxWordBytes {
		return nil, perr(verb, "token longer than %d bytes", MaxWordBytes)
	}
	if verb == "SETKEY" {
		if !ValidBundle(w[0]) {
			return nil, perr(verb, "bad bundle word")
		}
		return SetKey{Bundle: w[0], Token: w[1]}, nil
	}
	if !ValidKeyUser(w[0]) {
		return nil, perr(verb, "bad user word")
	}
	return GetKey{User: w[0], Token: w[1]}, nil
}

// parseKeyLine parses the words after KEY or KEYCHANGE.
func parseKeyLine(verb, rest string) (Query, error) {
	w, err := words(verb, rest, 2, MaxBundleBytes)
	if err != nil {
		return nil, err
	}
	if !ValidKeyUser(w[0]) {
		return nil, perr(verb, "bad user word")
	}
	bundle := w[1]
	if bundle == NoBundle {
		bundle = ""
	} else if !ValidBundle(bundle) {
		return nil, perr(verb, "bad bundle word")
	}
	if verb == "KEY" {
		return Key{User: w[0], Bundle: bundle}, nil
	}
	return KeyChange{User: w[0], Bundle: bundle}, nil
}
