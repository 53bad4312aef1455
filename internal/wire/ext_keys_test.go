package wire

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// bundleWord stands for a bundle: the wire checks only its shape.
var bundleWord = "AQ" + strings.Repeat("abcXYZ019-_", 21)

func TestKeyLines(t *testing.T) {
	cases := []struct {
		q     Query
		line  string
		parse func([]byte) (Query, error)
	}{
		{SetKey{Bundle: bundleWord, Token: tok}, "SETKEY " + bundleWord + " " + tok + " \r\n", ParseClient},
		{SetKey{Bundle: "!~", Token: tok}, "SETKEY !~ " + tok + " \r\n", ParseClient},
		{GetKey{User: "Bob", Token: tok}, "GETKEY Bob " + tok + " \r\n", ParseClient},
		{GetKey{User: "no.such-name!", Token: tok}, "GETKEY no.such-name! " + tok + " \r\n", ParseClient},
		{Key{User: "Bob", Bundle: bundleWord}, "KEY Bob " + bundleWord + " \r\n", ParseServer},
		{Key{User: "carol"}, "KEY carol - \r\n", ParseServer},
		{KeyChange{User: "bob", Bundle: bundleWord}, "KEYCHANGE bob " + bundleWord + " \r\n", ParseServer},
		{KeyChange{User: "bob"}, "KEYCHANGE bob - \r\n", ParseServer},
		{Key{User: "x", Bundle: strings.Repeat("b", MaxBundleBytes)}, "KEY x " + strings.Repeat("b", MaxBundleBytes) + " \r\n", ParseServer},
		{OK{Text: ReasonKeySaved}, "OK <key saved> \r\n", ParseServer},
	}
	for _, c := range cases {
		b, err := Format(c.q)
		if err != nil || string(b) != c.line {
			t.Errorf("Format(%#v) = %q, %v; want %q", c.q, b, err, c.line)
			continue
		}
		got, err := c.parse(stripCRLF(t, c.line))
		if err != nil || !reflect.DeepEqual(got, c.q) {
			t.Errorf("parse %q = %#v, %v; want %#v", c.line, got, err, c.q)
		}
		// Without the space before CR LF, as any client may send it.
		if _, err := c.parse([]byte(strings.TrimSuffix(c.line, " \r\n"))); err != nil {
			t.Errorf("parse %q without its trailing space: %v", c.line, err)
		}
	}
}

func TestKeyLinesRefused(t *testing.T) {
	long := strings.Repeat("b", MaxBundleBytes+1)
	bad := []struct {
		line  string
		parse func([]byte) (Query, error)
	}{
		{"SETKEY " + tok, ParseClient},                                 // no bundle
		{"SETKEY - " + tok, ParseClient},                               // "-" is no bundle
		{"SETKEY " + long + " " + tok, ParseClient},                    // too long
		{"SETKEY a\x1bb " + tok, ParseClient},                          // control character
		{"SETKEY a\xc3\xa9 " + tok, ParseClient},                       // not ASCII
		{"SETKEY a b " + tok, ParseClient},                             // two words
		{"SETKEY " + bundleWord + " " + long, ParseClient},             // token too long
		{"SETKEY  " + tok, ParseClient},                                // empty word
		{"GETKEY " + tok, ParseClient},                                 // no user
		{"GETKEY bob\x00 " + tok, ParseClient},                         // control character
		{"GETKEY " + strings.Repeat("b", 65) + " " + tok, ParseClient}, // over a word
		{"GETKEY bob carol " + tok, ParseClient},
		{"KEY bob", ParseServer},
		{"KEY bob " + long, ParseServer},
		{"KEY bob a b", ParseServer},
		{"KEY bob\x7f -", ParseServer},
		{"KEYCHANGE bob", ParseServer},
		{"KEYCHANGE bob \x01", ParseServer},
	}
	for _, c := range bad {
		q, err := c.parse([]byte(c.line))
		var pe *ProtocolError
		if !errors.As(err, &pe) {
			t.Errorf("parse %.60q = %#v, %v; want a protocol error", c.line, q, err)
		}
	}
	for _, q := range []Query{
		SetKey{Token: tok},
		SetKey{Bundle: NoBundle, Token: tok},
		SetKey{Bundle: "a b", Token: tok},
		SetKey{Bundle: long, Token: tok},
		GetKey{User: "", Token: tok},
		GetKey{User: "bo b", Token: tok},
		Key{User: "bob\n", Bundle: bundleWord},
		Key{User: "bob", Bundle: "\x1b[2J"},
		KeyChange{User: "", Bundle: bundleWord},
		KeyChange{User: "bob", Bundle: NoBundle}, // "" stands for no bundle
	} {
		if _, err := Format(q); !errors.Is(err, ErrField) {
			t.Errorf("Format(%#v) = %v, want ErrField", q, err)
		}
	}
}

func FuzzParseKeys(f *testing.F) {
	f.Add([]byte("SETKEY "+bundleWord+" "+tok), true)
	f.Add([]byte("GETKEY Bob "+tok), true)
	f.Add([]byte("GETKEY - "+tok), true)
	f.Add([]byte("KEY bob "+bundleWord), false)
	f.Add([]byte("KEY bob -"), false)
	f.Add([]byte("KEYCHANGE bob -"), false)
	f.Fuzz(func(t *testing.T, line []byte, client bool) {
		if client {
			roundTrip(t, line, ParseClient)
		} else {
			roundTrip(t, line, ParseServer)
		}
	})
}
