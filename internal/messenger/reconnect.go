package messenger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"sslmessager/internal/wire"
)

// Reconnect backoff of RunReconnecting: the first wait, doubled after each
// failed attempt up to the longest; each wait is varied by up to
// reconnectJitter either way, so that clients dropped together do not all
// come back at once.
const (
	ReconnectFirstDelay = time.Second
	ReconnectMaxDelay   = 30 * time.Second
	reconnectJitter     = 0.2
)

// errDetached ends a read of a session that ended while it waited.
var errDetached = errors.New("session ended")

// DialFunc connects and logs in again, with the credentials the caller
// already has. A *RefusedError or *VerifyError ends RunReconnecting; any
// other error is tried again later.
type DialFunc func(ctx context.Context) (*Conn, error)

// RunReconnecting is Run for a terminal: when the connection breaks or the
// server shuts down, it says so once, then calls dial after 1 s, 2 s, 4 s
// ... up to 30 s (each ±20 %) until it succeeds, and goes on with the same
// target and group chat, saying "reconnected". Lines typed while it is not
// connected are not sent (it says so). It returns nil after :quit: or end of
// input (Ctrl-C, Ctrl-D), also while reconnecting; the error of a session
// that ended for another reason (the server's END with a fatal reason such
// as a kick, a bad line, an input error); the refusal when dial's log-in
// was refused (wrong password now, banned, account deleted); ctx.Err()
// when ctx ended. c must be logged in; RunReconnecting closes every
// connection it used.
//
// The interactive client uses it only when stdin and stdout are a
// terminal: a script gets a clear failure instead (Run).
func RunReconnecting(ctx context.Context, c *Conn, dial DialFunc, in io.Reader, out io.Writer, opts Options) error {
	if c.token == "" {
		return errors.New("not logged in")
	}
	opts = opts.withDefaults()
	sc := newScreen(in, out, opts)
	defer sc.close()
	sh := &sharedInput{in: sc.in}
	for {
		stop := make(chan struct{})
		err, k := c.run(ctx, sc, &attachedInput{sh: sh, stop: stop}, opts)
		close(stop)
		if !Reconnectable(err) {
			return err
		}
		opts.Target, opts.Group = k.target, k.group
		var ce *ClosedError
		if errors.As(err, &ce) {
			// The receiver has shown the server's reason.
			sc.out.line("! reconnecting (Ctrl-C stops)")
		} else {
			sc.out.line("! connection lost: " + Sanitize(err.Error()) + "; reconnecting (Ctrl-C stops)")
		}
		addr := c.addr
		if c, err = reconnect(ctx, sc, sh, dial); err != nil {
			if errors.Is(err, io.EOF) {
				return nil // the user stopped it
			}
			return err
		}
		sc.out.line("reconnected to " + Sanitize(addr))
	}
}

// Reconnectable says whether a session that ended with err may be taken
// up again on a new connection: the connection broke, or the server ended
// the session because it shuts down, is overloaded or found us too slow.
// Never after a quit (nil), end of input, a kick, a ban, a deleted
// account or a protocol error.
func Reconnectable(err error) bool {
	if err == nil {
		return false
	}
	var ce *ClosedError
	if errors.As(err, &ce) {
		return ce.Reason == wire.ReasonShutdown || ce.Reason == wire.ReasonServerError ||
			ce.Reason == wire.ReasonSlowConsumer
	}
	var ie *InputError
	var pe *PanicError
	if errors.As(err, &ie) || errors.As(err, &pe) {
		return false
	}
	if errors.Is(err, ErrConnectionClosed) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}

// reconnect dials with backoff until dial succeeds, the log-in is
// refused, ctx ends or input ends (io.EOF).
func reconnect(ctx context.Context, sc *screen, sh *sharedInput, dial DialFunc) (*Conn, error) {
	delay := ReconnectFirstDelay
	for {
		wait := time.Duration(float64(delay) * (1 - reconnectJitter + 2*reconnectJitter*rand.Float64()))
		elapsed := make(chan struct{})
		t := time.AfterFunc(wait, func() { close(elapsed) })
		err := sh.waitWhile(ctx, sc, elapsed)
		t.Stop()
		if err != nil {
			return nil, err
		}
		c, err := dialWatched(ctx, sc, sh, dial)
		if err == nil {
			return c, nil
		}
		var re *RefusedError
		var ve *VerifyError
		switch {
		case errors.Is(err, io.EOF), ctx.Err() != nil:
			return nil, err
		case errors.As(err, &re):
			return nil, fmt.Errorf("reconnect: log-in %w", err)
		case errors.As(err, &ve):
			return nil, fmt.Errorf("reconnect: %w", err)
		}
		delay = min(2*delay, ReconnectMaxDelay)
	}
}

// dialWatched runs dial while watching the input for its end.
func dialWatched(ctx context.Context, sc *screen, sh *sharedInput, dial DialFunc) (*Conn, error) {
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		c   *Conn
		err error
	}
	ch := make(chan result, 1)
	done := make(chan struct{})
	go func() {
		c, err := dial(dctx)
		ch <- result{c, err}
		close(done)
	}()
	if err := sh.waitWhile(ctx, sc, done); err != nil {
		cancel()
		go func() {
			if r := <-ch; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, err
	}
	r := <-ch
	return r.c, r.err
}

// Kinds of input reads.
const (
	readKindLine = iota
	readKindAsk
	readKindSecret
)

// sharedInput is the one reader of the input across the sessions of
// RunReconnecting. A read runs in a goroutine of its own; a session that
// ends while its read waits leaves the read in flight, and the next
// session (or the reconnect loop) takes its result. Only a plain line is
// ever handed to another reader: an answer to a prompt (a password above
// all) goes to the session that asked, or nowhere.
type sharedInput struct {
	in      lineInput
	mu      sync.Mutex
	pending *inputRead // guarded by mu: in flight, or done and not taken
}

type inputRead struct {
	kind  int
	owner chan struct{} // the stop channel of the session that asked
	done  chan struct{} // closed when line and err are set
	line  string
	err   error
}

// start returns the read in flight, or starts one.
func (sh *sharedInput) start(kind int, prompt string, owner chan struct{}) *inputRead {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if r := sh.pending; r != nil {
		return r
	}
	r := &inputRead{kind: kind, owner: owner, done: make(chan struct{})}
	sh.pending = r
	go func() {
		switch kind {
		case readKindLine:
			r.line, r.err = sh.in.readLine()
		case readKindAsk:
			r.line, r.err = sh.in.ask(prompt)
		case readKindSecret:
			r.line, r.err = sh.in.askSecret(prompt)
		}
		close(r.done)
	}()
	return r
}

// take marks r's result as used.
func (sh *sharedInput) take(r *inputRead) {
	sh.mu.Lock()
	if sh.pending == r {
		sh.pending = nil
	}
	sh.mu.Unlock()
}

// read returns the next result for a read of kind by owner, or errDetached
// once owner's stop channel is closed.
func (sh *sharedInput) read(kind int, prompt string, owner chan struct{}) (string, error) {
	for {
		r := sh.start(kind, prompt, owner)
		select {
		case <-r.done:
		case <-owner:
			return "", errDetached
		}
		sh.take(r)
		if r.err != nil || r.owner == owner || (r.kind == readKindLine && kind == readKindLine) {
			return r.line, r.err
		}
		// An answer to another session's prompt: dropped.
	}
}

// waitWhile waits for ready (or ctx) while keeping a read of the input in
// flight: end of input (Ctrl-C, Ctrl-D) returns io.EOF; a line typed
// meanwhile is not sent, and the user is told so.
func (sh *sharedInput) waitWhile(ctx context.Context, sc *screen, ready <-chan struct{}) error {
	for {
		r := sh.start(readKindLine, "", nil)
		select {
		case <-ready:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-r.done:
			sh.take(r)
			if r.err != nil {
				return io.EOF
			}
			if r.kind == readKindLine && strings.TrimSpace(r.line) != "" {
				sc.out.line("! not connected: line not sent")
			}
		}
	}
}

// attachedInput is one session's view of a sharedInput.
type attachedInput struct {
	sh   *sharedInput
	stop chan struct{}
}

func (a *attachedInput) readLine() (string, error) {
	return a.sh.read(readKindLine, "", a.stop)
}

func (a *attachedInput) ask(prompt string) (string, error) {
	return a.sh.read(readKindAsk, prompt, a.stop)
}

func (a *attachedInput) askSecret(prompt string) (string, error) {
	return a.sh.read(readKindSecret, prompt, a.stop)
}

func (a *attachedInput) setPrompt(prompt string) { a.sh.in.setPrompt(prompt) }
