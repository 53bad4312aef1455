package messenger

import (
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
)

// TestReconnectable: a broken connection and a server that shuts down are
// taken up again; a quit, end of input, a kick, a deleted account, a
// protocol error and a panic are not.
func TestReconnectable(t *testing.T) {
	opErr := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{ErrConnectionClosed, true},
		{fmt.Errorf("read from server: %w", opErr), true},
		{fmt.Errorf("send to server: %w", opErr), true},
		{&ClosedError{Reason: "server shutting down"}, true},
		{&ClosedError{Reason: "server error, try again later", Fatal: true}, true},
		{&ClosedError{Reason: "slow consumer: messages were not read in time", Fatal: true}, true},
		{&ClosedError{Reason: "kicked by an administrator", Fatal: true}, false},
		{&ClosedError{Reason: "account deleted", Fatal: true}, false},
		{&ClosedError{Reason: "invalid session token"}, false},
		{&InputError{Err: io.ErrUnexpectedEOF}, false},
		{&InputError{Err: opErr}, false}, // an input error is never the server's
		{errors.New("the server sent a file outside a download"), false},
		{guard(func() error { panic("boom") }), false},
	} {
		if got := Reconnectable(tt.err); got != tt.want {
			t.Errorf("Reconnectable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// TestGuard: a panic in a session goroutine becomes a *PanicError with
// the stack, so that the caller can restore the terminal first.
func TestGuard(t *testing.T) {
	err := guard(func() error { panic("boom") })
	var pe *PanicError
	if !errors.As(err, &pe) || pe.Value != "boom" || len(pe.Stack) == 0 {
		t.Fatalf("guard = %v", err)
	}
	if err := guard(func() error { return io.EOF }); err != io.EOF {
		t.Fatalf("guard passed %v on", err)
	}
}

// lines is a lineInput fed by a channel, recording the prompts asked.
type lines struct{ ch chan string }

func (l lines) next() (string, error) {
	s, ok := <-l.ch
	if !ok {
		return "", io.EOF
	}
	return s, nil
}
func (l lines) readLine() (string, error)        { return l.next() }
func (l lines) ask(string) (string, error)       { return l.next() }
func (l lines) askSecret(string) (string, error) { return l.next() }
func (l lines) setPrompt(string)                 {}

// TestSharedInputHandover: a line read for a session that ended goes to
// the next session; an answer to a prompt (a password) never does.
func TestSharedInputHandover(t *testing.T) {
	in := lines{ch: make(chan string)}
	sh := &sharedInput{in: in}

	// Session 1 waits for a line and ends; the line typed then goes to
	// session 2.
	s1 := make(chan struct{})
	got := make(chan error, 1)
	go func() { _, err := sh.read(readKindLine, "", s1); got <- err }()
	close(s1)
	if err := <-got; !errors.Is(err, errDetached) {
		t.Fatalf("ended session's read: %v", err)
	}
	in.ch <- "typed line"
	s2 := make(chan struct{})
	if line, err := sh.read(readKindLine, "", s2); line != "typed line" || err != nil {
		t.Fatalf("next session read %q, %v", line, err)
	}

	// Session 2 asks for a password and ends; the password is dropped,
	// and session 3 reads the line after it.
	go func() { _, err := sh.read(readKindSecret, "password: ", s2); got <- err }()
	close(s2)
	<-got
	s3 := make(chan struct{})
	go func() {
		in.ch <- "secret-password"
		in.ch <- "next line"
	}()
	if line, err := sh.read(readKindLine, "", s3); line != "next line" || err != nil {
		t.Fatalf("after a dropped answer: %q, %v", line, err)
	}

	// End of input reaches whoever reads.
	close(in.ch)
	if _, err := sh.read(readKindLine, "", s3); err != io.EOF {
		t.Fatalf("end of input: %v", err)
	}
}
