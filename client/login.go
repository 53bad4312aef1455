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
	p, err := term.ReadPassword(c.inFd)
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
	envPass := os.Getenv("SSLM_PASSWORD")
	if file != "" && envPass != "" {
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

// readPasswordFile returns the first line of path without its line end.
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
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", fmt.Errorf("password file %s: the first line is empty", path)
	}
	return line, nil
}

// askNewOrOldPassword asks for the password on the terminal, twice for a
// new account.
func askNewOrOldPassword(con *console, signUp bool) (string, error) {
	p, err := con.askPassword("password: ")
	if err != nil {
		return "", err
	}
	if p == "" {
		return "", errors.New("no password given")
	}
	if signUp {
		again, err := con.askPassword("password again: ")
		if err != nil {
			return "", err
		}
		if again != p {
			return "", errors.New("the passwords do not match")
		}
	}
	return p, nil
}

// connectAndLogin dials the server and logs in or signs up. A refused
// sign-up is asked again on a terminal, at most maxSignUpTries times.
// cr ends up holding the credentials that were accepted.
func connectAndLogin(ctx context.Context, cc *cli.Context, con *console, cr *credentials) (*messenger.Conn, error) {
	conn, err := messenger.Dial(ctx, cc.String("server"), cc.String("ca"))
	if err != nil {
		return nil, err
	}
	signUp := cc.Bool("signup")
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
		if !errors.As(err, &re) || !re.Retry || !con.stdinTTY || try >= maxSignUpTries {
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
