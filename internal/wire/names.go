package wire

import (
	"errors"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The one home of the rules for user names, passwords and file names:
// the server's account store, the spool, the relay and the client all
// check with these, so the rules cannot drift apart.

// User name limits, in bytes.
const (
	MinUserNameBytes = 1
	MaxUserNameBytes = 15
)

// OperatorName is the sender of the messages a server operator sends (the
// admin msg and g commands). It is one of ReservedNames: no account can
// have it, so a line from it can only come from the server itself.
const OperatorName = "admin"

// ReservedNames are the words, in lower case, that are no user name in any
// case: the original client's commands and ours.
var ReservedNames = []string{"quit", "status", "toggle", "admin", "upload", "download", "online", "new_target", "help", "get", "group"}

// Errors of the name and password rules. Their texts state the rule, so a
// client can show them as they are.
var (
	ErrUserName     = errors.New("user names are 1 to 15 ASCII letters, digits or _")
	ErrReservedName = errors.New("user name is a command word: " + strings.Join(ReservedNames, ", "))
	ErrPassword     = errors.New("passwords are 8 to 72 bytes of UTF-8 without spaces or control characters")
)

// CheckUserName reports whether name follows the user-name rule:
// ErrUserName for its shape, ErrReservedName for a command word.
func CheckUserName(name string) error {
	if len(name) < MinUserNameBytes || len(name) > MaxUserNameBytes {
		return ErrUserName
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return ErrUserName
		}
	}
	folded := FoldName(name)
	for _, r := range ReservedNames {
		if folded == r {
			return ErrReservedName
		}
	}
	return nil
}

// FoldName returns the identity key of a user name, its ASCII lower-case
// form: Alice and alice are one user. Other bytes are left unchanged.
func FoldName(name string) string {
	for i := 0; i < len(name); i++ {
		if c := name[i]; 'A' <= c && c <= 'Z' {
			b := []byte(name)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return name
}

// CheckPassword reports whether pw may be set as a password (ErrPassword
// if not): valid UTF-8 of MinPasswordBytes to MaxPasswordBytes bytes with
// no space and no control character. 72 bytes is bcrypt's limit.
func CheckPassword(pw string) error {
	if len(pw) < MinPasswordBytes || len(pw) > MaxPasswordBytes || !utf8.ValidString(pw) {
		return ErrPassword
	}
	for _, r := range pw {
		if unicode.IsSpace(r) || unicode.IsControl(r) || !unicode.IsPrint(r) && !unicode.IsGraphic(r) {
			return ErrPassword
		}
	}
	return nil
}

// maxExtBytes is the longest extension CleanFileName keeps across a cut.
const maxExtBytes = 16

// CleanFileName turns a file name from the network into one that is safe
// as a single path element and safe to print, of at most max bytes (max
// at least 32): the part after the last '/' or '\', without any rune that
// is not shown as it is (control and format characters such as bidi
// overrides, line separators, white space other than the plain space;
// invalid UTF-8 becomes U+FFFD), without dots and spaces at either end (so
// never ".", ".." or a hidden file). A name over max is cut on a rune
// boundary, keeping an extension of up to 16 bytes. An empty result is
// "file". CleanFileName is idempotent.
func CleanFileName(name string, max int) string {
	name = strings.TrimRight(name, `/\`)
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	var b strings.Builder
	for _, r := range name { // invalid UTF-8 yields U+FFFD, which is shown
		if r == ' ' || unicode.IsGraphic(r) && !unicode.IsSpace(r) {
			b.WriteRune(r)
		}
	}
	name = trimName(b.String())
	if len(name) > max {
		ext := filepath.Ext(name)
		if len(ext) > maxExtBytes || len(ext) == len(name) {
			ext = ""
		}
		name = trimName(trimName(cutRunes(name[:len(name)-len(ext)], max-len(ext))) + ext)
	}
	if name == "" {
		return "file"
	}
	return name
}

func trimName(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return r == '.' || r == ' ' })
}

// cutRunes returns the longest prefix of s of at most n bytes that ends on
// a rune boundary.
func cutRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
