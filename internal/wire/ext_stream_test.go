package wire

import (
	"reflect"
	"strings"
	"testing"
)

func TestStreamLines(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	cases := []struct {
		q     Query
		line  string
		parse func([]byte) (Query, error)
	}{
		{GetLive{Token: tok}, "GETLIVE " + tok + " \r\n", ParseClient},
		{Push{Token: tok}, "PUSH " + tok + " \r\n", ParseClient},
		{StreamHeader{Name: "a b.txt", Size: 64 << 20, Sender: "alice"}, "STREAMF a\\x20b.txt 67108864 alice \r\n", ParseServer},
		{StreamHeader{Name: "empty", Size: 0, Sender: "alice"}, "STREAMF empty 0 alice \r\n", ParseServer},
		{Chunk{Size: 262144}, "CHUNK 262144 \r\n", ParseServer},
		{StreamEnd{SHA256: sum, ID: "0123456789abcdef01234567"}, "STREAMEND " + sum + " 0123456789abcdef01234567 \r\n", ParseServer},
		{StreamAbort{Reason: ReasonUploadBrokeOff}, "STREAMABORT <the upload broke off> \r\n", ParseServer},
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

func TestStreamLinesRefused(t *testing.T) {
	bad := []struct {
		line  string
		parse func([]byte) (Query, error)
	}{
		{"GETLIVE", ParseClient},
		{"GETLIVE a " + tok, ParseClient},
		{"PUSH", ParseClient},
		{"STREAMF a 10", ParseServer},
		{"STREAMF a -1 alice", ParseServer},
		{"STREAMF a 01 alice", ParseServer},
		{"STREAMF a 10 alice x", ParseServer},
		{"STREAMF a 12345678901234567 alice", ParseServer}, // over MaxFileSize
		{"CHUNK 0", ParseServer},
		{"CHUNK 1048577", ParseServer},
		{"CHUNK x", ParseServer},
		{"CHUNK", ParseServer},
		{"STREAMEND abc", ParseServer},
		{"STREAMABORT broke", ParseServer},
	}
	for _, c := range bad {
		if q, err := c.parse([]byte(c.line)); err == nil {
			t.Errorf("parse %q = %#v, want an error", c.line, q)
		}
	}
	for _, q := range []Query{Chunk{Size: 0}, Chunk{Size: MaxChunkBytes + 1}, StreamHeader{Name: "a", Size: -1, Sender: "s"}, StreamAbort{Reason: "a<b"}} {
		if _, err := Format(q); err == nil {
			t.Errorf("Format(%#v) succeeded, want an error", q)
		}
	}
}
