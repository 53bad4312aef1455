package wire

import (
	"unicode"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// AppendEscaped appends s to dst in the relayed-text escaping: LF, CR, TAB
// and backslash become \n, \r, \t and \\; every other byte of a control
// character, of a non-printable rune (including bidi overrides and C1
// controls) or of invalid UTF-8 becomes \xNN; printable UTF-8 and the ASCII
// space pass as they are. The result never holds a raw control character,
// so it is safe on any terminal, and Unescape reverses it exactly.
func AppendEscaped(dst []byte, s string) []byte {
	return appendEscaped(dst, s, false)
}

// Escape returns AppendEscaped(nil, s) as a string.
func Escape(s string) string { return string(AppendEscaped(nil, s)) }

// EscapeWord is Escape that also turns spaces into \x20, so the result is
// one word. File names travel this way.
func EscapeWord(s string) string { return string(appendEscaped(nil, s, true)) }

func appendEscaped(dst []byte, s string, word bool) []byte {
	for i := 0; i < len(s); {
		// Copy a run of bytes that need no escaping in one go.
		j := i
		for j < len(s) && safeASCII(s[j], word) {
			j++
		}
		if j > i {
			dst = append(dst, s[i:j]...)
			if i = j; i == len(s) {
				break
			}
		}
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c == '\\':
				dst = append(dst, '\\', '\\')
			case c == ' ' && word, c < 0x20, c == 0x7f:
				dst = append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || !unicode.IsPrint(r) {
			for j := i; j < i+n; j++ {
				dst = append(dst, '\\', 'x', hexDigits[s[j]>>4], hexDigits[s[j]&0xf])
			}
		} else {
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return dst
}

// Unescape reverses Escape and EscapeWord. It is lenient: a backslash that
// does not start a known escape is kept as it is.
func Unescape(s string) string {
	i := 0
	for i < len(s) && s[i] != '\\' {
		i++
	}
	if i == len(s) {
		return s
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	for i < len(s) {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b = append(b, c)
			i++
			continue
		}
		switch s[i+1] {
		case 'n':
			b = append(b, '\n')
			i += 2
		case 'r':
			b = append(b, '\r')
			i += 2
		case 't':
			b = append(b, '\t')
			i += 2
		case '\\':
			b = append(b, '\\')
			i += 2
		case 'x':
			if i+3 < len(s) && isHex(s[i+2]) && isHex(s[i+3]) {
				b = append(b, unhex(s[i+2])<<4|unhex(s[i+3]))
				i += 4
			} else {
				b = append(b, c)
				i++
			}
		default:
			b = append(b, c)
			i++
		}
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

// safeASCII reports a byte that passes as it is: printable ASCII but the
// backslash (and, in a word, the space).
func safeASCII(c byte, word bool) bool {
	return c > ' ' && c < 0x7f && c != '\\' || c == ' ' && !word
}
