package relay_test

import (
	"strings"
	"testing"
	"time"

	"sslmessager/internal/relay"
	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

// An upload whose data stops is ended after the idle timeout, never
// before: a sender that pauses for less, with part of the server's buffer
// filled (its reader then waits 10 ms and hands the part on) or not, is
// not cut off; the broken upload leaves nothing queued.
func TestUploadIdleTimeout(t *testing.T) {
	const idle = 400 * time.Millisecond
	h := relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) { c.UploadIdleTimeout = idle }})
	alice, _ := twoUsers(t, h)
	alice.Send(wire.Upload{Name: "x.bin", Target: "bob", Size: 1000, Token: alice.Token})
	alice.Expect(wire.Proceed{})
	// Pauses of 3/4 of the timeout.
	for range 4 {
		alice.Raw(strings.Repeat("x", 100))
		time.Sleep(idle * 3 / 4)
	}
	alice.Raw(strings.Repeat("x", 100))
	last := time.Now()
	q, err := alice.Next()
	took := time.Since(last)
	end, ok := q.(wire.End)
	if err != nil || !ok || !strings.Contains(end.Reason, "upload timed out") {
		t.Fatalf("after the data stopped: %v, %v; want END <upload timed out...>", q, err)
	}
	if took < idle || took > idle+time.Second {
		t.Errorf("cut off %v after the last data, want %v (+ scheduling)", took, idle)
	}
	if n := h.Spool.Queued("bob"); n != 0 {
		t.Errorf("%d files queued for bob after a broken upload", n)
	}
}
