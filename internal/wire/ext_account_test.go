package wire

import (
	"errors"
	"strings"
	"testing"
)

// The account queries and ping join the shared tables, so the parse and
// format tests and the fuzzers' seeds cover them too.
func init() {
	clientCases = append(clientCases, []struct {
		line string
		want Query
	}{
		{"PASSWD old-secret new-secret " + tok + " \r\n", ChangePassword{Old: "old-secret", New: "new-secret", Token: tok}},
		{"PASSWD " + strings.Repeat("o", 100) + " ünïcødé-pw " + tok + " \r\n", ChangePassword{Old: strings.Repeat("o", 100), New: "ünïcødé-pw", Token: tok}},
		{"DELACCT my-secret " + tok + " \r\n", DeleteAccount{Pass: "my-secret", Token: tok}},
		{"PING 17 " + tok + " \r\n", Ping{Nonce: "17", Token: tok}},
		{"PING p-1.a_B " + tok + " \r\n", Ping{Nonce: "p-1.a_B", Token: tok}},
	}...)
	serverCases = append(serverCases, []struct {
		q    Query
		line string
	}{
		{Pong{Nonce: "17"}, "PONG 17 \r\n"},
		{End{Reason: ReasonAccountDeleted}, "END <account deleted> \r\n"},
		{End{Fatal: true, Reason: "password changed in another session"}, "END * <password changed in another session> \r\n"},
	}...)
}

func TestParseAccountQueryErrors(t *testing.T) {
	long := strings.Repeat("p", MaxPasswordWordBytes+1)
	for _, line := range []string{
		"PASSWD", "PASSWD old " + tok, "PASSWD old new", "PASSWD old new extra " + tok, "PASSWD  old new " + tok,
		"PASSWD " + long + " new " + tok, "PASSWD old new " + strings.Repeat("t", MaxWordBytes+1),
		"DELACCT", "DELACCT " + tok, "DELACCT pw pw " + tok, "DELACCT " + long + " " + tok,
		"DELACCT pw " + strings.Repeat("t", MaxWordBytes+1),
		"PING", "PING " + tok, "PING 1 2 " + tok, "PING <1> " + tok, "PING a\x1bb " + tok,
		"PING " + strings.Repeat("n", MaxNonceBytes+1) + " " + tok, "passwd old new " + tok,
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
		if strings.Contains(err.Error(), "old") || strings.Contains(err.Error(), "pw") {
			t.Errorf("ParseClient(%q) error %q repeats a password", line, err)
		}
	}
	for _, line := range []string{"PONG", "PONG ", "PONG a b", "PONG <x>", "PONG " + strings.Repeat("n", MaxNonceBytes+1)} {
		if q, err := ParseServer([]byte(line)); err == nil {
			t.Errorf("ParseServer(%q) = %#v, want an error", line, q)
		}
	}
}

func TestFormatAccountQueriesRefuseBadFields(t *testing.T) {
	for _, q := range []Query{
		ChangePassword{Old: "a b", New: "newpassword", Token: tok},
		ChangePassword{Old: "oldpassword", New: "", Token: tok},
		ChangePassword{Old: "oldpassword", New: "x\r\nEND", Token: tok},
		ChangePassword{Old: "oldpassword", New: "newpassword", Token: ""},
		DeleteAccount{Pass: "", Token: tok}, DeleteAccount{Pass: "pw", Token: "a b"},
		Ping{Nonce: "", Token: tok}, Ping{Nonce: "a b", Token: tok}, Ping{Nonce: "x<y>", Token: tok},
		Ping{Nonce: strings.Repeat("n", MaxNonceBytes+1), Token: tok}, Pong{Nonce: "é"},
	} {
		if b, err := Format(q); err == nil {
			t.Errorf("Format(%#v) = %q, want an error", q, b)
		} else if !errors.Is(err, ErrField) {
			t.Errorf("Format(%#v) error %v does not wrap ErrField", q, err)
		}
	}
}

func TestAccountQueriesCarryTheToken(t *testing.T) {
	for _, q := range []Authenticated{ChangePassword{Token: tok}, DeleteAccount{Token: tok}, Ping{Token: tok}} {
		if q.SessionToken() != tok {
			t.Errorf("%s: SessionToken() = %q", q.Verb(), q.SessionToken())
		}
	}
	var q Query = Pong{Nonce: "1"}
	if _, ok := q.(Authenticated); ok {
		t.Error("PONG is a server line and carries no token")
	}
}
