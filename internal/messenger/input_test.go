package messenger

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestPlainInputLines(t *testing.T) {
	long := strings.Repeat("x", maxInputLine+10)
	in := newPlainInput(strings.NewReader("one\r\n"+long+"\ntwo\nlast without newline"), &printer{w: io.Discard})
	want := []struct {
		line string
		err  error
	}{{"one", nil}, {"", errInputTooLong}, {"two", nil}, {"last without newline", nil}, {"", io.EOF}}
	for i, w := range want {
		line, err := in.readLine()
		if line != w.line || !errors.Is(err, w.err) && err != w.err {
			t.Fatalf("read %d = %q, %v; want %q, %v", i, line, err, w.line, w.err)
		}
	}
}
