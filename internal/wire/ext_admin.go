package wire

import (
	"strings"
	"unicode/utf8"
)

// Lines of the admin commands (ALPN sslm/2 only).
//
//	client: ADMIN words... token       one admin command line, as text
//	server: ADMINR text                 zero or more data lines (escaped as relayed text)
//	server: OK <summary> | NO <reason>  the result, always last
//	server: ROLE role                   the session's role: after ACCEPT when it is not
//	                                    "user", and whenever an admin changes it

// Admin runs one admin command: ADMIN words... token. Command is the
// command line as typed ("kick bob spamming"), a text like MSGG's.
type Admin struct{ Command, Token string }

// AdminData is one data line of an admin command's answer: ADMINR text.
// The text is escaped as relayed text is, so it may hold any character.
type AdminData struct{ Text string }

// Role tells a session its account's role: ROLE role, with role "user" or
// "admin" (a client treats any other word as "user").
type Role struct{ Role string }

func (Admin) Verb() string     { return "ADMIN" }
func (AdminData) Verb() string { return "ADMINR" }
func (Role) Verb() string      { return "ROLE" }

func (q Admin) SessionToken() string { return q.Token }

func (q Admin) AppendTo(dst []byte) ([]byte, error) {
	dst = append(dst, "ADMIN"...)
	var err error
	if strings.TrimSpace(q.Command) == "" {
		err = ferr("ADMIN", "command", "is empty")
	}
	if err == nil {
		dst, err = appendText(dst, "ADMIN", q.Command)
	}
	if err == nil {
		dst, err = appendWords(dst, "ADMIN", "token", q.Token)
	}
	return end(dst), err
}

func (q AdminData) AppendTo(dst []byte) ([]byte, error) {
	if err := validText(q.Text); err != nil {
		return end(append(dst, "ADMINR"...)), ferr("ADMINR", "text", err.Error())
	}
	dst = AppendEscaped(append(dst, "ADMINR "...), q.Text)
	return end(dst), nil
}

func (q Role) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendWords(append(dst, "ROLE"...), "ROLE", "role", q.Role)
	return end(dst), err
}

// parseAdmin parses what follows ADMIN: words... token.
func parseAdmin(rest string) (Query, error) {
	front, token, err := lastWord("ADMIN", rest)
	if err != nil {
		return nil, err
	}
	text := strings.TrimSuffix(front, "\n")
	if err := validText(text); err != nil {
		return nil, perr("ADMIN", "command %v", err)
	}
	if strings.TrimSpace(text) == "" {
		return nil, perr("ADMIN", "empty command")
	}
	return Admin{Command: text, Token: token}, nil
}

// parseAdminServer parses ADMINR and ROLE lines after their verb.
func parseAdminServer(verb, rest string) (Query, error) {
	if verb == "ROLE" {
		w, err := words(verb, rest, 1, MaxWordBytes)
		if err != nil {
			return nil, err
		}
		return Role{Role: w[0]}, nil
	}
	text := Unescape(rest)
	if err := validText(text); err != nil {
		return nil, perr(verb, "text %v", err)
	}
	return AdminData{Text: text}, nil
}

// MaxSafeTextBytes bounds what SafeText keeps.
const MaxSafeTextBytes = 160

// SafeText returns s, free text an operator or a client typed (a ban or
// kick reason), as text that may stand inside a reason (<...>): escaped as
// relayed text is, except that spaces stay, '<' and '>' become \x3c and
// \x3e, and it is cut to MaxSafeTextBytes with "..." after the cut.
// Formatting a reason built from SafeText cannot fail for its sake.
func SafeText(s string) string {
	e := string(AppendEscaped(nil, s))
	e = strings.NewReplacer("<", `\x3c`, ">", `\x3e`).Replace(e)
	if len(e) <= MaxSafeTextBytes {
		return e
	}
	cut := MaxSafeTextBytes - 3
	if i := strings.LastIndexByte(e[:cut], '\\'); i >= 0 && i+4 > cut {
		cut = i
	}
	for cut > 0 && !utf8.RuneStart(e[cut]) {
		cut--
	}
	return e[:cut] + "..."
}
