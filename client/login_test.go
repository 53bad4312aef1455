package main

import (
	"strings"
	"testing"

	"sslmessager/internal/messenger"
	"sslmessager/internal/relay/relaytest"
)

// termConsole is a console whose stdin is a terminal that answers the
// password prompts with answers, in turn.
func termConsole(t *testing.T, answers ...string) (*console, *relaytest.SyncBuffer) {
	errw := &relaytest.SyncBuffer{}
	con := &console{out: &relaytest.SyncBuffer{}, errw: errw, stdinTTY: true}
	con.readPassword = func() ([]byte, error) {
		if len(answers) == 0 {
			t.Fatal("asked for a password once too often")
		}
		a := answers[0]
		answers = answers[1:]
		return []byte(a), nil
	}
	return con, errw
}

// Issue 9, item 4: like ssh, a terminal user gets 3 tries for a wrong
// password at log-in, each on a new connection (the server closes the one
// it refused).
func TestLoginGivesThreeTries(t *testing.T) {
	s := relaytest.Start(t, relaytest.Options{})
	c := s.Dial(t)
	c.SignUp("alice") // password "password-alice"
	c.Conn.Close()

	dials := 0
	dial := func() (*messenger.Conn, error) {
		dials++
		return messenger.Dial(t.Context(), s.Addr, s.CAFile)
	}

	con, errw := termConsole(t, "wrong-2", "password-alice")
	conn, err := loginWithTries(dial, con, &credentials{user: "alice", pass: "wrong-1"}, false, true)
	if err != nil {
		t.Fatalf("third try: %v; stderr %q", err, errw.String())
	}
	conn.Close()
	if dials != 3 || strings.Count(errw.String(), "incorrect username or password; try again") != 2 {
		t.Errorf("%d connections, stderr %q; want 3 and 2 retries", dials, errw.String())
	}

	dials = 0
	con, errw = termConsole(t, "wrong-2", "wrong-3")
	_, err = loginWithTries(dial, con, &credentials{user: "alice", pass: "wrong-1"}, false, true)
	if err == nil || !strings.Contains(err.Error(), "log-in refused: incorrect username or password") || dials != 3 {
		t.Fatalf("three wrong passwords: %v after %d connections; stderr %q", err, dials, errw.String())
	}

	// A password from a file or the environment is not asked again.
	dials = 0
	con, _ = termConsole(t)
	if _, err := loginWithTries(dial, con, &credentials{user: "alice", pass: "wrong-1"}, false, false); err == nil || dials != 1 {
		t.Fatalf("password not typed: %v after %d connections, want one refusal", err, dials)
	}
}

// Issue 9, item 4: a confirmation that does not match at sign-up is asked
// again, 3 tries in all.
func TestSignUpConfirmationGivesThreeTries(t *testing.T) {
	con, errw := termConsole(t, "one", "One", "two", "Two", "three", "three")
	p, err := askNewOrOldPassword(con, true)
	if err != nil || p != "three" {
		t.Fatalf("got %q, %v; stderr %q", p, err, errw.String())
	}
	if n := strings.Count(errw.String(), "the passwords do not match; try again"); n != 2 {
		t.Errorf("%d retries announced, want 2: %q", n, errw.String())
	}

	con, _ = termConsole(t, "a", "b", "c", "d", "e", "f")
	if _, err := askNewOrOldPassword(con, true); err == nil || !strings.Contains(err.Error(), "do not match (3 tries)") {
		t.Fatalf("three mismatches: %v", err)
	}

	con, _ = termConsole(t, "")
	if _, err := askNewOrOldPassword(con, true); err == nil {
		t.Fatal("an empty password was accepted")
	}
}
