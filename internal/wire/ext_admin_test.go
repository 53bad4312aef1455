package wire

import (
	"reflect"
	"strings"
	"testing"
)

func TestAdminLines(t *testing.T) {
	cases := []struct {
		line   string
		want   Query
		client bool
	}{
		{"ADMIN kick bob spamming\n " + tok + " \r\n", Admin{Command: "kick bob spamming", Token: tok}, true},
		{"ADMIN online\n " + tok + " \r\n", Admin{Command: "online", Token: tok}, true},
		{"ADMINR alice 127.0.0.1:5000 group \r\n", AdminData{Text: "alice 127.0.0.1:5000 group"}, false},
		{"ADMINR tab\\there\\n\\x1b[31m \r\n", AdminData{Text: "tab\there\n\x1b[31m"}, false},
		{"ADMINR  \r\n", AdminData{Text: ""}, false},
		{"ROLE admin \r\n", Role{Role: "admin"}, false},
	}
	for _, c := range cases {
		parse := ParseServer
		if c.client {
			parse = ParseClient
		}
		got, err := parse(stripCRLF(t, c.line))
		if err != nil {
			t.Errorf("parse(%q): %v", c.line, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("parse(%q) = %#v, want %#v", c.line, got, c.want)
		}
		b, err := Format(c.want)
		if err != nil || string(b) != c.line {
			t.Errorf("Format(%#v) = %q, %v; want %q", c.want, b, err, c.line)
		}
	}
}

func TestAdminRefused(t *testing.T) {
	for _, line := range []string{
		"ADMIN " + tok,      // no command
		"ADMIN   \n " + tok, // blank command
		"ADMIN kick bob",    // the last word is taken as the token: "kick" alone is a command
		"ROLE",              // no role
		"ROLE admin user",   // two words
		"ADMIN " + strings.Repeat("x", 4001) + " " + tok,
	} {
		q, err := ParseClient([]byte(line))
		if line == "ADMIN kick bob" {
			if err != nil || q.(Admin).Command != "kick" {
				t.Errorf("ParseClient(%q) = %#v, %v", line, q, err)
			}
			continue
		}
		if err == nil && strings.HasPrefix(line, "ADMIN") {
			t.Errorf("ParseClient(%q) = %#v, want an error", line, q)
		}
		if strings.HasPrefix(line, "ROLE") {
			if q, err := ParseServer([]byte(line)); err == nil {
				t.Errorf("ParseServer(%q) = %#v, want an error", line, q)
			}
		}
	}
	if _, err := Format(Admin{Command: " ", Token: tok}); err == nil {
		t.Error("Format of a blank ADMIN command succeeded")
	}
}

func TestSafeText(t *testing.T) {
	cases := map[string]string{
		"spamming the group": "spamming the group",
		"<b>bad</b>\n":       `\x3cb\x3ebad\x3c/b\x3e\n`,
		"\x1b[2J":            `\x1b[2J`,
	}
	for in, want := range cases {
		if got := SafeText(in); got != want {
			t.Errorf("SafeText(%q) = %q, want %q", in, got, want)
		}
	}
	long := SafeText(strings.Repeat("é", 200))
	if len(long) > MaxSafeTextBytes || !strings.HasSuffix(long, "...") {
		t.Errorf("long text: %d bytes %q", len(long), long)
	}
	if _, err := Format(End{Fatal: true, Reason: "kicked: " + SafeText(strings.Repeat("<\x00>", 500))}); err != nil {
		t.Errorf("a reason from SafeText cannot be sent: %v", err)
	}
}

func FuzzSafeText(f *testing.F) {
	f.Add("spam <now>")
	f.Add(strings.Repeat("\\x", 100))
	f.Fuzz(func(t *testing.T, s string) {
		r := SafeText(s)
		if !validReason(r) || len(r) > MaxSafeTextBytes {
			t.Fatalf("SafeText(%q) = %q: not a valid reason", s, r)
		}
	})
}

func FuzzParseAdmin(f *testing.F) {
	f.Add([]byte("ADMIN kick bob spamming\n "+tok), true)
	f.Add([]byte("ADMIN x\r "+tok), true)
	f.Add([]byte("ADMINR a\\tb\\x00"), false)
	f.Add([]byte("ROLE admin"), false)
	f.Fuzz(func(t *testing.T, line []byte, client bool) {
		if client {
			roundTrip(t, line, ParseClient)
		} else {
			roundTrip(t, line, ParseServer)
		}
	})
}
