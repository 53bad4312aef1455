// Command client is the SSL-Messager terminal client: it logs in over TLS
// (verifying the server against ca.pem), then sends the lines you type and
// prints what others send you. It also works with stdin from a pipe, with
// credentials from flags and the environment, so it scripts.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"sslmessager/internal/cliflags"
	"sslmessager/internal/messenger"
	"sslmessager/internal/pki"
	"sslmessager/internal/wire"
)

// Defaults of the flags.
const (
	// defaultServer is where a server started with its defaults listens.
	defaultServer = "localhost:" + messenger.DefaultPort
	// defaultCA is where gencert writes the CA certificate by default.
	defaultCA = "certs/" + pki.CAFile
	// defaultDownloads is where :download: and the download command save.
	defaultDownloads = "./" + messenger.DefaultDownloads
	// maxPasswordTries is how many tries a terminal user gets for a
	// password: a wrong one at log-in, a confirmation that does not match
	// or a refused sign-up (the server allows a few more).
	maxPasswordTries = 3
)

func main() {
	app := newApp()
	if err := app.Run(cliflags.Reorder(app, os.Args)); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(cliflags.ExitStatus(err))
	}
}

func newApp() *cli.App {
	app := &cli.App{
		Name:      "client",
		Usage:     "chat on an SSL-Messager server",
		UsageText: "client [options]\nclient [options] send --to NAME [TEXT...] (no TEXT: read from stdin)\nclient [options] upload --to NAME FILE...\nclient [options] download [--dir DIR]\nclient [options] keys export FILE | keys import [--force] FILE",
		Description: `Logs in (or signs up with --signup), then sends every line you type to your
target and prints what others send you. The server is verified against --ca
(the ca.pem of the server's CA); verification is never skipped.

Examples:
   client --signup --user alice                 create the account alice, then chat
   client --user alice --to bob                 log in and chat with bob
   client --server chat.example.org:18443 --ca ~/sslm/ca.pem --user alice

   Scripted, with stdin from a pipe and the password from the environment
   (end of input quits; --to is required; exit status 1 if a line was not
   delivered, each such line is reported with "!"):
   printf 'hello bob\n:online:\n' | SSLM_PASSWORD="$PW" client --user alice --to bob --no-timestamps

   One message; if bob is offline the server keeps it for him ("queued for bob
   (offline)", exit status 0); exit status 1 if there is no bob, or his queue is full:
   SSLM_PASSWORD_FILE=~/.sslm-pass client --user alice send --to bob "build 42 is green"
   echo "build 42 is green" | SSLM_PASSWORD_FILE=~/.sslm-pass client --user alice send --to bob

   Files wait on the server until their recipient fetches them (bob may be
   offline). Each command exits with status 1 on any failure: upload stops at
   the first refusal (no such user, file too large, ...), download when a file
   fails its SHA-256 check (that file stays on the server):
   client --user alice upload --to bob report.pdf "meeting notes.txt"
   client --user bob download                   saves into ./downloads
   client --user bob download --dir ~/inbox     or SSLM_DOWNLOADS=~/inbox

While chatting:
   :quit:               leave (end of input does the same)
   :online:             list who is online
   :new_target: [NAME]  send to someone else
   :toggle:             group chat on or off
   :plain_group: TEXT   send TEXT to group chat in plaintext (the server can read it)
   :status:             your user, target, group chat and server
   :upload: PATH [NAME] send a file to your target, or to NAME; quote a PATH
                        with spaces ("my notes.txt") or give it alone
   :download:           save the files sent to you into --downloads
   :ping:               round-trip time to the server
   :mute: [NAME]        hide NAME's messages (kept in --config-dir); alone: list
   :unmute: NAME        show NAME's messages again
   :export: FILE        this session's conversation to a new FILE
   :passwd:             change your password; your other sessions are logged out
   :delete_account:     delete your account and the files waiting for it
   :fingerprint:        your half of every safety number, to publish
   :verify: NAME [DIGITS]  the safety number with NAME to compare; with NAME's
                        published 30 digits (or the 60), check and mark verified
   :trust: NAME         accept NAME's changed key without verifying it
   :plaintext: NAME     allow plaintext to NAME, whose key vanished
   :help:               all commands

End-to-end encryption (--e2e=prefer, the default): against a server with a
key directory, direct messages to a user with a key are encrypted so the
server cannot read them; to a user without one they go in plaintext, tagged
[plain]. The prompt shows each conversation's state: "bob [e2e, verified]>".
Your keys stay in --config-dir, locked with your password (or
--key-passphrase-file / SSLM_KEY_PASSPHRASE); "keys export FILE" and
"keys import FILE" move them to another device (export passphrase asked, or
SSLM_EXPORT_PASSPHRASE). --e2e=require never sends plaintext; --e2e=off
behaves as the original client.

Messages sent to you while you were offline are shown once you log in, as
"[sent 10:00, 30 Nov] alice: text"; --config-dir remembers which were shown, so
none shows twice.

Downloaded files never overwrite anything: a taken name becomes "a (1).txt".
On a terminal, a chat whose connection drops or whose server restarts
logs in again by itself (after 1 s, 2 s, ... up to 30 s; Ctrl-C stops
it); with stdin from a pipe it ends with an error instead.
Progress bars go to stderr when it is a terminal. The password comes from
--password-file (or SSLM_PASSWORD_FILE), or SSLM_PASSWORD (not both; a
byte-order mark and a trailing CR are removed), else it is asked without echo
when stdin is a terminal (3 tries). :passwd: and :delete_account: ask for passwords without echo on
a terminal; with stdin from a pipe they read them as the next input lines.
Options of the send, upload and download commands may come before or after
their arguments (client upload report.pdf --to bob); "--" ends the options.`,
		HideHelpCommand: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "server", Value: defaultServer, Usage: "server `ADDRESS` (host:port)", EnvVars: []string{"SSLM_SERVER"}},
			&cli.StringFlag{Name: "ca", Value: defaultCA, Usage: "CA certificate `FILE` that signed the server's certificate", EnvVars: []string{"SSLM_CA"}},
			&cli.StringFlag{Name: "user", Usage: "user `NAME` (asked when stdin is a terminal)", EnvVars: []string{"SSLM_USER"}},
			&cli.StringFlag{Name: "password-file", Usage: "read the password from the first line of `FILE` (or set SSLM_PASSWORD)", EnvVars: []string{"SSLM_PASSWORD_FILE"}},
			&cli.BoolFlag{Name: "signup", Usage: "create the account, then log in"},
			&cli.StringFlag{Name: "to", Usage: "first target `NAME` (asked on a terminal; required when stdin is a pipe or file)", EnvVars: []string{"SSLM_TO"}},
			&cli.BoolFlag{Name: "no-color", Usage: "no green for group chat (also when NO_COLOR is set)", EnvVars: []string{"SSLM_NO_COLOR"}},
			&cli.BoolFlag{Name: "no-timestamps", Usage: "no [15:04:05] before messages", EnvVars: []string{"SSLM_NO_TIMESTAMPS"}},
			&cli.StringFlag{Name: "downloads", Value: defaultDownloads, Usage: "save downloaded files into `DIR` (created 0700 if missing)", EnvVars: []string{"SSLM_DOWNLOADS"}},
			// What the client keeps between sessions: mute lists, the offline
			// messages already shown.
			&cli.StringFlag{Name: "config-dir", Usage: "`DIR` where the client keeps what it remembers between sessions: mute lists, which offline messages were shown (default: $XDG_CONFIG_HOME/sslm, else ~/.config/sslm)", EnvVars: []string{"SSLM_CONFIG_DIR"}},
		},
		Action: runChat,
		Commands: []*cli.Command{keysCommand(), {
			Name:      "send",
			Usage:     "send one message, then quit; a target who is offline gets it at their next log-in (if the server keeps offline messages); fails if there is no such user",
			ArgsUsage: "TEXT...",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "to", Usage: "`NAME` to send to (required)", EnvVars: []string{"SSLM_TO"}},
			},
			Action: runSend,
		}, {
			Name:      "upload",
			Usage:     "send files to a user, who may be offline, then quit; stops at the first refusal",
			ArgsUsage: "FILE...",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "to", Usage: "`NAME` to send to (required)", EnvVars: []string{"SSLM_TO"}},
			},
			Action: runUpload,
		}, {
			Name:  "download",
			Usage: "save every file sent to you, then quit; fails if a file does not match its SHA-256",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "dir", Usage: "save into `DIR` (default: --downloads)"},
			},
			Action: runDownload,
		}},
	}
	app.Flags = append(app.Flags, e2eFlags()...)
	cliflags.Setup(app)
	return app
}

// openSession resolves the credentials, connects and logs in, under a
// context that SIGINT and SIGTERM cancel. done closes the connection and
// releases the signals.
func openSession(cc *cli.Context) (context.Context, *console, *messenger.Conn, func(), error) {
	return openSessionKeep(cc, nil)
}

// openSessionKeep is openSession that also stores the credentials that
// logged in into keep (when not nil), for a reconnect.
func openSessionKeep(cc *cli.Context, keep *credentials) (context.Context, *console, *messenger.Conn, func(), error) {
	con := newConsole(cc.App)
	creds, err := resolveCredentials(cc, con)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	ctx, stop := signal.NotifyContext(cc.Context, os.Interrupt, syscall.SIGTERM)
	conn, err := connectAndLogin(ctx, cc, con, &creds)
	if keep != nil {
		*keep = creds
	}
	if err != nil {
		stop()
		return nil, nil, nil, nil, err
	}
	return ctx, con, conn, func() { conn.Close(); stop() }, nil
}

// runChat is the interactive (or piped) session.
func runChat(cc *cli.Context) error {
	if cc.Args().Present() {
		return cliflags.Usagef(cc.App, "unexpected argument %q; to send one message: client send --to NAME TEXT...", cc.Args().First())
	}
	if err := checkPipedTarget(cc); err != nil {
		return err
	}
	var creds credentials
	ctx, con, conn, done, err := openSessionKeep(cc, &creds)
	if err != nil {
		return err
	}
	defer done()
	keys, policy, err := openKeys(cc, con, conn, creds.pass)
	if err != nil {
		return err
	}

	opts := messenger.Options{
		Keys:         keys,
		E2E:          policy,
		Target:       cc.String("to"),
		Color:        con.stdoutTTY && !cc.Bool("no-color") && os.Getenv("NO_COLOR") == "",
		NoTimestamps: cc.Bool("no-timestamps"),
		Downloads:    cc.String("downloads"),
		Progress:     con.progress(),
		ConfigDir:    stateDir(cc.String("config-dir")),
	}
	verb := "logged in"
	if cc.Bool("signup") {
		verb = "signed up and logged in"
	}
	fmt.Fprintf(con.out, "%s as %s on %s (:help: lists the commands)\n",
		verb, messenger.Sanitize(conn.User()), messenger.Sanitize(conn.Addr()))

	if con.stdinTTY && con.stdoutTTY {
		restore, err := con.makeRaw(&opts)
		if err != nil {
			return err
		}
		defer restore()
		// A terminal session survives a dropped connection or a server
		// restart: it logs in again with the password it has (kept for
		// this session only, never printed). Piped chat does not: a
		// script gets a clear failure and a non-zero exit status.
		pass := []byte(creds.pass)
		defer clear(pass)
		server, ca, user := cc.String("server"), cc.String("ca"), conn.User()
		dial := func(ctx context.Context) (*messenger.Conn, error) {
			c, err := messenger.Dial(ctx, server, ca)
			if err != nil {
				return nil, err
			}
			if err := c.Login(user, string(pass), false); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		}
		err = messenger.RunReconnecting(ctx, conn, dial, con.in, con.out, opts)
		restore()
		return runError(err)
	}
	return runError(conn.Run(ctx, con.in, con.out, opts))
}

// checkPipedTarget refuses a chat with stdin from a pipe or file and no
// valid --to: the target prompt would take the script's first line.
func checkPipedTarget(cc *cli.Context) error {
	if _, tty := terminalFd(cc.App.Reader); tty {
		return nil
	}
	to := cc.String("to")
	if to == "" {
		return cliflags.Usagef(cc.App, "no target: with input from a pipe or file, use --to NAME (or SSLM_TO)")
	}
	if err := wire.CheckUserName(to); err != nil {
		return cliflags.Usagef(cc.App, "--to %s: %v", messenger.Sanitize(to), err)
	}
	return nil
}

func runError(err error) error {
	if errors.Is(err, context.Canceled) {
		var pe *messenger.PartialUploadError
		if errors.As(err, &pe) {
			// Keep the list of files delivered.
			return &messenger.PartialUploadError{Delivered: pe.Delivered, NotDelivered: pe.NotDelivered, Err: errors.New("interrupted")}
		}
		return errors.New("interrupted")
	}
	return err
}

// commandTarget is the --to of a command, or the global --to before it.
func commandTarget(cc *cli.Context, usage string) (string, error) {
	name := cc.Command.Name
	to := cc.String("to")
	if len(cc.Lineage()) > 1 {
		if global := cc.Lineage()[1].String("to"); global != "" {
			if to != "" && to != global {
				return "", fmt.Errorf("conflicting targets: --to %s before %s and --to %s after it", global, name, to)
			}
			to = global
		}
	}
	if to == "" {
		return "", cliflags.Usagef(cc.App, "%s: no target: use %s", name, usage)
	}
	return to, nil
}

// runSend is the one-shot send command.
func runSend(cc *cli.Context) error {
	to, err := commandTarget(cc, "send --to NAME TEXT...")
	if err != nil {
		return err
	}
	text := strings.Join(cc.Args().Slice(), " ")
	if !cc.Args().Present() {
		if text, err = readSendText(cc.App.Reader); err != nil {
			return err
		}
	}
	if strings.TrimSpace(text) == "" {
		return errors.New("send: no text: use send --to NAME TEXT..., or give the text on stdin")
	}
	if n := utf8.RuneCountInString(text); n > wire.MaxTextRunes {
		return fmt.Errorf("send: text of %d characters, the limit is %d", n, wire.MaxTextRunes)
	}
	var creds credentials
	ctx, con, conn, done, err := openSessionKeep(cc, &creds)
	if err != nil {
		return err
	}
	defer done()
	keys, policy, err := openKeys(cc, con, conn, creds.pass)
	if err != nil {
		return err
	}
	res, err := messenger.SendWith(ctx, conn, to, text, messenger.SendOptions{Keys: keys, E2E: policy})
	if err != nil {
		return runError(err)
	}
	how := ""
	if !res.Encrypted && keys != nil {
		how = " [plain]"
	}
	if res.Queued {
		fmt.Fprintf(con.out, "queued for %s (offline)%s\n", messenger.Sanitize(to), how)
		return nil
	}
	fmt.Fprintf(con.out, "sent to %s%s\n", messenger.Sanitize(to), how)
	return nil
}

// readSendText reads the text of send from stdin when it is not a
// terminal: all of it, without the line end at its end ("" from a
// terminal). More than a message can carry is refused without reading on.
func readSendText(in io.Reader) (string, error) {
	if _, tty := terminalFd(in); tty || in == nil {
		return "", nil
	}
	// A character is at most 4 bytes; one byte more tells "too long".
	limit := int64(4*wire.MaxTextRunes + 3)
	b, err := io.ReadAll(io.LimitReader(in, limit+1))
	if err != nil {
		return "", fmt.Errorf("send: read the text from stdin: %w", err)
	}
	if int64(len(b)) > limit {
		return "", fmt.Errorf("send: the text on stdin is longer than %d characters, the limit", wire.MaxTextRunes)
	}
	text := strings.TrimSuffix(string(b), "\n")
	return strings.TrimSuffix(text, "\r"), nil
}

// stateDir is where the client keeps its state: --config-dir, or the
// default configuration directory ("" if there is none: then nothing is
// remembered).
func stateDir(flag string) string {
	if flag != "" {
		return flag
	}
	d, err := messenger.DefaultConfigDir()
	if err != nil {
		return ""
	}
	return d
}

// runUpload is the one-shot upload command.
func runUpload(cc *cli.Context) error {
	to, err := commandTarget(cc, "upload --to NAME FILE...")
	if err != nil {
		return err
	}
	files := cc.Args().Slice()
	if len(files) == 0 {
		return cliflags.Usagef(cc.App, "upload: no file: use upload --to NAME FILE...")
	}
	for _, f := range files {
		if err := messenger.CheckUploadFile(f); err != nil {
			return err // before any password is asked
		}
	}
	return oneShot(cc, func(ctx context.Context, conn *messenger.Conn, opts messenger.TransferOptions) error {
		return messenger.Upload(ctx, conn, to, files, opts)
	})
}

// runDownload is the one-shot download command.
func runDownload(cc *cli.Context) error {
	if cc.Args().Present() {
		return cliflags.Usagef(cc.App, "download: unexpected argument %q; to choose the directory: download --dir DIR", cc.Args().First())
	}
	dir := cc.String("dir")
	if dir == "" {
		dir = cc.String("downloads")
	}
	if dir == "" {
		return errors.New("download: no directory: use --dir DIR or --downloads DIR")
	}
	return oneShot(cc, func(ctx context.Context, conn *messenger.Conn, opts messenger.TransferOptions) error {
		return messenger.Download(ctx, conn, dir, opts)
	})
}

// oneShot logs in and runs a file command with progress lines on stdout
// and bars on stderr when it is a terminal.
func oneShot(cc *cli.Context, run func(context.Context, *messenger.Conn, messenger.TransferOptions) error) error {
	var creds credentials
	ctx, con, conn, done, err := openSessionKeep(cc, &creds)
	if err != nil {
		return err
	}
	defer done()
	keys, policy, err := openKeys(cc, con, conn, creds.pass) // uploads sealed, downloads opened
	if err != nil {
		return err
	}
	return runError(run(ctx, conn, messenger.TransferOptions{Out: con.out, Progress: con.progress(), Keys: keys, E2E: policy}))
}
