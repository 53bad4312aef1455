package admin

import (
	"bufio"
	"io"
	"strings"
)

// Console runs commands typed on the server's own terminal: one command
// per line, each answered as on the admin socket (data lines, then "ok
// ..." or "error: ..."); "help" lists the commands. readSecret reads the
// password of "useradd USER -" (nil refuses "-"). It returns at the end of
// in, or when out fails.
func (a *Admin) Console(in io.Reader, out io.Writer, readSecret func() (string, error)) error {
	if _, err := io.WriteString(out, "admin console: type help for the commands\n"); err != nil {
		return err
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 4096), MaxRequestBytes)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if err := a.Run(Request{Line: line, By: "console", ReadSecret: readSecret}).Write(out); err != nil {
			return err
		}
	}
	return sc.Err()
}
