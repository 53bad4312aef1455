package wire

import (
	"slices"
	"strconv"
	"strings"
)

// ---- server lines ----

// Accept answers a good AUTH or PUT: ACCEPT user token
type Accept struct{ User, Token string }

// Try refuses a sign-up; the client may try again: TRY <reason>
type Try struct{ Reason string }

// End closes the session: END <reason>, or END * <reason> when Fatal (the
// server ends it because of the client).
type End struct {
	Fatal  bool
	Reason string
}

// Relay carries a direct message: RELAY target sender text
type Relay struct{ Target, Sender, Text string }

// RelayGroup carries a group message: RELAYG sender text
type RelayGroup struct{ Sender, Text string }

// Carbon is a copy of a direct message the user sent from another of its
// sessions, to sessions that asked for carbons: CARBON target sender text
type Carbon struct{ Target, Sender, Text string }

// NotOnline says a message could not be delivered: CNT <reason>
type NotOnline struct{ Reason string }

// Check is the liveness probe; no answer is expected: CHECK
type Check struct{}

// OnlineList answers CMD <online>: CMD <name name ...>. Servers send it
// sorted, so it can never read as one of the notices below.
type OnlineList struct{ Users []string }

// Notice is one of the fixed CMD <...> replies (NoticeUploadComplete,
// NoticeProblem, NoticeSendComplete).
type Notice struct{ Text string }

// Proceed accepts an upload: PROCEED
type Proceed struct{}

// Stop refuses an upload: STOP <reason>
type Stop struct{ Reason string }

// Begin starts a download of Count files: BEGIN count
type Begin struct{ Count int }

// FileHeader starts one downloaded file: BEGINF name size sender sha256 id.
// The raw bytes follow, then FileEnd.
type FileHeader struct {
	Name   string
	Size   int64
	Sender string
	SHA256 string
	ID     string
}

// FileEnd ends one downloaded file's bytes: ENDF ENDF ENDF
type FileEnd struct{}

func (Accept) Verb() string     { return "ACCEPT" }
func (Try) Verb() string        { return "TRY" }
func (End) Verb() string        { return "END" }
func (Relay) Verb() string      { return "RELAY" }
func (RelayGroup) Verb() string { return "RELAYG" }
func (NotOnline) Verb() string  { return "CNT" }
func (Carbon) Verb() string     { return "CARBON" }
func (Check) Verb() string      { return "CHECK" }
func (OnlineList) Verb() string { return "CMD" }
func (Notice) Verb() string     { return "CMD" }
func (Proceed) Verb() string    { return "PROCEED" }
func (Stop) Verb() string       { return "STOP" }
func (Begin) Verb() string      { return "BEGIN" }
func (FileHeader) Verb() string { return "BEGINF" }
func (FileEnd) Verb() string    { return "ENDF" }

func isNotice(s string) bool {
	return s == NoticeUploadComplete || s == NoticeProblem || s == NoticeSendComplete
}

func (q Accept) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendWords(append(dst, "ACCEPT"...), "ACCEPT", "user", q.User, "token", q.Token)
	return end(dst), err
}

func (q Try) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendReason(append(dst, "TRY"...), "TRY", q.Reason)
	return end(dst), err
}

func (q End) AppendTo(dst []byte) ([]byte, error) {
	dst = append(dst, "END"...)
	if q.Fatal {
		dst = append(dst, " *"...)
	}
	dst, err := appendReason(dst, "END", q.Reason)
	return end(dst), err
}

// appendRelayText appends the escaped text and the escaped newline that the
// original client cuts off before it shows a message.
func appendRelayText(dst []byte, verb, text string) ([]byte, error) {
	if err := validText(text); err != nil {
		return dst, ferr(verb, "text", err.Error())
	}
	dst = AppendEscaped(append(dst, ' '), text)
	return append(dst, '\\', 'n'), nil
}

func (q Relay) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendWords(append(dst, "RELAY"...), "RELAY", "target", q.Target, "sender", q.Sender)
	if err == nil {
		dst, err = appendRelayText(dst, "RELAY", q.Text)
	}
	return end(dst), err
}

func (q RelayGroup) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendWords(append(dst, "RELAYG"...), "RELAYG", "sender", q.Sender)
	if err == nil {
		dst, err = appendRelayText(dst, "RELAYG", q.Text)
	}
	return end(dst), err
}

func (q Carbon) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendWords(append(dst, "CARBON"...), "CARBON", "target", q.Target, "sender", q.Sender)
	if err == nil {
		dst, err = appendRelayText(dst, "CARBON", q.Text)
	}
	return end(dst), err
}

func (q NotOnline) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendReason(append(dst, "CNT"...), "CNT", q.Reason)
	return end(dst), err
}

func (Check) AppendTo(dst []byte) ([]byte, error)   { return end(append(dst, "CHECK"...)), nil }
func (Proceed) AppendTo(dst []byte) ([]byte, error) { return end(append(dst, "PROCEED"...)), nil }
func (FileEnd) AppendTo(dst []byte) ([]byte, error) {
	return end(append(dst, "ENDF ENDF ENDF"...)), nil
}

func (q OnlineList) AppendTo(dst []byte) ([]byte, error) {
	if len(q.Users) > MaxOnline {
		return dst, ferr("CMD", "users", "more than "+strconv.Itoa(MaxOnline))
	}
	dst = append(dst, "CMD <"...)
	for i, u := range q.Users {
		if !validWord(u, MaxWordBytes) || !validInside(u) {
			return dst, ferr("CMD", "users", "must be words without < or >")
		}
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = append(dst, u...)
	}
	if isNotice(strings.Join(q.Users, " ")) {
		return dst, ferr("CMD", "users", "read as a notice; send them sorted")
	}
	return end(append(dst, '>')), nil
}

func (q Notice) AppendTo(dst []byte) ([]byte, error) {
	if !isNotice(q.Text) {
		return dst, ferr("CMD", "notice", "is not one of the fixed notices")
	}
	dst, err := appendReason(append(dst, "CMD"...), "CMD", q.Text)
	return end(dst), err
}

func (q Stop) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendReason(append(dst, "STOP"...), "STOP", q.Reason)
	return end(dst), err
}

func (q Begin) AppendTo(dst []byte) ([]byte, error) {
	if q.Count < 0 {
		return dst, ferr("BEGIN", "count", "is negative")
	}
	return end(strconv.AppendInt(append(dst, "BEGIN "...), int64(q.Count), 10)), nil
}

func (q FileHeader) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendWord(append(dst, "BEGINF"...), "BEGINF", "name", EscapeWord(q.Name), MaxFileNameBytes)
	if err != nil {
		return end(dst), err
	}
	if q.Size < 0 || q.Size > MaxFileSize {
		return end(dst), ferr("BEGINF", "size", "out of range")
	}
	dst = strconv.AppendInt(append(dst, ' '), q.Size, 10)
	dst, err = appendWords(dst, "BEGINF", "sender", q.Sender, "sha256", q.SHA256)
	if err == nil && q.ID != "" {
		dst, err = appendWords(dst, "BEGINF", "id", q.ID)
	}
	return end(dst), err
}

// ParseServer parses one line a server sent, without its CR LF.
func ParseServer(line []byte) (Query, error) {
	s, err := trimLine(line)
	if err != nil {
		return nil, err
	}
	verb, rest := verbOf(s)
	switch verb {
	case "ACCEPT":
		w, err := words(verb, rest, 2, MaxWordBytes)
		if err != nil {
			return nil, err
		}
		return Accept{User: w[0], Token: w[1]}, nil
	case "OK", "NO":
		r, err := bracketed(verb, rest)
		if err != nil {
			return nil, err
		}
		if verb == "OK" {
			return OK{Text: r}, nil
		}
		return No{Reason: r}, nil
	case "TRY", "CNT", "STOP":
		r, err := bracketed(verb, rest)
		if err != nil {
			return nil, err
		}
		switch verb {
		case "TRY":
			return Try{Reason: r}, nil
		case "CNT":
			return NotOnline{Reason: r}, nil
		}
		return Stop{Reason: r}, nil
	case "END":
		q := End{}
		if strings.HasPrefix(rest, "* ") {
			q.Fatal, rest = true, rest[2:]
		}
		if q.Reason, err = bracketed(verb, rest); err != nil {
			return nil, err
		}
		return q, nil
	case "RELAY", "RELAYG", "CARBON":
		n := 2
		if verb == "RELAYG" {
			n = 1
		}
		parts := strings.SplitN(rest, " ", n+1)
		if len(parts) != n+1 {
			return nil, perr(verb, "want %d words and a text", n)
		}
		for _, w := range parts[:n] {
			if !validWord(w, MaxWordBytes) {
				return nil, perr(verb, "empty or over-long word")
			}
		}
		text := strings.TrimSuffix(Unescape(parts[n]), "\n")
		if err := validText(text); err != nil {
			return nil, perr(verb, "text %v", err)
		}
		switch verb {
		case "RELAY":
			return Relay{Target: parts[0], Sender: parts[1], Text: text}, nil
		case "CARBON":
			return Carbon{Target: parts[0], Sender: parts[1], Text: text}, nil
		}
		return RelayGroup{Sender: parts[0], Text: text}, nil
	case "RELAYQ":
		return parseRelayQueued(rest) // sslm/2 only: ext_offline.go
	case "CHECK", "PROCEED":
		if rest != "" {
			return nil, perr(verb, "takes no words")
		}
		if verb == "CHECK" {
			return Check{}, nil
		}
		return Proceed{}, nil
	case "CMD":
		inside, err := bracketedMax(verb, rest, maxListBytes)
		if err != nil {
			return nil, err
		}
		if isNotice(inside) {
			return Notice{Text: inside}, nil
		}
		q := OnlineList{}
		if inside != "" {
			q.Users = strings.Split(inside, " ")
		}
		if len(q.Users) > MaxOnline || slices.Contains(q.Users, "") {
			return nil, perr(verb, "bad online list")
		}
		for _, u := range q.Users {
			if len(u) > MaxWordBytes {
				return nil, perr(verb, "bad online list")
			}
		}
		return q, nil
	case "BEGIN":
		w, err := words(verb, rest, 1, MaxWordBytes)
		if err != nil {
			return nil, err
		}
		n, err := parseSize(verb, w[0])
		if err != nil || n > 1<<31 {
			return nil, perr(verb, "bad count")
		}
		return Begin{Count: int(n)}, nil
	case "BEGINF":
		w := strings.Split(rest, " ")
		if len(w) != 4 && len(w) != 5 {
			return nil, perr(verb, "want name size sender sha256 [id]")
		}
		if !validWord(w[0], MaxFileNameBytes) {
			return nil, perr(verb, "bad name")
		}
		for _, x := range w[1:] {
			if !validWord(x, MaxWordBytes) {
				return nil, perr(verb, "empty or over-long word")
			}
		}
		q := FileHeader{Name: Unescape(w[0]), Sender: w[2], SHA256: w[3]}
		if len(w) == 5 {
			q.ID = w[4]
		}
		if q.Size, err = parseSize(verb, w[1]); err != nil {
			return nil, err
		}
		return q, nil
	case "PONG": // sslm/2 only (ext_account.go)
		return parsePong(rest)
	case "ADMINR", "ROLE":
		return parseAdminServer(verb, rest) // sslm/2 only, see ext_admin.go
	case "KEY", "KEYCHANGE":
		return parseKeyLine(verb, rest) // sslm/3 only: ext_keys.go
	case "STREAMF", "CHUNK", "STREAMEND", "STREAMABORT":
		return parseStreamLine(verb, rest) // sslm/2 only: ext_stream.go
	case "MEMBERS":
		return parseMembers(rest) // sslm/3 only: ext_group.go
	case "ENDF":
		if rest != "ENDF ENDF" {
			return nil, perr(verb, "want ENDF ENDF ENDF")
		}
		return FileEnd{}, nil
	}
	return nil, perr("", "unknown verb %.20q", verb)
}
