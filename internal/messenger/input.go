package messenger

import (
	"bufio"
	"errors"
	"io"
	"strings"

	"golang.org/x/term"

	"sslmessager/internal/wire"
)

// maxInputLine bounds one line read in plain mode. It is above the longest
// text the protocol carries, so anything cut here is refused anyway.
const maxInputLine = wire.MaxLineBytes

// errInputTooLong is returned by a lineInput for an over-long line, which
// it has skipped; the next read starts at the following line.
var errInputTooLong = errors.New("line too long")

// lineInput is where the input loop reads its lines: plain lines from a
// pipe, or a term.Terminal that keeps the prompt intact.
type lineInput interface {
	// readLine returns the next line without its LF or CR LF.
	readLine() (string, error)
	// ask shows a one-time prompt and reads the answer.
	ask(prompt string) (string, error)
	// askSecret is ask for a password: a terminal does not echo it.
	askSecret(prompt string) (string, error)
	// setPrompt sets the standing prompt (terminal mode only).
	setPrompt(prompt string)
}

// plainInput reads lines from a pipe or file. It has no standing prompt:
// its output may be a log.
type plainInput struct {
	br  *bufio.Reader
	out *printer
}

func newPlainInput(in io.Reader, out *printer) *plainInput {
	return &plainInput{br: bufio.NewReader(in), out: out}
}

func (p *plainInput) readLine() (string, error) {
	var line []byte
	tooLong := false
	for {
		chunk, err := p.br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > maxInputLine+2 {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		switch {
		case err == nil:
			if tooLong {
				return "", errInputTooLong
			}
			return trimEOL(string(line)), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0 && !tooLong:
			return trimEOL(string(line)), nil // a last line without newline
		case errors.Is(err, io.EOF) && tooLong:
			return "", errInputTooLong
		default:
			return "", err
		}
	}
}

func (p *plainInput) ask(prompt string) (string, error) {
	p.out.prompt(prompt)
	return p.readLine()
}

// askSecret reads the next input line: plain input is no terminal, so
// nothing is echoed (a script supplies the answers as lines).
func (p *plainInput) askSecret(prompt string) (string, error) { return p.ask(prompt) }

func (p *plainInput) setPrompt(string) {}

// trimEOL drops a trailing LF and then one trailing CR.
func trimEOL(s string) string {
	s = strings.TrimSuffix(s, "\n")
	return strings.TrimSuffix(s, "\r")
}

// termInput reads through a term.Terminal, which redraws the prompt and the
// line being typed whenever output is written through it.
type termInput struct {
	t      *term.Terminal
	prompt string // the standing prompt; ask restores it
}

func (t *termInput) readLine() (string, error) {
	line, err := t.t.ReadLine()
	if err == term.ErrPasteIndicator {
		err = nil // a pasted line is a line
	}
	return trimEOL(line), err
}

func (t *termInput) ask(prompt string) (string, error) {
	t.t.SetPrompt(prompt)
	defer t.t.SetPrompt(t.prompt)
	return t.readLine()
}

// askSecret reads without echo and keeps the answer out of the history.
func (t *termInput) askSecret(prompt string) (string, error) {
	return t.t.ReadPassword(prompt)
}

func (t *termInput) setPrompt(prompt string) {
	t.prompt = prompt
	t.t.SetPrompt(prompt)
}
