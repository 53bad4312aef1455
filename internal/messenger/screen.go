package messenger

import (
	"cmp"
	"io"
	"sync"

	"golang.org/x/term"
)

// Keys the terminal filter acts on (raw mode delivers them as bytes).
const (
	keyCtrlC = 0x03
	keyCtrlZ = 0x1a
)

// ctrlCKeys is what Ctrl-C becomes for the term.Terminal: go to the end
// of the line (Ctrl-E), erase it (Ctrl-U), then end of input on the empty
// line (Ctrl-D). The half-typed line is gone from the screen and is never
// sent, so the shell gets a clean line after the client quits.
const ctrlCKeys = "\x05\x15\x04"

// screen is what the sessions of one Run or RunReconnecting share: the
// output (through a term.Terminal in Terminal mode) and the input.
type screen struct {
	out   *printer
	in    lineInput
	term  *term.Terminal // nil in plain mode
	color bool
	stop  chan struct{} // closed by close
	once  sync.Once
}

// newScreen sets up the output and input for opts.
func newScreen(in io.Reader, out io.Writer, opts Options) *screen {
	sc := &screen{color: opts.Color, stop: make(chan struct{})}
	if opts.Terminal {
		kf := &keyFilter{r: in, suspend: opts.Suspend}
		sc.term = term.NewTerminal(struct {
			io.Reader
			io.Writer
		}{kf, out}, "")
		if opts.Width > 0 && opts.Height > 0 {
			sc.term.SetSize(opts.Width, opts.Height)
		}
		sc.out = &printer{w: sc.term, reset: opts.Color}
		sc.in = &termInput{t: sc.term}
		kf.redraw = func() { sc.out.raw(nil) }
		if opts.Resize != nil {
			go sc.resizeLoop(opts.Resize)
		}
	} else {
		sc.out = &printer{w: out}
		sc.in = newPlainInput(in, sc.out)
	}
	if opts.Progress != nil {
		cols := 0
		if opts.Terminal {
			cols = cmp.Or(opts.Width, 80)
		}
		sc.out.setProgress(opts.Progress, opts.Terminal, cols)
	}
	return sc
}

// resizeLoop lays the prompt line out again for each new size.
func (sc *screen) resizeLoop(sizes <-chan TermSize) {
	for {
		select {
		case <-sc.stop:
			return
		case sz := <-sizes:
			if sz.Width > 0 && sz.Height > 0 {
				sc.out.resize(sc.term, sz.Width, sz.Height)
			}
		}
	}
}

// close leaves the cursor on a clean line (in the default colour) for
// whatever the caller prints, and drops all later output.
func (sc *screen) close() {
	sc.once.Do(func() {
		close(sc.stop)
		if sc.term != nil {
			sc.term.SetPrompt("")
			if sc.color {
				sc.out.raw([]byte(colorReset))
			} else {
				sc.out.raw(nil)
			}
		}
		sc.out.close()
	})
}

// keyFilter sits between the terminal and the term.Terminal: Ctrl-C
// becomes ctrlCKeys, Ctrl-Z calls suspend (then redraws the prompt line)
// and is dropped.
type keyFilter struct {
	r       io.Reader
	suspend func()
	redraw  func()
	pending []byte // filtered bytes not yet returned
	buf     [256]byte
}

func (k *keyFilter) Read(p []byte) (int, error) {
	for len(k.pending) == 0 {
		n, err := k.r.Read(k.buf[:])
		for _, b := range k.buf[:n] {
			switch b {
			case keyCtrlC:
				k.pending = append(k.pending, ctrlCKeys...)
			case keyCtrlZ:
				if k.suspend != nil {
					k.suspend()
					if k.redraw != nil {
						k.redraw()
					}
				}
			default:
				k.pending = append(k.pending, b)
			}
		}
		if err != nil {
			if len(k.pending) > 0 {
				break
			}
			return 0, err
		}
	}
	n := copy(p, k.pending)
	k.pending = k.pending[n:]
	return n, nil
}
