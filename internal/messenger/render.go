package messenger

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// ANSI colour for group messages.
const (
	colorGreen = "\x1b[32m"
	colorReset = "\x1b[0m"
)

// isShown says whether r may reach a terminal as it is: graphic runes
// (letters, marks, numbers, punctuation, symbols, spaces) are; control
// (Cc, including C1), format (Cf, such as the bidi override U+202E),
// line and paragraph separators, private-use and unassigned runes are not.
func isShown(r rune) bool { return unicode.IsGraphic(r) }

// Sanitize makes s safe to print: LF and TAB are kept, every other rune
// that is not shown as it is becomes a visible escape: \xNN below U+0080
// and for bytes that are not UTF-8, \uNNNN or \UNNNNNNNN above. A terminal
// never receives a raw escape sequence or a direction override from it.
func Sanitize(s string) string {
	if clean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n', r == '\t', isShown(r):
			b.WriteString(s[i : i+n])
		case r < utf8.RuneSelf:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
		i += n
	}
	return b.String()
}

// clean says whether Sanitize would leave s as it is.
func clean(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r != '\n' && r != '\t' && !isShown(r) {
			return false
		}
	}
	return true
}

func runeCount(s string) int { return utf8.RuneCountInString(s) }

// renderer lays out received messages.
type renderer struct {
	color      bool
	timestamps bool
	now        func() time.Time
}

// message renders one received message as one or more terminal lines
// (without the final newline): "[15:04:05] alice: text", with "[group] "
// before the sender for group messages, which are green when colour is on.
// Later lines of a multi-line text are indented under the first.
func (r renderer) message(sender, text string, group bool) string {
	label := Sanitize(sender)
	if group {
		label = "[group] " + label
	}
	return r.layout(label, text, group && r.color)
}

// carbon renders a direct message that this user sent to target from
// another of its sessions, laid out like a received message:
// "[15:04:05] you → bob (other session): text". mine is false when the
// server named another sender, which is then shown instead of "you".
func (r renderer) carbon(sender, target, text string, mine bool) string {
	from := "you"
	if !mine {
		from = Sanitize(sender)
	}
	return r.layout(from+" → "+Sanitize(target)+" (other session)", text, false)
}

// layout puts the timestamp and label (already sanitized) before the
// sanitized text, indents its later lines under the first and colours
// every line green when green is set.
func (r renderer) layout(label, text string, green bool) string {
	var prefix strings.Builder
	if r.timestamps {
		prefix.WriteString("[" + r.now().Format(time.TimeOnly) + "] ")
	}
	prefix.WriteString(label)
	prefix.WriteString(": ")
	indent := strings.Repeat(" ", runeCount(prefix.String()))

	lines := strings.Split(Sanitize(text), "\n")
	var b strings.Builder
	for i, l := range lines {
		if i > 0 {
			b.WriteByte('\n')
		}
		if green {
			b.WriteString(colorGreen)
		}
		if i == 0 {
			b.WriteString(prefix.String())
		} else {
			b.WriteString(indent)
		}
		b.WriteString(l)
		if green {
			b.WriteString(colorReset)
		}
	}
	return b.String()
}

// printer writes whole lines to the output, one Write per line, so lines
// from the receiver and the input loop never interleave. After close it
// drops everything.
type printer struct {
	mu      sync.Mutex
	w       io.Writer
	closed  bool
	partial bool // a prompt without newline is on the last line

	// Progress bars (progress.go); barW nil means none.
	barW     io.Writer // where bar frames go (stderr)
	term     bool      // w is a term.Terminal with a prompt line
	cols     int       // terminal width for the bar
	barOn    bool      // a bar is active
	frame    string    // its last frame
	barShown bool      // plain mode: the frame is on the screen
}

// line prints s and a newline.
func (p *printer) line(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	if p.barOn && p.term {
		p.lineAboveBar(s)
		return
	}
	p.hideBar()
	defer p.showBar()
	b := make([]byte, 0, len(s)+2)
	if p.partial {
		b = append(b, '\n')
		p.partial = false
	}
	b = append(b, s...)
	b = append(b, '\n')
	p.w.Write(b)
}

// linef is line with formatting.
func (p *printer) linef(format string, args ...any) { p.line(fmt.Sprintf(format, args...)) }

// raw writes b as it is (through a term.Terminal, an empty write redraws
// the prompt line).
func (p *printer) raw(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.w.Write(b)
	}
}

// prompt prints s without a newline; the next line starts on a fresh line.
func (p *printer) prompt(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.hideBar()
	if p.partial {
		s = "\n" + s
	}
	p.w.Write([]byte(s))
	p.partial = true
}

func (p *printer) close() {
	p.mu.Lock()
	if !p.closed {
		p.clearBar()
	}
	p.closed = true
	p.mu.Unlock()
}
