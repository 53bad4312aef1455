package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

const tok = "5f3a9c0e5f3a9c0e5f3a9c0e5f3a9c0e"

// Lines exactly as the original client sends them, and what they mean.
var clientCases = []struct {
	line string
	want Query
}{
	{"AUTH alice s3cretpw \r\n", Auth{User: "alice", Pass: "s3cretpw"}},
	{"PUT bob hunter22 \r\n", SignUp{User: "bob", Pass: "hunter22"}},
	{"MSG bob alice hello bob\n " + tok + " \r\n", Msg{Target: "bob", Sender: "alice", Text: "hello bob", Token: tok}},
	{"MSG bob alice two  spaces\n " + tok + " \r\n", Msg{Target: "bob", Sender: "alice", Text: "two  spaces", Token: tok}},
	{"MSG bob alice line1\nline2\n " + tok + " \r\n", Msg{Target: "bob", Sender: "alice", Text: "line1\nline2", Token: tok}},
	{"MSG bob alice \n " + tok + " \r\n", Msg{Target: "bob", Sender: "alice", Text: "", Token: tok}},
	{"MSG bob alice no-newline " + tok + "\r\n", Msg{Target: "bob", Sender: "alice", Text: "no-newline", Token: tok}},
	{"MSGG alice hi all\n " + tok + " \r\n", GroupMsg{Sender: "alice", Text: "hi all", Token: tok}},
	{"CMD <online> " + tok + " \r\n", Online{Token: tok}},
	{"CMD <group> " + tok + " \r\n", Group{Token: tok}},
	{"CMD <get> " + tok + " \r\n", Get{Token: tok}},
	{"CMD <get ack> " + tok + " \r\n", Get{Ack: true, Token: tok}},
	{"END <user command> " + tok + " \r\n", Quit{Token: tok}},
	{"BEGINF notes.txt bob " + tok + " \r\n", Upload{Name: "notes.txt", Target: "bob", Size: -1, Token: tok}},
	{"BEGINF notes.txt bob 1234 " + tok + " \r\n", Upload{Name: "notes.txt", Target: "bob", Size: 1234, Token: tok}},
	{"BEGINF my\\x20file.txt bob 0 " + tok + " \r\n", Upload{Name: "my file.txt", Target: "bob", Size: 0, Token: tok}},
	{"ENDF " + tok + " \r\n", UploadEnd{Token: tok}},
	{"ACKF 0123abcd " + tok + " \r\n", AckFile{ID: "0123abcd", Token: tok}},
	{"CMD <carbons> " + tok + " \r\n", Carbons{Token: tok}},
	// Passwords up to 72 bytes are passwords; longer words still parse, so
	// the account rules can answer TRY with the reason.
	{"AUTH alice " + strings.Repeat("p", 72) + " \r\n", Auth{User: "alice", Pass: strings.Repeat("p", 72)}},
	{"PUT alice " + strings.Repeat("p", 200) + " \r\n", SignUp{User: "alice", Pass: strings.Repeat("p", 200)}},
}

func stripCRLF(t *testing.T, s string) []byte {
	t.Helper()
	if !strings.HasSuffix(s, "\r\n") {
		t.Fatalf("case %q lacks CR LF", s)
	}
	return []byte(strings.TrimSuffix(s, "\r\n"))
}

func TestParseClient(t *testing.T) {
	for _, c := range clientCases {
		got, err := ParseClient(stripCRLF(t, c.line))
		if err != nil {
			t.Errorf("ParseClient(%q): %v", c.line, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseClient(%q) = %#v, want %#v", c.line, got, c.want)
		}
	}
}

func TestFormatClientMatchesOriginal(t *testing.T) {
	// Our client sends what the original sends, byte for byte, where the
	// original's form is canonical.
	for _, c := range clientCases {
		if strings.Contains(c.line, "no-newline") || strings.Contains(c.line, "get ack") {
			continue
		}
		got, err := Format(c.want)
		if err != nil {
			t.Fatalf("Format(%#v): %v", c.want, err)
		}
		if string(got) != c.line {
			t.Errorf("Format(%#v) = %q, want %q", c.want, got, c.line)
		}
	}
}

func TestParseClientErrors(t *testing.T) {
	long := strings.Repeat("é", MaxTextRunes+1)
	for _, line := range []string{
		"", " ", "HELLO", "AUTH alice", "AUTH alice pw extra", "AUTH  alice pw",
		"MSG bob", "MSG bob " + tok, "MSG " + tok, "MSGG " + tok,
		"MSG bob alice " + long + " " + tok,
		"CMD <online>", "CMD <dance> " + tok, "CMD online " + tok, "CMD <online " + tok,
		"END " + tok, "END <x",
		"BEGINF a " + tok, "BEGINF a b -1 " + tok, "BEGINF a b 01 " + tok, "BEGINF a b 1x " + tok,
		"BEGINF a b 1 2 " + tok, "BEGINF a b 99999999999999999 " + tok,
		"ENDF", "ENDF a b", "ACKF " + tok,
		"MSG bob alice hi\r\n " + tok,
		"msg bob alice hi " + tok,
		"PUT alice " + strings.Repeat("p", MaxPasswordWordBytes+1),
		"AUTH " + strings.Repeat("u", MaxWordBytes+1) + " password",
		"CMD <carbons>",
	} {
		q, err := ParseClient([]byte(line))
		if err == nil {
			t.Errorf("ParseClient(%q) = %#v, want an error", line, q)
			continue
		}
		var pe *ProtocolError
		if !errors.As(err, &pe) {
			t.Errorf("ParseClient(%q) error %T is not a *ProtocolError", line, err)
		}
	}
}

var serverCases = []struct {
	q    Query
	line string
}{
	{Accept{User: "alice", Token: tok}, "ACCEPT alice " + tok + " \r\n"},
	{End{Reason: ReasonBadLogin}, "END <incorrect username or password> \r\n"},
	{End{Fatal: true, Reason: ReasonProtocol}, "END * <incorrect protocol> \r\n"},
	{End{Reason: ReasonEndAccepted}, "END <end accepted> \r\n"},
	{Try{Reason: ReasonTaken}, "TRY <username already taken> \r\n"},
	{Relay{Target: "bob", Sender: "alice", Text: "hello bob"}, "RELAY bob alice hello bob\\n \r\n"},
	{Relay{Target: "bob", Sender: "alice", Text: "a\tb\\c\nd\x1b[31m\u202e"}, "RELAY bob alice a\\tb\\\\c\\nd\\x1b[31m\\xe2\\x80\\xae\\n \r\n"},
	{Relay{Target: "bob", Sender: "alice", Text: "日本語 ok"}, "RELAY bob alice 日本語 ok\\n \r\n"},
	{RelayGroup{Sender: "alice", Text: "hi all"}, "RELAYG alice hi all\\n \r\n"},
	{Carbon{Target: "bob", Sender: "alice", Text: "sent elsewhere\t"}, "CARBON bob alice sent elsewhere\\t\\n \r\n"},
	{NotOnline{Reason: ReasonNotOnline}, "CNT <user not online> \r\n"},
	{Check{}, "CHECK \r\n"},
	{OnlineList{Users: []string{"alice", "bob"}}, "CMD <alice bob> \r\n"},
	{OnlineList{}, "CMD <> \r\n"},
	{Notice{Text: NoticeUploadComplete}, "CMD <upload complete> \r\n"},
	{Notice{Text: NoticeSendComplete}, "CMD <file send complete> \r\n"},
	{Proceed{}, "PROCEED \r\n"},
	{Stop{Reason: "file too large"}, "STOP <file too large> \r\n"},
	{Begin{Count: 2}, "BEGIN 2 \r\n"},
	{FileHeader{Name: "a b.txt", Size: 10, Sender: "alice", SHA256: "ab12", ID: "x1"}, "BEGINF a\\x20b.txt 10 alice ab12 x1 \r\n"},
	{FileEnd{}, "ENDF ENDF ENDF \r\n"},
	{OK{Text: "password changed"}, "OK <password changed> \r\n"},
	{No{Reason: "wrong password"}, "NO <wrong password> \r\n"},
}

func TestServerLines(t *testing.T) {
	for _, c := range serverCases {
		got, err := Format(c.q)
		if err != nil {
			t.Errorf("Format(%#v): %v", c.q, err)
			continue
		}
		if string(got) != c.line {
			t.Errorf("Format(%#v) = %q, want %q", c.q, got, c.line)
		}
		back, err := ParseServer(stripCRLF(t, c.line))
		if err != nil {
			t.Errorf("ParseServer(%q): %v", c.line, err)
			continue
		}
		if !reflect.DeepEqual(back, c.q) && !(reflect.DeepEqual(c.q, OnlineList{}) && reflect.DeepEqual(back, OnlineList{})) {
			t.Errorf("ParseServer(%q) = %#v, want %#v", c.line, back, c.q)
		}
	}
}

func TestLongOnlineList(t *testing.T) {
	// The longest list a server sends: 100 names of 15 characters, and of
	// the longest word.
	for _, n := range []int{15, MaxWordBytes} {
		var users []string
		for i := range MaxOnline {
			users = append(users, fmt.Sprintf("%0*d", n, i))
		}
		b, err := Format(OnlineList{Users: users})
		if err != nil {
			t.Fatal(err)
		}
		q, err := ParseServer(b[:len(b)-2])
		if err != nil {
			t.Fatalf("a list of %d names of %d bytes: %v", len(users), n, err)
		}
		if !reflect.DeepEqual(q, OnlineList{Users: users}) {
			t.Fatal("the list changed on the way")
		}
	}
}

func TestFormatRefusesBadFields(t *testing.T) {
	for _, q := range []Query{
		Auth{User: "a b", Pass: "x"}, Auth{User: "", Pass: "x"}, SignUp{User: "a", Pass: "p\r\nAUTH"},
		Msg{Target: "bob", Sender: "alice", Text: "x\r\nEND", Token: tok},
		Msg{Target: "bob", Sender: "alice", Text: strings.Repeat("x", MaxTextRunes+1), Token: tok},
		Msg{Target: "bob", Sender: "alice", Text: "hi", Token: ""},
		Upload{Name: "", Target: "bob", Size: 1, Token: tok}, Upload{Name: "a", Target: "bob", Size: -2, Token: tok},
		End{Reason: "a>b"}, Try{Reason: "x\ny"}, Notice{Text: "hello"},
		OnlineList{Users: []string{"problem", "with", "command"}}, OnlineList{Users: []string{"a<"}},
		OnlineList{Users: make([]string, MaxOnline+1)}, Begin{Count: -1},
		FileHeader{Name: "a", Size: -1, Sender: "s", SHA256: "h"},
	} {
		if b, err := Format(q); err == nil {
			t.Errorf("Format(%#v) = %q, want an error", q, b)
		} else if !errors.Is(err, ErrField) {
			t.Errorf("Format(%#v) error %v does not wrap ErrField", q, err)
		}
	}
}

func TestEscape(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain text", "plain text"},
		{"a\nb\rc\td\\e", `a\nb\rc\td\\e`},
		{"\x00\x07\x1b\x7f", `\x00\x07\x1b\x7f`},
		{"\xff\xfe", `\xff\xfe`},
		{"\u0085\u009b", `\xc2\x85\xc2\x9b`},
		{"é日本🙂", "é日本🙂"},
	} {
		if got := Escape(c.in); got != c.want {
			t.Errorf("Escape(%q) = %q, want %q", c.in, got, c.want)
		}
		if back := Unescape(c.want); back != c.in {
			t.Errorf("Unescape(%q) = %q, want %q", c.want, back, c.in)
		}
	}
	if got := EscapeWord("a b"); got != `a\x20b` {
		t.Errorf("EscapeWord = %q", got)
	}
	for _, in := range []string{`\`, `\q`, `\x`, `\x4`, `\xZZ`, `abc\`} {
		if got := Unescape(in); got != in {
			t.Errorf("Unescape(%q) = %q, want it unchanged", in, got)
		}
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "a\nb", "\x1b[2J", "\\x41", "日本\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := Escape(s)
		for i := 0; i < len(e); i++ {
			if e[i] < 0x20 || e[i] == 0x7f {
				t.Fatalf("Escape(%q) = %q holds a control byte", s, e)
			}
		}
		if !utf8.ValidString(e) {
			t.Fatalf("Escape(%q) = %q is not valid UTF-8", s, e)
		}
		if Unescape(e) != s {
			t.Fatalf("Unescape(Escape(%q)) = %q", s, Unescape(e))
		}
		if w := EscapeWord(s); strings.Contains(w, " ") || Unescape(w) != s {
			t.Fatalf("EscapeWord(%q) = %q", s, w)
		}
	})
}

// roundTrip checks that a parsed query formats and parses back to itself.
func roundTrip(t *testing.T, line []byte, parse func([]byte) (Query, error)) {
	q, err := parse(line)
	if err != nil {
		return
	}
	b, err := Format(q)
	if err != nil {
		t.Fatalf("parsed %q as %#v but Format fails: %v", line, q, err)
	}
	if !bytes.HasSuffix(b, []byte(" \r\n")) || bytes.Contains(b[:len(b)-2], []byte("\r\n")) {
		t.Fatalf("Format(%#v) = %q is not one line", q, b)
	}
	back, err := parse(b[:len(b)-2])
	if err != nil {
		t.Fatalf("Format(%#v) = %q does not parse: %v", q, b, err)
	}
	if !reflect.DeepEqual(back, q) {
		t.Fatalf("round trip of %q: %#v became %#v", line, q, back)
	}
}

func FuzzParseClient(f *testing.F) {
	for _, c := range clientCases {
		f.Add([]byte(strings.TrimSuffix(c.line, "\r\n")))
	}
	f.Fuzz(func(t *testing.T, line []byte) { roundTrip(t, line, ParseClient) })
}

func FuzzParseServer(f *testing.F) {
	for _, c := range serverCases {
		f.Add([]byte(strings.TrimSuffix(c.line, "\r\n")))
	}
	f.Fuzz(func(t *testing.T, line []byte) { roundTrip(t, line, ParseServer) })
}

// FuzzTextRelay sends any text through the whole path: our client formats a
// MSG, the server parses it and formats the RELAY, our client parses that.
func FuzzTextRelay(f *testing.F) {
	for _, s := range []string{"hello", "", "a\nb", "end\\", "x\r", "\\n", "tab\there", "日本語\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if validText(text) != nil {
			return
		}
		line, err := Format(Msg{Target: "bob", Sender: "alice", Text: text, Token: tok})
		if err != nil {
			t.Fatalf("Format MSG: %v", err)
		}
		r := NewReader(bytes.NewReader(line), 64)
		raw, err := r.ReadLine()
		if err != nil {
			t.Fatalf("ReadLine(%q): %v", line, err)
		}
		q, err := ParseClient(raw)
		if err != nil {
			t.Fatalf("ParseClient(%q): %v", raw, err)
		}
		m := q.(Msg)
		out, err := Format(Relay{Target: m.Target, Sender: m.Sender, Text: m.Text})
		if err != nil {
			t.Fatalf("Format RELAY: %v", err)
		}
		got, err := ParseServer(out[:len(out)-2])
		if err != nil {
			t.Fatalf("ParseServer(%q): %v", out, err)
		}
		if got.(Relay).Text != text {
			t.Fatalf("text %q arrived as %q", text, got.(Relay).Text)
		}
	})
}

func TestReaderLines(t *testing.T) {
	in := "MSG a b x\ny T \r\nCHECK \r\n\r\n" + strings.Repeat("z", 300) + "\r\nlast"
	r := NewReader(strings.NewReader(in), 16)
	want := []string{"MSG a b x\ny T ", "CHECK ", "", strings.Repeat("z", 300)}
	for _, w := range want {
		got, err := r.ReadLine()
		if err != nil || string(got) != w {
			t.Fatalf("ReadLine = %q, %v; want %q", got, err, w)
		}
	}
	if _, err := r.ReadLine(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a torn last line gave %v, want io.ErrUnexpectedEOF", err)
	}
	if _, err := NewReader(strings.NewReader(""), 16).ReadLine(); err != io.EOF {
		t.Fatalf("empty stream gave %v, want io.EOF", err)
	}
}

func TestReaderBoundsLines(t *testing.T) {
	for _, size := range []int{16, 4096, MaxLineBytes + 100} {
		// A reader that never ends and never sends CR LF.
		endless := io.MultiReader(strings.NewReader("MSG "), neverEnding('a'))
		r := NewReader(endless, size)
		if _, err := r.ReadLine(); !errors.Is(err, ErrLineTooLong) {
			t.Fatalf("buffer %d: got %v, want ErrLineTooLong", size, err)
		}
	}
	exact := strings.Repeat("b", MaxLineBytes) + "\r\n"
	if got, err := NewReader(strings.NewReader(exact), 4096).ReadLine(); err != nil || len(got) != MaxLineBytes {
		t.Fatalf("a line of exactly MaxLineBytes: %d bytes, %v", len(got), err)
	}
}

type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

// oneByte hands out its input one byte per Read, the worst split there is.
type oneByte struct{ r io.Reader }

func (o oneByte) Read(p []byte) (int, error) { return o.r.Read(p[:1]) }

func TestCopyUntilEverySplit(t *testing.T) {
	ends := [][]byte{[]byte("ENDF " + tok + " \r\n"), []byte("ENDF " + tok + "\r\n")}
	data := []byte("bytes with ENDF inside and ENDF " + tok[:10] + " and \r\n and a fake ENDF x \r\n\x00\xff")
	for _, end := range ends {
		stream := append(append(append([]byte{}, data...), end...), "CHECK \r\n"...)
		for split := 0; split <= len(stream); split++ {
			for _, size := range []int{16, 64, 4096} {
				src := io.MultiReader(bytes.NewReader(stream[:split]), oneByte{bytes.NewReader(stream[split:])})
				r := NewReader(src, size)
				var out bytes.Buffer
				n, _, err := r.CopyUntil(&out, ends, 1<<20)
				if err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
					t.Fatalf("split %d size %d: n=%d err=%v out=%q", split, size, n, err, out.Bytes())
				}
				if line, err := r.ReadLine(); err != nil || string(line) != "CHECK " {
					t.Fatalf("split %d: the line after the data: %q, %v", split, line, err)
				}
			}
		}
	}
}

func TestCopyUntilLimits(t *testing.T) {
	ends := [][]byte{[]byte("ENDF t \r\n")}
	r := NewReader(strings.NewReader(strings.Repeat("x", 100)+"ENDF t \r\nCHECK \r\n"), 16)
	if _, _, err := r.CopyUntil(io.Discard, ends, 99); !errors.Is(err, ErrTooMuchData) {
		t.Fatalf("over the limit: %v", err)
	}
	// It read through the end line all the same.
	if line, err := r.ReadLine(); err != nil || string(line) != "CHECK " {
		t.Fatalf("after the refused data: %q, %v", line, err)
	}
	r = NewReader(strings.NewReader("abcdefENDF t \r\nCHECK \r\n"), 16)
	if _, _, err := r.CopyUntil(failWriter{}, ends, 1000); !errors.Is(err, errFail) {
		t.Fatalf("failing writer: %v", err)
	}
	if line, err := r.ReadLine(); err != nil || string(line) != "CHECK " {
		t.Fatalf("after a failed write: %q, %v", line, err)
	}
	r = NewReader(strings.NewReader("no end in sight"), 16)
	if _, _, err := r.CopyUntil(io.Discard, ends, 1000); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut off: %v", err)
	}
}

var errFail = errors.New("write failed")

type failWriter struct{}

func (failWriter) Write(p []byte) (int, error) { return 0, errFail }
