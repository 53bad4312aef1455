package main

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"sslmessager/internal/admin"
	"sslmessager/internal/cliflags"
)

// DefaultAdminSocket is the admin socket's file name, beside --users.
const DefaultAdminSocket = "admin.sock"

// errAdminFailed is the error of `server admin` when the server refused
// the command; the answer it printed says why.
var errAdminFailed = errors.New("admin command failed")

var adminSocketFlag = &cli.StringFlag{
	Name:    "admin-socket",
	Usage:   "the admin socket's `PATH` (Unix socket, mode 0600; default admin.sock beside --users)",
	EnvVars: []string{"SSLM_ADMIN_SOCKET"},
}

// besideUsers is the value of the flag name, or file in the directory of
// --users when the flag is not set.
func besideUsers(cc *cli.Context, name, file string) string {
	if v := cc.String(name); v != "" {
		return v
	}
	return filepath.Join(filepath.Dir(cc.String("users")), file)
}

func adminCommand() *cli.Command {
	return &cli.Command{
		Name:      "admin",
		Usage:     "run an admin command on the running server, through its admin socket",
		ArgsUsage: "COMMAND [ARGS...]",
		Description: `Sends one command to the running server over its admin socket and prints the
answer: data lines, then "ok ..." or "error: ...". The exit status is 0 for ok, 1 otherwise.

Commands:
   ` + strings.Join(admin.Help(), "\n   ") + `

Examples:
   server admin online
   server admin kick bob spamming the group
   server admin ban 203.0.113.0/24 7d scripted sign-ups
   server admin useradd carol                    prints a one-time password
   printf '%s\n' "$PW" | server admin passwd carol -   reads the password from stdin`,
		Flags: []cli.Flag{
			adminSocketFlag,
			&cli.StringFlag{Name: "users", Value: "users.csv", Usage: "the server's account `FILE`: the socket's default place is beside it", EnvVars: []string{"SSLM_USERS"}},
		},
		Action: func(cc *cli.Context) error {
			if cc.NArg() == 0 {
				return cliflags.Usagef(cc.App, "admin: want a COMMAND (server admin help lists them)")
			}
			ok, err := admin.Call(besideUsers(cc, "admin-socket", DefaultAdminSocket), cc.Args().Slice(), readSecret, cc.App.Writer)
			if err != nil {
				return err
			}
			if !ok {
				return errAdminFailed
			}
			return nil
		},
	}
}

// readSecret reads a password from stdin: without echo on a terminal,
// else one line.
func readSecret() (string, error) {
	fd := int(os.Stdin.Fd())
	if term.IsTerminal(fd) {
		fmt.Fprint(os.Stderr, "password: ")
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		return string(b), err
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// startConsole runs the admin console on the server's terminal, when its
// stdin is one.
func startConsole(adm *admin.Admin, logger *slog.Logger) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return
	}
	go func() {
		if err := adm.Console(os.Stdin, os.Stdout, readSecret); err != nil {
			logger.Warn("admin console stopped", "err", err)
		}
	}()
}
