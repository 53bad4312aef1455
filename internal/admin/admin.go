// Package admin is the server operator's command set: one table of
// commands (online, status, kick, ban, mute, msg, useradd, ...) that three
// ways in share: the server's own terminal (Console), the admin socket
// that `server admin` talks to (Socket, Call), and the ADMIN query of
// clients whose account has the admin role (RunAdmin, called by the
// relay).
//
// Every command returns a Result: data lines, then a summary on success or
// a reason on failure. The socket and the console write it as the data
// lines followed by a final "ok SUMMARY" or "error: REASON" line, so that
// scripts can read it.
package admin

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"sslmessager/internal/accounts"
	"sslmessager/internal/bans"
	"sslmessager/internal/relay"
	"sslmessager/internal/spool"
	"sslmessager/internal/wire"
)

// Deps are what the commands act on.
type Deps struct {
	Relay    *relay.Server   // required
	Accounts *accounts.Store // required
	Spool    *spool.Spool    // nil: no files to remove or count
	Bans     *bans.Store     // nil: ban, unban and bans refuse
	Logger   *slog.Logger    // nil: slog.Default()
	Started  time.Time       // when the server started, for uptime (zero: New's time)
}

// Admin runs admin commands. Its methods are safe for concurrent use.
type Admin struct {
	d   Deps
	log *slog.Logger
	now func() time.Time
}

// New returns an Admin over d.
func New(d Deps) *Admin {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Started.IsZero() {
		d.Started = time.Now()
	}
	return &Admin{d: d, log: d.Logger, now: time.Now}
}

// Request is one admin command.
type Request struct {
	// Line is the command line: the command's name and its arguments,
	// separated by spaces ("kick bob spamming").
	Line string
	// By names who asks, for the log: "console", "socket" or the admin
	// user's name.
	By string
	// ReadSecret reads a password the operator types, for "useradd USER -"
	// and "passwd USER -"; nil refuses "-".
	ReadSecret func() (string, error)
}

// Result is what a command answers.
type Result struct {
	Lines   []string // data lines, one record each
	OK      bool
	Summary string // on success what was done; on failure why not
}

func okf(format string, args ...any) Result {
	return Result{OK: true, Summary: fmt.Sprintf(format, args...)}
}

func failf(format string, args ...any) Result {
	return Result{Summary: fmt.Sprintf(format, args...)}
}

// Write writes r as the socket and the console show it: each data line,
// escaped so that it holds no control character, then "ok SUMMARY" or
// "error: REASON". The last line is always the result.
func (r Result) Write(w io.Writer) error {
	var b strings.Builder
	for _, l := range r.Lines {
		b.WriteString(wire.Escape(l))
		b.WriteByte('\n')
	}
	if r.OK {
		b.WriteString(strings.TrimSpace("ok " + wire.Escape(r.Summary)))
	} else {
		b.WriteString("error: " + wire.Escape(r.Summary))
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}

// command is one row of the table.
type command struct {
	name string
	args string // syntax of the arguments, for help
	help string
	run  func(a *Admin, req Request, args string) Result
}

// table is every command, in help order. Set in init because help reads
// it.
var table []command

func init() {
	table = []command{
		{"online", "", "users online: one line per session (user, address, group mode, client, connected since)", (*Admin).online},
		{"status", "", "uptime, connections, sessions, users, group members, queued files and bytes, goroutines, memory, bans, mutes, limits", (*Admin).status},
		{"kick", "USER [REASON]", "end every session of USER, telling it: kicked: REASON", (*Admin).kick},
		{"ban", "USER|IP|CIDR [DURATION] [REASON]", "ban a user, an address or a prefix (forever without DURATION) and end its sessions", (*Admin).ban},
		{"unban", "USER|IP|CIDR", "lift a ban", (*Admin).unban},
		{"bans", "", "list the bans in force: kind, value, until, created, reason", (*Admin).listBans},
		{"mute", "USER [DURATION]", "refuse USER's direct and group messages (forever without DURATION; a restart lifts it)", (*Admin).mute},
		{"unmute", "USER", "lift a mute", (*Admin).unmute},
		{"msg", "USER TEXT", "send TEXT to USER as a direct message from admin", (*Admin).msg},
		{"g", "TEXT", "send TEXT as a group message from admin to everyone online", (*Admin).group},
		{"useradd", "USER [-]", "create an account; prints a one-time password, or reads one from stdin with -", (*Admin).useradd},
		{"passwd", "USER [-]", "set a new password (generated, or read from stdin with -); ends USER's sessions", (*Admin).passwd},
		{"userdel", "USER", "delete the account, end its sessions, remove its queued files and stored messages; the name becomes free", (*Admin).userdel},
		{"role", "USER admin|user", "give USER the admin role or take it away", (*Admin).role},
		{"signup", "open|closed", "open or close sign-up until the server restarts", (*Admin).signup},
		{"help", "", "list the commands", (*Admin).help},
	}
}

// Help returns the command table as lines: "name ARGS  what it does".
func Help() []string {
	lines := make([]string, 0, len(table)+1)
	for _, c := range table {
		lines = append(lines, fmt.Sprintf("%-38s %s", strings.TrimSpace(c.name+" "+c.args), c.help))
	}
	return append(lines, "DURATION: 90s, 10m, 2h, 7d, 1d12h")
}

// Run runs one command line and logs it (never a password).
func (a *Admin) Run(req Request) Result {
	name, args := cut(req.Line)
	var r Result
	var cmd *command
	for i := range table {
		if table[i].name == strings.ToLower(name) {
			cmd = &table[i]
		}
	}
	switch {
	case name == "":
		r = failf("no command: try help")
	case cmd == nil:
		r = failf("unknown command %s: try help", wire.Quote(name))
	default:
		r = cmd.run(a, req, args)
	}
	level := slog.LevelInfo
	if cmd != nil && (cmd.name == "online" || cmd.name == "status" || cmd.name == "bans" || cmd.name == "help") {
		level = slog.LevelDebug
	}
	a.log.Log(context.Background(), level, "admin command", "by", req.By, "command", req.Line, "ok", r.OK, "result", r.Summary)
	return r
}

// RunAdmin runs a command for the admin user by, who sent it with the
// ADMIN query (relay.AdminRunner). There is no stdin: "-" is refused.
func (a *Admin) RunAdmin(by, command string) ([]string, bool, string) {
	r := a.Run(Request{Line: command, By: by})
	return r.Lines, r.OK, r.Summary
}

// cut splits off the first word of s; the rest keeps its inner spacing.
func cut(s string) (word, rest string) {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		return s[:i], strings.TrimSpace(s[i+1:])
	}
	return s, ""
}
