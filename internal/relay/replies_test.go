package relay_test

import (
	"strings"
	"testing"

	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

// A target word is the client's: one holding '<', '>', control bytes or
// 64 bytes still gets a clean STOP naming it, quoted and cut, and the
// session goes on. (It used to make the server panic while building the
// reason and reset the connection without an answer.)
func TestClientWordsInRepliesAreQuoted(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	alice := h.Dial(t)
	alice.SignUp("alice")
	for _, c := range []struct{ target, quoted string }{
		{"<bob>", `\x3cbob\x3e`},
		{"a>b", `a\x3eb`},
		{"x\x1by", `x\x1by`},
		{strings.Repeat("L", wire.MaxWordBytes), strings.Repeat("L", wire.MaxQuotedBytes-3) + "..."},
		{strings.Repeat("<", 30), strings.Repeat(`\x3c`, 9) + "..."},
	} {
		alice.Send(wire.Upload{Name: "f.txt", Target: c.target, Size: 3, Token: alice.Token})
		alice.Expect(wire.Stop{Reason: "no such user: " + c.quoted})
		// The original form too: the data is read past, the session goes on.
		alice.Raw("BEGINF f.txt " + c.target + " " + alice.Token + " \r\nabc\r\nENDF " + alice.Token + " \r\n")
		alice.Expect(wire.Stop{Reason: "no such user: " + c.quoted})
	}
	alice.Send(wire.Online{Token: alice.Token})
	alice.Expect(wire.OnlineList{Users: []string{"alice"}})
}

// Passwords of 8 to 72 bytes work end to end; one byte more is a TRY
// with the rule, not a protocol error; the rule's text is the one the
// client shows too (wire.ErrPassword).
func TestPasswordLengthsEndToEnd(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	long := strings.Repeat("é", 36) // 72 bytes
	c := h.Dial(t)
	c.Send(wire.SignUp{User: "longpw", Pass: long})
	c.AcceptAs("longpw")
	c = h.Dial(t)
	c.Send(wire.Auth{User: "longpw", Pass: long})
	c.AcceptAs("longpw")

	c = h.Dial(t)
	c.Send(wire.SignUp{User: "toolong", Pass: long + "x"})
	c.Expect(wire.Try{Reason: "invalid password: " + wire.ErrPassword.Error()})
	c.Send(wire.SignUp{User: "admin", Pass: "password-x"})
	c.Expect(wire.Try{Reason: "invalid username: " + wire.ErrReservedName.Error()})
	c.Send(wire.SignUp{User: "a.b", Pass: "password-x"})
	c.Expect(wire.Try{Reason: "invalid username: " + wire.ErrUserName.Error()})
	c.Send(wire.SignUp{User: "fine", Pass: "password-fine"})
	c.AcceptAs("fine")
}
