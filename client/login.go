package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"sslmessager/internal/messenger"
	"sslmessager/internal/wire"
)

// console is the program's standard streams, and whether they are
// terminals. Prompts go to errw so that stdout can be a log.
type console struct {
	in        io.Reader
	out, errw io.Writer
	inFd      int // valid when stdinTTY
	outFd     int // valid when stdoutTTY
	stdinTTY  bool
	stdoutTTY bool
	stderrTTY bool

	// readPassword reads a line without echo from the terminal on stdin
	// (nil: term.ReadPassword; tests replace it).
	readPassword func() ([]byte, error)
}

func newConsole(app *cli.App) *console {
	c := &console{in: app.Reader, out: app.Writer, errw: app.ErrWriter}
	c.inFd, c.stdinTTY = terminalFd(c.in)
	c.outFd, c.stdoutTTY = terminalFd(c.out)
	_, c.stderrTTY = terminalFd(c.errw)
	return c
}

// progress is where transfer progress bars go: stderr when it is a
// terminal, else nowhere.
func (c *console) progress() io.Writer {
	if c.stderrTTY {
		return c.errw
	}
	return nil
}

func terminalFd(x any) (int, bool) {
	f, ok := x.(*os.File)
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// makeRaw puts the terminal in raw mode for the session and sets the
// terminal options (Ctrl-Z and window resizes included); the returned
// function restores it and is meant to be deferred, so that every exit
// path, a panic included, leaves the terminal as it was. Calling it twice
// is harmless.
func (c *console) makeRaw(opts *messenger.Options) (func(), error) {
	state, err := term.MakeRaw(c.inFd)
	if err != nil {
		return nil, fmt.Errorf("set up the terminal: %w", err)
	}
	opts.Terminal = true
	if w, h, err := term.GetSize(c.outFd); err == nil {
		opts.Width, opts.Height = w, h
	}
	suspend, resize, stop := c.jobControl(state)
	opts.Suspend, opts.Resize = suspend, resize
	var once sync.Once
	return func() {
		once.Do(func() {
			stop()
			term.Restore(c.inFd, state)
		})
	}, nil
}

// askLine prompts on errw and reads one line from stdin, a byte at a time
// so that nothing after the line is consumed (the session reads it next).
func (c *console) askLine(prompt string) (string, error) {
	fmt.Fprint(c.errw, prompt)
	var b []byte
	one := make([]byte, 1)
	for len(b) < 1024 {
		n, err := c.in.Read(one)
		if n == 1 {
			if one[0] == '\n' {
				return strings.TrimSuffix(string(b), "\r"), nil
			}
			b = append(b, one[0])
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(b) > 0 {
				return strings.TrimSuffix(string(b), "\r"), nil
			}
			return "", err
		}
	}
	return "", errors.New("answer too long")
}

// askPassword prompts on errw and reads a password without echo.
func (c *console) askPassword(prompt string) (string, error) {
	fmt.Fprint(c.errw, prompt)
	read := c.readPassword
	if read == nil {
		read = func() ([]byte, error) { return term.ReadPassword(c.inFd) }
	}
	p, err := read()
	fmt.Fprintln(c.errw)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return string(p), nil
}

// credentials are a user name and password to log in with.
type credentials struct {
	user, pass string
}

// resolveCredentials applies the rules for where the user name and the
// password come from, refusing conflicts before anything is sent:
// --user (or SSLM_USER), else asked on a terminal; the password from
// --password-file (or SSLM_PASSWORD_FILE), else SSLM_PASSWORD, else asked
// without echo on a terminal.
func resolveCredentials(cc *cli.Context, con *console) (credentials, error) {
	if cc.String("server") == "" {
		return credentials{}, errors.New("--server is empty")
	}
	if cc.String("ca") == "" {
		return credentials{}, errors.New("--ca is empty: the client needs the server's ca.pem")
	}
	file := cc.String("password-file")
	envPass := cleanPassword(os.Getenv("SSLM_PASSWORD"))
	if file != "" && os.Getenv("SSLM_PASSWORD") != "" {
		return credentials{}, errors.New("both --password-file (or SSLM_PASSWORD_FILE) and SSLM_PASSWORD are set: use one")
	}
	var cr credentials
	cr.user = strings.TrimSpace(cc.String("user"))
	if cr.user == "" && !con.stdinTTY {
		return credentials{}, errors.New("no user: use --user or SSLM_USER")
	}
	switch {
	case file != "":
		p, err := readPasswordFile(file)
		if err != nil {
			return credentials{}, err
		}
		cr.pass = p
	case envPass != "":
		cr.pass = envPass
	case !con.stdinTTY:
		return credentials{}, errors.New("no password: use --password-file or SSLM_PASSWORD")
	}
	if cr.user == "" {
		u, err := con.askLine("username: ")
		if err != nil {
			return credentials{}, fmt.Errorf("read user name: %w", err)
		}
		if cr.user = strings.TrimSpace(u); cr.user == "" {
			return credentials{}, errors.New("no user name given")
		}
	}
	if cr.pass == "" {
		p, err := askNewOrOldPassword(con, cc.Bool("signup"))
		if err != nil {
			return credentials{}, err
		}
		cr.pass = p
	}
	return cr, nil
}

// byteOrderMark is U+FEFF in UTF-8, which some editors put at the start
// of a text file.
const byteOrderMark = "\ufeff"

// cleanPassword drops what editors and shells add around a password: a
// leading UTF-8 byte-order mark and a trailing LF, CR LF or CR.
func cleanPassword(p string) string {
	p = strings.TrimPrefix(p, byteOrderMark)
	p = strings.TrimSuffix(p, "\n")
	return strings.TrimSuffix(p, "\r")
}

// readPasswordFile returns the first line of path without its line end or
// a leading byte-order mark.
func readPasswordFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("password file: %w", err)
	}
	defer f.Close()
	line, err := bufio.NewReader(io.LimitReader(f, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("password file %s: %w", path, err)
	}
	line = cleanPassword(line)
	if line == "" {
		return "", fmt.Errorf("password file %s: the first line is empty", path)
	}
	return line, nil
}

// askNewOrOldPassword asks for the password on the terminal, twice for a
// new account: a confirmation that does not match is asked again, up to
// maxPasswordTries times in all.
func askNewOrOldPassword(con *console, signUp bool) (string, error) {
	for try := 1; ; try++ {
		p, err := con.askPassword("password: ")
		if err != nil {
			return "", err
		}
		if p == "" {
			return "", errors.New("no password given")
		}
		if !signUp {
			return p, nil
		}
		again, err := con.askPassword("password again: ")
		if err != nil {
			return "", err
		}
		if again == p {
			return p, nil
		}
		if try >= maxPasswordTries {
			return "", fmt.Errorf("the passwords do not match (%d tries)", try)
		}
		fmt.Fprintln(con.errw, "the passwords do not match; try again")
	}
}

// connectAndLogin dials the server and logs in or signs up; cr ends up
// holding the credentials that were accepted.
func connectAndLogin(ctx context.Context, cc *cli.Context, con *console, cr *credentials) (*messenger.Conn, error) {
	dial := func() (*messenger.Conn, error) { return messenger.Dial(ctx, cc.String("server"), cc.String("ca")) }
	return loginWithTries(dial, con, cr, cc.Bool("signup"), cc.String("password-file") == "" && os.Getenv("SSLM_PASSWORD") == "")
}

// loginWithTries connects with dial and logs in or signs up. On a
// terminal, a refused sign-up is asked again (user name and password), and
// a wrong password at log-in is asked again when it was typed (asked is
// true), each at most maxPasswordTries times in all; the server closes the
// connection after a wrong password, so each try dials again.
func loginWithTries(dial func() (*messenger.Conn, error), con *console, cr *credentials, signUp, asked bool) (*messenger.Conn, error) {
	conn, err := dial()
	if err != nil {
		return nil, err
	}
	what := "log-in"
	if signUp {
		what = "sign-up"
	}
	for try := 1; ; try++ {
		err := conn.Login(cr.user, cr.pass, signUp)
		if err == nil {
			return conn, nil
		}
		var re *messenger.RefusedError
		isRefusal := errors.As(err, &re)
		if isRefusal && !signUp && !re.Retry && re.Reason == wire.ReasonBadLogin && asked && con.stdinTTY && try < maxPasswordTries {
			// Like ssh: the password is asked again.
			conn.Close()
			fmt.Fprintln(con.errw, "incorrect username or password; try again")
			if cr.pass, err = con.askPassword("password: "); err != nil {
				return nil, err
			}
			if cr.pass == "" {
				return nil, errors.New("no password given")
			}
			if conn, err = dial(); err != nil {
				return nil, err
			}
			continue
		}
		if !isRefusal || !re.Retry || !con.stdinTTY || try >= maxPasswordTries {
			conn.Close()
			if re != nil {
				return nil, fmt.Errorf("%s refused: %s", what, messenger.Sanitize(re.Reason))
			}
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		fmt.Fprintf(con.errw, "%s refused: %s; try again\n", what, messenger.Sanitize(re.Reason))
		u, err := con.askLine("username [" + messenger.Sanitize(cr.user) + "]: ")
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("read user name: %w", err)
		}
		if u = strings.TrimSpace(u); u != "" {
			cr.user = u
		}
		if cr.pass, err = askNewOrOldPassword(con, signUp); err != nil {
			conn.Close()
			return nil, err
		}
	}
}
