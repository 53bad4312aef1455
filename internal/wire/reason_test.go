package wire

import (
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"bob", "bob"},
		{"<bob>", `\x3cbob\x3e`},
		{"a\x1bb", `a\x1bb`},
		{strings.Repeat("x", 100), strings.Repeat("x", MaxQuotedBytes-3) + "..."},
	} {
		if got := Quote(c.in); got != c.want {
			t.Errorf("Quote(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzQuote: whatever a client sends, a reason built with Quote formats
// into every reason-carrying line, and stays short.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "bob", "<", ">>>", "\x00\xff", strings.Repeat("é", 40), strings.Repeat(`\<`, 30)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := Quote(s)
		if len(q) > MaxQuotedBytes {
			t.Fatalf("Quote(%q) = %q: %d bytes", s, q, len(q))
		}
		for _, line := range []Query{Stop{Reason: "no such user: " + q}, Try{Reason: q}, End{Fatal: true, Reason: q}, NotOnline{Reason: q}} {
			if _, err := Format(line); err != nil {
				t.Fatalf("Quote(%q) = %q does not format: %v", s, q, err)
			}
		}
	})
}
