package wire

import (
	"reflect"
	"strings"
	"testing"
)

func TestGroupMembersLines(t *testing.T) {
	cases := []struct {
		q     Query
		line  string
		parse func([]byte) (Query, error)
	}{
		{GroupMembers{Token: tok}, "GROUPMEMBERS " + tok + " \r\n", ParseClient},
		{Members{Total: 0}, "MEMBERS 0 \r\n", ParseServer},
		{Members{Total: 3, Names: []string{"Alice", "bob"}}, "MEMBERS 3 Alice bob \r\n", ParseServer},
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
	}
	names := make([]string, MaxGroupMembers+1)
	for i := range names {
		names[i] = "u"
	}
	for _, bad := range []Query{
		Members{Total: 1, Names: []string{"a", "b"}},
		Members{Total: 60, Names: names},
		Members{Total: 1, Names: []string{"no space"}},
		GroupMembers{},
	} {
		if _, err := Format(bad); err == nil {
			t.Errorf("Format(%#v) succeeded", bad)
		}
	}
	for _, line := range []string{
		"MEMBERS", "MEMBERS x", "MEMBERS -1", "MEMBERS 01 a", "MEMBERS 1 a b", "MEMBERS 2 a b\x1b",
		"MEMBERS 99 " + strings.Repeat("u ", MaxGroupMembers+1), "GROUPMEMBERS", "GROUPMEMBERS a b",
	} {
		parse := ParseServer
		if strings.HasPrefix(line, "GROUP") {
			parse = ParseClient
		}
		if q, err := parse([]byte(line)); err == nil {
			t.Errorf("parse %q = %#v, want an error", line, q)
		}
	}
}
