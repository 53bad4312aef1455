package wire

import "strings"

// MaxQuotedBytes bounds what Quote keeps of a client's word.
const MaxQuotedBytes = 40

// Quote returns a copy of s, a word a client sent, that is safe inside a
// reason (<...>) and short: escaped as relayed text is (no control
// characters), with '<' and '>' as \x3c and \x3e, and cut to
// MaxQuotedBytes with "..." after the cut. Every reason that names
// something a client sent uses Quote; formatting such a reason cannot fail.
func Quote(s string) string {
	e := EscapeWord(s)
	if strings.ContainsAny(e, "<>") {
		e = strings.NewReplacer("<", `\x3c`, ">", `\x3e`).Replace(e)
	}
	if len(e) <= MaxQuotedBytes {
		return e
	}
	cut := MaxQuotedBytes - 3
	// Never cut inside an escape: back up to the backslash that starts it.
	if i := strings.LastIndexByte(e[:cut], '\\'); i >= 0 && i+4 > cut {
		cut = i
	}
	for cut > 0 && e[cut]&0xc0 == 0x80 { // inside a UTF-8 sequence
		cut--
	}
	return e[:cut] + "..."
}
