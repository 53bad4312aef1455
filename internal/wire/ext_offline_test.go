package wire

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var sent = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

func TestOfflineLines(t *testing.T) {
	cases := []struct {
		q     Query
		line  string
		parse func([]byte) (Query, error)
	}{
		{RelayQueued{Target: "carol", Sender: "alice", Sent: sent, Seq: 1780000000000001, Text: "hi\nthere"},
			"RELAYQ carol alice 2026-11-30T10:00:00Z 1780000000000001 hi\\nthere\\n \r\n", ParseServer},
		{RelayQueued{Target: "carol", Sender: "alice", Sent: sent, Seq: 7, Text: ""},
			"RELAYQ carol alice 2026-11-30T10:00:00Z 7 \\n \r\n", ParseServer},
		{RelayQueued{Target: "carol", Sender: "alice", Sent: sent, Seq: 18446744073709551615, Text: "a b  c\\"},
			"RELAYQ carol alice 2026-11-30T10:00:00Z 18446744073709551615 a b  c\\\\\\n \r\n", ParseServer},
		{AckMsg{Seq: 42, Token: tok}, "ACKM 42 " + tok + " \r\n", ParseClient},
		{NotOnline{Reason: ReasonQueued}, "CNT <user offline, message queued> \r\n", ParseServer},
		{NotOnline{Reason: ReasonOfflineQueueFull("Bob")}, "CNT <Bob's offline queue is full, message not delivered> \r\n", ParseServer},
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
}

func TestOfflineLinesRefused(t *testing.T) {
	bad := []struct {
		line  string
		parse func([]byte) (Query, error)
	}{
		{"RELAYQ carol alice 2026-11-30T10:00:00Z 0 hi\\n", ParseServer},                    // seq 0
		{"RELAYQ carol alice 2026-11-30T10:00:00Z 01 hi\\n", ParseServer},                   // leading zero
		{"RELAYQ carol alice 2026-11-30T10:00:00Z 18446744073709551616 hi\\n", ParseServer}, // over uint64
		{"RELAYQ carol alice 2026-11-30T10:00:00+01:00 5 hi\\n", ParseServer},               // not UTC
		{"RELAYQ carol alice 2026-11-30 5 hi\\n", ParseServer},
		{"RELAYQ carol alice 2026-11-30T10:00:00Z 5", ParseServer}, // no text
		{"RELAYQ carol  2026-11-30T10:00:00Z 5 hi", ParseServer},   // empty word
		{"RELAYQ carol alice 2026-11-30T10:00:00Z 5 " + strings.Repeat("x", MaxTextRunes+1), ParseServer},
		{"ACKM " + tok, ParseClient},
		{"ACKM -1 " + tok, ParseClient},
		{"ACKM 0 " + tok, ParseClient},
		{"ACKM 1 2 " + tok, ParseClient},
		{"ACKM x1 " + tok, ParseClient},
		{"ACKM +1 " + tok, ParseClient},
		{"ACKM 1_0 " + tok, ParseClient},
	}
	for _, c := range bad {
		q, err := c.parse([]byte(c.line))
		var pe *ProtocolError
		if !errors.As(err, &pe) {
			t.Errorf("parse %q = %#v, %v; want a protocol error", c.line, q, err)
		}
	}
	for _, q := range []Query{RelayQueued{Target: "carol", Sender: "alice", Sent: sent, Text: "seq 0"}, AckMsg{Token: tok}} {
		if _, err := Format(q); !errors.Is(err, ErrField) {
			t.Errorf("Format(%#v) = %v, want ErrField", q, err)
		}
	}
}

func TestOriginalRelays(t *testing.T) {
	now := sent.Add(time.Hour)
	rs := OriginalRelays("carol", "alice", sent, now, "hello")
	want := []Relay{{Target: "carol", Sender: "alice", Text: "[sent 10:00 UTC 30 Nov] hello"}}
	if !reflect.DeepEqual(rs, want) {
		t.Fatalf("got %#v", rs)
	}
	// Another year shows the year; local times are given in UTC.
	at := time.Date(2025, 1, 2, 23, 5, 0, 0, time.FixedZone("X", -3600))
	if p := OriginalSentPrefix(at, now); p != "[sent 00:05 UTC 3 Jan 2025] " {
		t.Errorf("prefix %q", p)
	}
	// A full-length text, with a byte that is not UTF-8, goes in two
	// lines that each format, and together hold every byte.
	text := "\xff" + strings.Repeat("é", MaxTextRunes-1)
	rs = OriginalRelays("carol", "alice", sent, now, text)
	if len(rs) != 2 {
		t.Fatalf("%d lines", len(rs))
	}
	p1, p2 := "[sent 10:00 UTC 30 Nov] ", "[sent 10:00 UTC 30 Nov, continued] "
	if !strings.HasPrefix(rs[0].Text, p1) || !strings.HasPrefix(rs[1].Text, p2) {
		t.Fatalf("prefixes: %.40q %.40q", rs[0].Text, rs[1].Text)
	}
	if rs[0].Text[len(p1):]+rs[1].Text[len(p2):] != text {
		t.Fatal("the two parts do not make the text")
	}
	if n := utf8.RuneCountInString(rs[0].Text); n != MaxTextRunes {
		t.Errorf("first part %d runes", n)
	}
	for _, r := range rs {
		if _, err := Format(r); err != nil {
			t.Error(err)
		}
	}
}
