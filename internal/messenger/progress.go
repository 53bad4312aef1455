package messenger

import (
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Progress bars. A transfer shows one bar at a time, drawn by
// github.com/schollz/progressbar into the printer, which owns the screen:
//
//   - Plain mode (output is not a term.Terminal): the bar is the last line
//     of the progress writer (stderr), drawn with CR; every printed line
//     first erases it and then draws it again below.
//   - Terminal mode: the bar has a line of its own just above the prompt.
//     Starting a bar opens that line; frames are drawn there through the
//     term.Terminal, which first takes the prompt and the line being typed
//     off the screen (all of its rows, when it is wider than the terminal)
//     and then draws them again below the bar, so nothing typed or
//     received is ever overwritten; a printed line takes the bar's place
//     and the bar and the prompt move down one line; the end of the bar
//     removes its line and the prompt takes it back.
//
// No bar is shown without a progress writer, nor for an empty file.

// ANSI sequences the bars use.
const (
	escUp       = "\x1b[A"
	escClearEOL = "\x1b[K"
)

// barThrottle is the shortest time between two frames of a bar.
const barThrottle = 100 * time.Millisecond

// setProgress sets where bars go (nil: no bars) and whether w is a
// term.Terminal of width cols (0: ask the progress writer, else 80).
func (p *printer) setProgress(barW io.Writer, terminal bool, cols int) {
	if cols <= 0 {
		cols = 80
		if f, ok := barW.(*os.File); ok {
			if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
				cols = w
			}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.barW, p.term, p.cols = barW, terminal, cols
}

// transferBar is the bar of one file. A nil *transferBar does nothing.
type transferBar struct {
	p     *printer
	pb    *progressbar.ProgressBar
	ended bool
}

// newBar starts a bar for a transfer of size bytes, or returns nil when
// bars are off, the size is 0 or another bar is active.
func (p *printer) newBar(name string, size int64) *transferBar {
	if p == nil || size <= 0 {
		return nil
	}
	p.mu.Lock()
	if p.barW == nil || p.barOn || p.closed {
		p.mu.Unlock()
		return nil
	}
	p.barOn, p.frame, p.barShown = true, "", false
	if p.term {
		p.w.Write([]byte("\n")) // the line above the prompt is the bar's
	}
	cols := p.cols
	p.mu.Unlock()

	desc := []rune(displayName(name))
	if len(desc) > 24 {
		desc = append(desc[:23], '…')
	}
	width := min(max(cols-len(desc)-52, 10), 40)
	pb := progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(barSink{p}),
		progressbar.OptionSetDescription(string(desc)+" "),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(width),
		progressbar.OptionThrottle(barThrottle),
		progressbar.OptionUseANSICodes(true),
	)
	return &transferBar{p: p, pb: pb}
}

func (b *transferBar) add(n int) {
	if b != nil && !b.ended {
		b.pb.Add(n)
	}
}

// done removes the bar. Calling it again does nothing.
func (b *transferBar) done() {
	if b == nil || b.ended {
		return
	}
	b.ended = true
	b.pb.Exit()
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	if !b.p.closed {
		b.p.clearBar()
	}
}

// barSink receives the bar's output and hands each frame to the printer;
// the printer does all the clearing and positioning itself.
type barSink struct{ p *printer }

func (s barSink) Write(b []byte) (int, error) {
	f := string(b)
	if i := strings.LastIndexByte(f, '\r'); i >= 0 {
		f = f[i+1:]
	}
	f = strings.TrimRight(strings.TrimSuffix(f, "\x1b[0K"), " ")
	if f != "" && !strings.Contains(f, "\x1b") {
		s.p.drawFrame(f)
	}
	return len(b), nil
}

// drawFrame shows f as the active bar.
func (p *printer) drawFrame(f string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.barOn || p.closed {
		return
	}
	if r := []rune(f); len(r) > p.cols-1 {
		f = string(r[:max(p.cols-1, 0)])
	}
	p.frame = f
	if p.term {
		// Relative to the first row of the prompt, wherever the cursor
		// is in a long typed line.
		p.w.Write([]byte(p.resetSeq() + escUp + "\r" + f + escClearEOL + "\n"))
		return
	}
	p.barW.Write([]byte("\r" + f + escClearEOL))
	p.barShown = true
}

// lineAboveBar prints s in terminal mode while a bar is active: s takes
// the bar's line, the bar the prompt's, and the terminal draws the prompt
// below. p.mu is held.
func (p *printer) lineAboveBar(s string) {
	p.w.Write([]byte(p.resetSeq() + escUp + "\r" + escClearEOL + s + "\n" + p.resetSeq() + p.frame + escClearEOL + "\n"))
}

// resetSeq is the colour reset a terminal-mode line starts with, if any.
func (p *printer) resetSeq() string {
	if p.reset {
		return colorReset
	}
	return ""
}

// hideBar erases the bar in plain mode before other output. p.mu is held.
func (p *printer) hideBar() {
	if !p.term && p.barShown {
		p.barW.Write([]byte("\r" + escClearEOL))
		p.barShown = false
	}
}

// showBar draws the bar again in plain mode after other output. p.mu is
// held.
func (p *printer) showBar() {
	if !p.term && p.barOn && p.frame != "" && !p.closed {
		p.barW.Write([]byte("\r" + p.frame + escClearEOL))
		p.barShown = true
	}
}

// clearBar ends the active bar: in terminal mode its line goes and the
// prompt moves back up. p.mu is held.
func (p *printer) clearBar() {
	if !p.barOn {
		return
	}
	if p.term {
		p.w.Write([]byte(escUp + "\r" + escClearEOL))
	} else {
		p.hideBar()
	}
	p.barOn, p.frame, p.barShown = false, "", false
}

// displayName is a file name fit for one output line: Sanitize, with a
// newline or tab shown as \n or \t.
func displayName(s string) string {
	return strings.NewReplacer("\n", `\n`, "\t", `\t`).Replace(Sanitize(s))
}
