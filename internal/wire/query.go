package wire

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Query is one line of the protocol in either direction. AppendTo checks the
// fields and appends the line, including its final " \r\n", to dst.
type Query interface {
	Verb() string
	AppendTo(dst []byte) ([]byte, error)
}

// Authenticated is a client query that carries the session token.
type Authenticated interface {
	Query
	SessionToken() string
}

// Format returns the bytes of q, or an error that says which field is bad.
func Format(q Query) ([]byte, error) { return q.AppendTo(nil) }

// MustFormat is Format for lines built from constants; it panics on error.
func MustFormat(q Query) []byte {
	b, err := Format(q)
	if err != nil {
		panic(err)
	}
	return b
}

// ProtocolError says why a line is not a valid query.
type ProtocolError struct {
	Verb   string // the first word, if the line had one
	Reason string
}

func (e *ProtocolError) Error() string {
	if e.Verb == "" {
		return "wire: " + e.Reason
	}
	return "wire: " + e.Verb + ": " + e.Reason
}

func perr(verb, format string, args ...any) error {
	return &ProtocolError{Verb: verb, Reason: fmt.Sprintf(format, args...)}
}

// ErrField is wrapped by AppendTo errors for a field that cannot be sent.
var ErrField = errors.New("wire: field cannot be sent")

func ferr(verb, field, why string) error {
	return fmt.Errorf("%w: %s %s %s", ErrField, verb, field, why)
}

// Reasons and notices that the protocol fixes. Servers send them verbatim;
// the original clients match some of them.
const (
	ReasonBadLogin    = "incorrect username or password"
	ReasonTaken       = "username already taken"
	ReasonProtocol    = "incorrect protocol"
	ReasonEndAccepted = "end accepted"
	ReasonNotOnline   = "user not online"
	ReasonUserCommand = "user command"
	// Reasons of an END that the server gives for itself, not for
	// anything the client did: a client may come back after them.
	ReasonShutdown     = "server shutting down"
	ReasonServerError  = "server error, try again later"
	ReasonSlowConsumer = "slow consumer: messages were not read in time"

	NoticeUploadComplete = "upload complete"
	NoticeProblem        = "problem with command"
	NoticeSendComplete   = "file send complete"
)

// Client command names inside CMD <...>.
const (
	cmdOnline = "online"
	cmdGroup  = "group"
	cmdGet    = "get"
	cmdGetAck = "get ack"
	cmdCarbon = "carbons"
)

// ---- checks shared by formatting and parsing ----

func validWord(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == ' ' || c == '\r' || c == '\n' {
			return false
		}
	}
	return true
}

// MaxReasonBytes bounds the free text inside <...> of a reason.
const MaxReasonBytes = 256

// maxListBytes bounds the inside of CMD <name name ...>.
const maxListBytes = MaxOnline * (MaxWordBytes + 1)

func validReason(s string) bool { return len(s) <= MaxReasonBytes && validInside(s) }

// validInside reports text that may stand inside <...>, of any length.
func validInside(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '<', c == '>', c < 0x20, c == 0x7f:
			return false
		}
	}
	return true
}

func validText(s string) error {
	if len(s) > 4*MaxTextRunes || utf8.RuneCountInString(s) > MaxTextRunes {
		return fmt.Errorf("longer than %d characters", MaxTextRunes)
	}
	if strings.Contains(s, "\r\n") {
		return errors.New("contains CR LF")
	}
	return nil
}

func appendWord(dst []byte, verb, field, w string, max int) ([]byte, error) {
	if !validWord(w, max) {
		return dst, ferr(verb, field, "must be one word of 1 to "+strconv.Itoa(max)+" bytes")
	}
	dst = append(dst, ' ')
	return append(dst, w...), nil
}

func appendWords(dst []byte, verb string, fields ...string) ([]byte, error) {
	var err error
	for i := 0; i < len(fields); i += 2 {
		if dst, err = appendWord(dst, verb, fields[i], fields[i+1], MaxWordBytes); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

func appendReason(dst []byte, verb, reason string) ([]byte, error) {
	if !validReason(reason) {
		return dst, ferr(verb, "reason", "must not hold <, > or control characters")
	}
	dst = append(dst, " <"...)
	dst = append(dst, reason...)
	return append(dst, '>'), nil
}

func end(dst []byte) []byte { return append(dst, eol...) }

// ---- client queries ----

// Auth logs in: AUTH user pass
type Auth struct{ User, Pass string }

// SignUp creates an account and logs in: PUT user pass
type SignUp struct{ User, Pass string }

// Msg is a direct message: MSG target sender text... token
type Msg struct{ Target, Sender, Text, Token string }

// GroupMsg is a group message: MSGG sender text... token
type GroupMsg struct{ Sender, Text, Token string }

// Online asks for the online list: CMD <online> token
type Online struct{ Token string }

// Group toggles group mode: CMD <group> token
type Group struct{ Token string }

// Get asks for the files queued for the user: CMD <get> token. With Ack
// (CMD <get ack> token) each file stays queued until an ACKF confirms it.
type Get struct {
	Ack   bool
	Token string
}

// Carbons asks for copies of the direct messages this user sends from
// its other sessions: CMD <carbons> token. No reply. Only our client sends
// it, so the original clients never receive a Carbon line.
type Carbons struct{ Token string }

// Quit ends the session: END <user command> token
type Quit struct{ Token string }

// Upload starts a file upload: BEGINF name target size token. Size -1 is
// the original form without a size (BEGINF name target token), whose data
// ends at the line ENDF token.
type Upload struct {
	Name, Target string
	Size         int64
	Token        string
}

// UploadEnd ends an upload's data: ENDF token
type UploadEnd struct{ Token string }

// AckFile confirms that a downloaded file arrived whole: ACKF id token
type AckFile struct{ ID, Token string }

func (Auth) Verb() string      { return "AUTH" }
func (SignUp) Verb() string    { return "PUT" }
func (Msg) Verb() string       { return "MSG" }
func (GroupMsg) Verb() string  { return "MSGG" }
func (Online) Verb() string    { return "CMD" }
func (Group) Verb() string     { return "CMD" }
func (Get) Verb() string       { return "CMD" }
func (Quit) Verb() string      { return "END" }
func (Carbons) Verb() string   { return "CMD" }
func (Upload) Verb() string    { return "BEGINF" }
func (UploadEnd) Verb() string { return "ENDF" }
func (AckFile) Verb() string   { return "ACKF" }

func (q Msg) SessionToken() string       { return q.Token }
func (q GroupMsg) SessionToken() string  { return q.Token }
func (q Online) SessionToken() string    { return q.Token }
func (q Group) SessionToken() string     { return q.Token }
func (q Get) SessionToken() string       { return q.Token }
func (q Quit) SessionToken() string      { return q.Token }
func (q Carbons) SessionToken() string   { return q.Token }
func (q Upload) SessionToken() string    { return q.Token }
func (q UploadEnd) SessionToken() string { return q.Token }
func (q AckFile) SessionToken() string   { return q.Token }

func (q Auth) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendWords(append(dst, "AUTH"...), "AUTH", "user", q.User)
	if err == nil {
		dst, err = appendWord(dst, "AUTH", "password", q.Pass, MaxPasswordWordBytes)
	}
	return end(dst), err
}

func (q SignUp) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendWords(append(dst, "PUT"...), "PUT", "user", q.User)
	if err == nil {
		dst, err = appendWord(dst, "PUT", "password", q.Pass, MaxPasswordWordBytes)
	}
	return end(dst), err
}

// appendText appends " text" and the newline the original client leaves on
// it, which the parser strips again. A text that ends in CR gets no newline,
// so that the line cannot end early.
func appendText(dst []byte, verb, text string) ([]byte, error) {
	if err := validText(text); err != nil {
		return dst, ferr(verb, "text", err.Error())
	}
	dst = append(dst, ' ')
	dst = append(dst, text...)
	if !strings.HasSuffix(text, "\r") {
		dst = append(dst, '\n')
	}
	return dst, nil
}

func (q Msg) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendWords(append(dst, "MSG"...), "MSG", "target", q.Target, "sender", q.Sender)
	if err == nil {
		dst, err = appendText(dst, "MSG", q.Text)
	}
	if err == nil {
		dst, err = appendWords(dst, "MSG", "token", q.Token)
	}
	return end(dst), err
}

func (q GroupMsg) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendWords(append(dst, "MSGG"...), "MSGG", "sender", q.Sender)
	if err == nil {
		dst, err = appendText(dst, "MSGG", q.Text)
	}
	if err == nil {
		dst, err = appendWords(dst, "MSGG", "token", q.Token)
	}
	return end(dst), err
}

func appendCmd(dst []byte, verb, inside, token string) ([]byte, error) {
	dst = append(dst, verb...)
	dst = append(dst, " <"...)
	dst = append(dst, inside...)
	dst = append(dst, '>')
	dst, err := appendWords(dst, verb, "token", token)
	return end(dst), err
}

func (q Online) AppendTo(dst []byte) ([]byte, error) {
	return appendCmd(dst, "CMD", cmdOnline, q.Token)
}
func (q Group) AppendTo(dst []byte) ([]byte, error) { return appendCmd(dst, "CMD", cmdGroup, q.Token) }
func (q Quit) AppendTo(dst []byte) ([]byte, error) {
	return appendCmd(dst, "END", ReasonUserCommand, q.Token)
}

func (q Carbons) AppendTo(dst []byte) ([]byte, error) {
	return appendCmd(dst, "CMD", cmdCarbon, q.Token)
}

func (q Get) AppendTo(dst []byte) ([]byte, error) {
	if q.Ack {
		return appendCmd(dst, "CMD", cmdGetAck, q.Token)
	}
	return appendCmd(dst, "CMD", cmdGet, q.Token)
}

func (q Upload) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendWord(append(dst, "BEGINF"...), "BEGINF", "name", EscapeWord(q.Name), MaxFileNameBytes)
	if err == nil {
		dst, err = appendWords(dst, "BEGINF", "target", q.Target)
	}
	if err == nil && q.Size >= 0 {
		if q.Size > MaxFileSize {
			err = ferr("BEGINF", "size", "too large")
		}
		dst = strconv.AppendInt(append(dst, ' '), q.Size, 10)
	} else if err == nil && q.Size != -1 {
		err = ferr("BEGINF", "size", "must be -1 (no size) or at least 0")
	}
	if err == nil {
		dst, err = appendWords(dst, "BEGINF", "token", q.Token)
	}
	return end(dst), err
}

func (q UploadEnd) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendWords(append(dst, "ENDF"...), "ENDF", "token", q.Token)
	return end(dst), err
}

func (q AckFile) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendWords(append(dst, "ACKF"...), "ACKF", "id", q.ID, "token", q.Token)
	return end(dst), err
}

// ---- parsing helpers ----

// trimLine drops one trailing space (the original puts one before CR LF) and
// refuses lines that could not have come from a line reader.
func trimLine(line []byte) (string, error) {
	if len(line) > MaxLineBytes {
		return "", perr("", "line longer than %d bytes", MaxLineBytes)
	}
	if bytes.Contains(line, []byte("\r\n")) {
		return "", perr("", "line contains CR LF")
	}
	s := string(line)
	s = strings.TrimSuffix(s, " ")
	if s == "" {
		return "", perr("", "empty line")
	}
	return s, nil
}

func verbOf(s string) (verb, rest string) {
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// words splits s into exactly n words of at most max bytes each.
func words(verb, s string, n, max int) ([]string, error) {
	w := strings.SplitN(s, " ", n+1)
	if len(w) != n || (n == 0 && s != "") {
		return nil, perr(verb, "want %d words after the verb", n)
	}
	for _, x := range w {
		if !validWord(x, max) {
			return nil, perr(verb, "empty or over-long word")
		}
	}
	return w, nil
}

// lastWord splits "front token" at the last space.
func lastWord(verb, s string) (front, last string, err error) {
	i := strings.LastIndexByte(s, ' ')
	if i < 0 || !validWord(s[i+1:], MaxWordBytes) {
		return "", "", perr(verb, "missing token")
	}
	return s[:i], s[i+1:], nil
}

// bracketed parses "<inside>" exactly, inside at most MaxReasonBytes.
func bracketed(verb, s string) (string, error) { return bracketedMax(verb, s, MaxReasonBytes) }

func bracketedMax(verb, s string, max int) (string, error) {
	if len(s) < 2 || s[0] != '<' || s[len(s)-1] != '>' {
		return "", perr(verb, "want <...>")
	}
	inside := s[1 : len(s)-1]
	if len(inside) > max || !validInside(inside) {
		return "", perr(verb, "bad characters inside <...>")
	}
	return inside, nil
}

// splitText takes nwords (1 or 2) words and then the text: "word word
// text..." or "word text...", returning the words and the text with the one
// trailing LF removed.
func splitText(verb, s string, nwords int) ([2]string, string, error) {
	var w [2]string
	rest := s
	for i := range nwords {
		j := strings.IndexByte(rest, ' ')
		if j < 0 {
			if i < nwords-1 {
				return w, "", perr(verb, "want %d words before the text", nwords)
			}
			j = len(rest)
		}
		if !validWord(rest[:j], MaxWordBytes) {
			return w, "", perr(verb, "empty or over-long word")
		}
		w[i] = rest[:j]
		if j < len(rest) {
			rest = rest[j+1:]
		} else {
			rest = ""
		}
	}
	text := strings.TrimSuffix(rest, "\n")
	if err := validText(text); err != nil {
		return w, "", perr(verb, "text %v", err)
	}
	return w, text, nil
}

func parseSize(verb, s string) (int64, error) {
	if s == "" || len(s) > 16 || (len(s) > 1 && s[0] == '0') {
		return 0, perr(verb, "bad size %q", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, perr(verb, "bad size %q", s)
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > MaxFileSize {
		return 0, perr(verb, "bad size %q", s)
	}
	return n, nil
}

// ParseClient parses one line a client sent, without its CR LF.
func ParseClient(line []byte) (Query, error) {
	s, err := trimLine(line)
	if err != nil {
		return nil, err
	}
	verb, rest := verbOf(s)
	switch verb {
	case "AUTH", "PUT":
		w, err := words(verb, rest, 2, MaxPasswordWordBytes)
		if err != nil {
			return nil, err
		}
		if len(w[0]) > MaxWordBytes {
			return nil, perr(verb, "user name longer than %d bytes", MaxWordBytes)
		}
		if verb == "AUTH" {
			return Auth{User: w[0], Pass: w[1]}, nil
		}
		return SignUp{User: w[0], Pass: w[1]}, nil
	case "MSG", "MSGG":
		front, token, err := lastWord(verb, rest)
		if err != nil {
			return nil, err
		}
		if verb == "MSG" {
			w, text, err := splitText(verb, front, 2)
			if err != nil {
				return nil, err
			}
			return Msg{Target: w[0], Sender: w[1], Text: text, Token: token}, nil
		}
		w, text, err := splitText(verb, front, 1)
		if err != nil {
			return nil, err
		}
		return GroupMsg{Sender: w[0], Text: text, Token: token}, nil
	case "CMD", "END":
		front, token, err := lastWord(verb, rest)
		if err != nil {
			return nil, err
		}
		inside, err := bracketed(verb, front)
		if err != nil {
			return nil, err
		}
		if verb == "END" {
			return Quit{Token: token}, nil
		}
		switch inside {
		case cmdOnline:
			return Online{Token: token}, nil
		case cmdGroup:
			return Group{Token: token}, nil
		case cmdGet:
			return Get{Token: token}, nil
		case cmdGetAck:
			return Get{Ack: true, Token: token}, nil
		case cmdCarbon:
			return Carbons{Token: token}, nil
		}
		return nil, perr(verb, "unknown command <%s>", inside)
	case "BEGINF":
		w := strings.Split(rest, " ")
		if len(w) != 3 && len(w) != 4 {
			return nil, perr(verb, "want name target [size] token")
		}
		if !validWord(w[0], MaxFileNameBytes) || !validWord(w[1], MaxWordBytes) || !validWord(w[len(w)-1], MaxWordBytes) {
			return nil, perr(verb, "empty or over-long word")
		}
		q := Upload{Name: Unescape(w[0]), Target: w[1], Size: -1, Token: w[len(w)-1]}
		if q.Name == "" {
			return nil, perr(verb, "empty file name")
		}
		if len(w) == 4 {
			if q.Size, err = parseSize(verb, w[2]); err != nil {
				return nil, err
			}
		}
		return q, nil
	case "ENDF":
		w, err := words(verb, rest, 1, MaxWordBytes)
		if err != nil {
			return nil, err
		}
		return UploadEnd{Token: w[0]}, nil
	case "ADMIN":
		return parseAdmin(rest) // sslm/2 only, see ext_admin.go
	case "ACKF":
		w, err := words(verb, rest, 2, MaxWordBytes)
		if err != nil {
			return nil, err
		}
		return AckFile{ID: w[0], Token: w[1]}, nil
	case "PASSWD", "DELACCT", "PING": // sslm/2 only (ext_account.go)
		return parseAccountQuery(verb, rest)
	case "ACKM":
		return parseAckMsg(rest) // sslm/2 only: ext_offline.go
	case "SETKEY", "GETKEY":
		return parseKeyQuery(verb, rest) // sslm/3 only: ext_keys.go
	case "GETLIVE", "PUSH":
		return parseStreamQuery(verb, rest) // sslm/2 only: ext_stream.go
	case "GROUPMEMBERS":
		return parseGroupMembers(rest) // sslm/3 only: ext_group.go
	}
	return nil, perr("", "unknown verb %.20q", verb)
}
