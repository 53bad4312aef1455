package messenger

import (
	"fmt"
	"strings"
	"unicode"

	"sslmessager/internal/wire"
)

// inputKind is what an input line is.
type inputKind int

const (
	inputEmpty   inputKind = iota // blank: ignored
	inputMessage                  // text to send
	inputCommand                  // :name: with an optional argument
)

// input is one parsed input line.
type input struct {
	kind inputKind
	text string // inputMessage: the text as typed (CR removed)
	name string // inputCommand: lower case, without the colons
	arg  string // inputCommand: the rest of the line, trimmed
}

// parseInput classifies one input line. A command is a first word of the
// form :name: (case does not matter); it may be the whole line, or be
// followed by an argument when the command takes one (":new_target: bob").
// A line starting with "::" is a message with the first colon removed, so
// any text can be sent. Anything else that is not blank is a message.
func parseInput(line string) input {
	line = strings.TrimSuffix(line, "\r")
	if strings.TrimSpace(line) == "" {
		return input{kind: inputEmpty}
	}
	if strings.HasPrefix(line, "::") {
		return input{kind: inputMessage, text: line[1:]}
	}
	trimmed := strings.TrimSpace(line)
	word, rest := trimmed, ""
	if i := strings.IndexFunc(trimmed, unicode.IsSpace); i >= 0 {
		word, rest = trimmed[:i], strings.TrimSpace(trimmed[i:])
	}
	if len(word) >= 3 && word[0] == ':' && word[len(word)-1] == ':' {
		name := strings.ToLower(word[1 : len(word)-1])
		if rest == "" {
			return input{kind: inputCommand, name: name}
		}
		if cmd := lookupCommand(name); cmd != nil {
			return input{kind: inputCommand, name: name, arg: rest}
		}
	}
	return input{kind: inputMessage, text: line}
}

// command is one :name: command. run reports whether the session quits,
// and an error only when the connection failed.
type command struct {
	name     string
	arg      string // shown in :help:, e.g. "[NAME]"
	help     string
	takesArg bool
	run      func(s *session, arg string) (quit bool, err error)
}

// commands is the command table, in :help: order. Set in init because
// :help: reads it.
var commands []command

func init() {
	commands = []command{
		{name: "quit", help: "leave the chat (end of input does the same)", run: cmdQuit},
		{name: "online", help: "list who is online", run: cmdOnline},
		{name: "new_target", arg: "[NAME]", takesArg: true, help: "send your messages to someone else (asks for NAME if missing)", run: cmdNewTarget},
		{name: "toggle", help: "turn group chat on or off (green on a colour terminal)", run: cmdToggle},
		{name: "status", help: "show your user, target, group chat and server", run: cmdStatus},
		{name: "help", help: "show this list", run: cmdHelp},
		{name: "upload", arg: "PATH [NAME]", takesArg: true, help: "send a file to your target, or to NAME (who may be offline)", run: cmdUpload},
		{name: "download", help: "save the files sent to you", run: cmdDownload},
		{name: "ping", help: "show the round-trip time to the server", run: cmdPing},
		{name: "mute", arg: "[NAME]", takesArg: true, help: "hide NAME's messages, kept across sessions (the server is not told); alone: list who is muted", run: cmdMute},
		{name: "unmute", arg: "NAME", takesArg: true, help: "show NAME's messages again", run: cmdUnmute},
		{name: "export", arg: "FILE", takesArg: true, help: "write this session's conversation (its last 10 000 messages) to a new FILE", run: cmdExport},
		{name: "passwd", help: "change your password (asked without echo); your other sessions are logged out", run: cmdPasswd},
		{name: "fingerprint", help: "show your half of every safety number (30 digits) to publish where your contacts can read it", run: cmdFingerprint},
		{name: "verify", arg: "NAME [DIGITS]", takesArg: true, help: "show the safety number with NAME to compare (by phone, in person); with NAME's published 30 digits (or the 60 read out), check them and mark NAME verified", run: cmdVerify},
		{name: "trust", arg: "NAME", takesArg: true, help: "accept NAME's changed key without verifying it (sending was blocked)", run: cmdTrust},
		{name: "plain_group", arg: "TEXT", takesArg: true, help: "send TEXT to group chat in plaintext, to every member (the server can read it); group chat lines are otherwise end-to-end encrypted to each member with a key", run: cmdPlainGroup},
		{name: "plaintext", arg: "NAME", takesArg: true, help: "allow plaintext to NAME, whose key vanished from the directory (the server can read it)", run: cmdPlaintext},
		{name: "delete_account", help: "delete your account and the files waiting for it (asks your password)", run: cmdDeleteAccount},
	}
}

func lookupCommand(name string) *command {
	if name == adminCommand.name {
		return &adminCommand // admin slice: hidden from the general listing
	}
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

// :quit:
func cmdQuit(*session, string) (bool, error) { return true, nil }

// :online:
func cmdOnline(s *session, _ string) (bool, error) {
	return false, s.c.send(wire.Online{Token: s.c.token})
}

// :new_target: [NAME]
func cmdNewTarget(s *session, arg string) (bool, error) {
	if arg == "" {
		line, err := s.in.ask("target: ")
		if err != nil {
			return true, nil // end of input while asking: quit
		}
		arg = strings.TrimSpace(line)
		if arg == "" {
			s.out.line("target unchanged: " + Sanitize(s.target))
			return false, nil
		}
	}
	if err := wire.CheckUserName(arg); err != nil {
		s.refused("! target unchanged: " + err.Error())
		return false, nil
	}
	s.target = arg
	s.updatePrompt()
	if s.group {
		s.out.line("target: " + Sanitize(arg) + " (group chat is on: messages go to the group until :toggle:)")
	} else {
		s.out.line("target: " + Sanitize(arg))
	}
	s.targetChanged() // e2e.go
	return false, nil
}

// :toggle:
func cmdToggle(s *session, _ string) (bool, error) {
	if err := s.c.send(wire.Group{Token: s.c.token}); err != nil {
		return false, err
	}
	s.group = !s.group
	s.updatePrompt()
	s.out.line("group chat " + onOff(s.group))
	return false, nil
}

// :status:
func cmdStatus(s *session, _ string) (bool, error) {
	s.out.linef("status: user %s, target %s, group chat %s, server %s",
		Sanitize(s.c.user), Sanitize(s.target), onOff(s.group), Sanitize(s.c.addr))
	return false, nil
}

// :help:
func cmdHelp(s *session, _ string) (bool, error) {
	var b strings.Builder
	b.WriteString("commands:")
	for _, c := range commands {
		fmt.Fprintf(&b, "\n  %-21s %s", strings.TrimSpace(":"+c.name+": "+c.arg), c.help)
	}
	b.WriteString("\nany other line is a message to your target, or to the group when group chat is on;")
	b.WriteString("\nstart a line with :: to send a text that begins with a colon (::quit: sends :quit:).")
	b.WriteString("\nquote a PATH with spaces or give it alone: :upload: \"my notes.txt\" bob, :upload: my notes.txt")
	b.WriteString("\n:download: saves into " + Sanitize(s.downloads) + " and never overwrites: a taken name becomes \"a (1).txt\".")
	b.WriteString(s.adminHelp()) // admin slice: only for accounts with the admin role
	s.out.line(b.String())
	return false, nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
