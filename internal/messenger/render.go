package messenger

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rivo/uniseg"
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
// VARIATION SELECTOR-16, a mark, is shown only in an emoji sequence
// (Sanitize).
func isShown(r rune) bool { return unicode.IsGraphic(r) && r != variationSelector16 }

// Joiners that Sanitize lets through inside an emoji sequence only.
const (
	zeroWidthJoiner     = '\u200d' // joins emoji: 👩‍💻
	variationSelector16 = '\ufe0f' // emoji presentation: ❤️
	combiningKeycap     = '\u20e3' // 1️⃣
)

// Sanitize makes s safe to print: LF and TAB are kept, every other rune
// that is not shown as it is becomes a visible escape: \xNN below U+0080
// and for bytes that are not UTF-8, \uNNNN or \UNNNNNNNN above. A terminal
// never receives a raw escape sequence or a direction override from it.
// The one exception are the ZERO WIDTH JOINER (U+200D) and VARIATION
// SELECTOR-16 (U+FE0F) inside an emoji sequence (one grapheme cluster, as
// Unicode's UAX #29 defines it): a ZWJ between two pictographs, a VS16
// after a symbol or a keycap base, so that 👩‍💻 and ❤️ show as emoji. Out
// of such a sequence they are escaped like any other format character.
func Sanitize(s string) string {
	if clean(s) {
		return s
	}
	joiners := emojiJoiners(s)
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n', r == '\t', isShown(r), joiners[i]:
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

// emojiJoiners returns the byte offsets in s of the ZWJ and VS16 runes
// that are part of an emoji sequence (nil when s has none).
func emojiJoiners(s string) map[int]bool {
	if !strings.ContainsRune(s, zeroWidthJoiner) && !strings.ContainsRune(s, variationSelector16) {
		return nil
	}
	type at struct {
		r   rune
		off int
	}
	ok := make(map[int]bool)
	state, off := -1, 0
	for rest := s; rest != ""; {
		var cluster string
		cluster, rest, _, state = uniseg.FirstGraphemeClusterInString(rest, state)
		var rs []at
		for i, r := range cluster {
			rs = append(rs, at{r, off + i})
		}
		off += len(cluster)
		for i, x := range rs {
			var prev, next rune = -1, -1
			if i > 0 {
				prev = rs[i-1].r
			}
			if i+1 < len(rs) {
				next = rs[i+1].r
			}
			switch x.r {
			case zeroWidthJoiner:
				// Inside one cluster, only a pictograph follows a ZWJ
				// that is not another extender (UAX #29 GB11), and
				// that rule wants a pictograph before it too.
				ok[x.off] = prev >= 0 && next >= 0 && next != zeroWidthJoiner &&
					isShown(next) && !unicode.In(next, unicode.M, unicode.Sk)
			case variationSelector16:
				ok[x.off] = unicode.Is(unicode.So, prev) ||
					(strings.ContainsRune("0123456789#*", prev) && next == combiningKeycap)
			}
		}
	}
	return ok
}

// clean says whether Sanitize would leave s as it is (for a string with
// emoji joiners it says no, and Sanitize looks closer).
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
	reset   bool // terminal mode with colour: each line starts in the default colour (the group prompt is green)

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
	b := make([]byte, 0, len(s)+8)
	if p.reset {
		b = append(b, colorReset...)
	}
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

// resize tells the terminal t (the printer's writer) its new size.
func (p *printer) resize(t interface{ SetSize(int, int) error }, width, height int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	t.SetSize(width, height)
	p.cols = width
}

func (p *printer) close() {
	p.mu.Lock()
	if !p.closed {
		p.clearBar()
	}
	p.closed = true
	p.mu.Unlock()
}
