package relay_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"sslmessager/internal/relay"
	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

// TestFailedSignUpsLoggedAtInfo checks that every refused sign-up (name
// taken, name or password not valid) is logged at info with the user name,
// and that no password ever reaches the log.
func TestFailedSignUpsLoggedAtInfo(t *testing.T) {
	var log relaytest.SyncBuffer
	h := relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}})
	h.Dial(t).SignUp("alice")
	for _, c := range []struct {
		user, pass, reason string
	}{
		{"alice", "secret-taken-1", wire.ReasonTaken},
		{"bad.name", "secret-badname-2", "invalid username"},
		{"carol", "x", "invalid password"},
	} {
		cl := h.Dial(t)
		cl.Send(wire.SignUp{User: c.user, Pass: c.pass})
		if q, ok := cl.MustNext().(wire.Try); !ok || !strings.Contains(q.Reason, c.reason) {
			t.Fatalf("%s: got %v, want TRY %s", c.user, q, c.reason)
		}
		relaytest.CheckFor(t, 10*time.Second, func() error {
			for _, line := range strings.Split(log.String(), "\n") {
				if strings.Contains(line, "level=INFO") && strings.Contains(line, `msg="sign-up refused"`) && strings.Contains(line, c.user) {
					return nil
				}
			}
			return fmt.Errorf("no info line for %s's refused sign-up in:\n%s", c.user, log.String())
		})
		if strings.Contains(log.String(), c.pass) {
			t.Errorf("the log holds %s's password:\n%s", c.user, log.String())
		}
	}
}
