package messenger

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"sslmessager/internal/offline"
	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

func utcClock() time.Time { return time.Now().UTC() }

func TestRenderStored(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	r := renderer{timestamps: true, now: func() time.Time { return now }}
	sent := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	if got := r.stored("alice", "hi\nthere", sent); got != "[sent 10:00, 30 Nov] alice: hi\n                            there" {
		t.Errorf("got %q", got)
	}
	// Another year shows it; the clock's zone is used.
	zone := time.FixedZone("X", 2*3600)
	r.now = func() time.Time { return now.In(zone) }
	if got := r.stored("bob\x1b", "x", sent.AddDate(-1, 0, 0)); got != `[sent 12:00, 30 Nov 2025] bob\x1b: x` {
		t.Errorf("got %q", got)
	}
}

// offlineRelay starts a server that keeps offline messages, signs up
// alice (returned, chatting with carol) and carol, who leaves.
func offlineRelay(t *testing.T) (*relayServer, *running) {
	t.Helper()
	s := &relayServer{relaytest.Start(t, relaytest.Options{Offline: &offline.Options{}})}
	s.join(t, "carol", true).Close()
	s.waitOnline(t, "nobody", func(n []string) bool { return len(n) == 0 })
	alice := startRun(t, s.join(t, "alice", true), Options{Target: "carol", NoTimestamps: true})
	return s, alice
}

// TestOfflineMessagesShownOnce: alice writes to carol, who is offline, and
// is told the messages are queued; carol logs in later and sees them with
// the times they were sent, in order; they are confirmed, so the server
// forgets them, and carol's config directory remembers them.
func TestOfflineMessagesShownOnce(t *testing.T) {
	s, alice := offlineRelay(t)
	for _, text := range []string{"one", "two", "three"} {
		alice.typeLine(t, text)
	}
	relaytest.CheckFor(t, waitLimit, func() error {
		if n := strings.Count(alice.out.String(), "queued for carol (offline)\n"); n != 3 {
			return fmt.Errorf("%d of 3 queued; output:\n%s", n, alice.out.String())
		}
		return nil
	})
	stored, err := s.Offline.Read("carol", 0, 10)
	if err != nil || len(stored) != 3 {
		t.Fatalf("stored: %v, %v", stored, err)
	}

	state := t.TempDir()
	conn := s.join(t, "carol", false)
	carol := startRun(t, conn, Options{Target: "alice", Now: utcClock, ConfigDir: state})
	r := renderer{now: utcClock}
	var want strings.Builder
	for _, m := range stored {
		want.WriteString(r.stored("alice", m.Text, m.Sent) + "\n")
	}
	waitOutput(t, carol.out, want.String())
	relaytest.CheckFor(t, waitLimit, func() error {
		if n, _ := s.Offline.Pending("carol"); n != 0 {
			return fmt.Errorf("%d still pending", n)
		}
		return nil
	})
	b, err := os.ReadFile(storedPath(state, conn.Addr(), "carol"))
	if err != nil || strings.TrimSpace(string(b)) != strconv.FormatUint(stored[2].Seq, 10) {
		t.Fatalf("state file: %q, %v", b, err)
	}
	carol.in.Close()
	if err := carol.wait(t); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(carol.out.String(), "[sent "); n != 3 {
		t.Fatalf("%d stored messages shown, want 3:\n%s", n, carol.out.String())
	}
}

// TestOfflineMessageNotShownTwice: carol's client showed the first two
// messages, but its confirmation never reached the server (the connection
// broke), so the server sends all three again. The client shows only the
// third, and confirms all of them.
func TestOfflineMessageNotShownTwice(t *testing.T) {
	s, alice := offlineRelay(t)
	for _, text := range []string{"one", "two", "three"} {
		alice.typeLine(t, text)
	}
	relaytest.CheckFor(t, waitLimit, func() error {
		if n, _ := s.Offline.Pending("carol"); n != 3 {
			return fmt.Errorf("%d of 3 stored", n)
		}
		return nil
	})
	stored, _ := s.Offline.Read("carol", 0, 10)
	state := t.TempDir()
	conn := s.join(t, "carol", false)
	path := storedPath(state, conn.Addr(), "carol")
	os.MkdirAll(filepath.Dir(path), 0o700)
	if err := os.WriteFile(path, []byte(strconv.FormatUint(stored[1].Seq, 10)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	carol := startRun(t, conn, Options{Target: "alice", Now: utcClock, ConfigDir: state})
	waitOutput(t, carol.out, "alice: three\n")
	relaytest.CheckFor(t, waitLimit, func() error {
		if n, _ := s.Offline.Pending("carol"); n != 0 {
			return fmt.Errorf("%d still pending", n)
		}
		return nil
	})
	// A live message after the backlog shows that nothing else came.
	alice.typeLine(t, "live")
	waitOutput(t, carol.out, "alice: live\n")
	out := carol.out.String()
	if strings.Contains(out, "alice: one") || strings.Contains(out, "alice: two") {
		t.Fatalf("shown again:\n%s", out)
	}
}

// TestOneShotSendQueued: the one-shot send to an offline user succeeds
// and says the message was queued; to a user who does not exist it fails
// as before.
func TestOneShotSendQueued(t *testing.T) {
	s, _ := offlineRelay(t)
	queued, err := SendTo(t.Context(), s.join(t, "alice", false), "Carol", "later")
	if err != nil || !queued {
		t.Fatalf("SendTo an offline user = %v, %v; want queued", queued, err)
	}
	var noe *NotOnlineError
	if _, err := SendTo(t.Context(), s.join(t, "alice", false), "nobody", "hello?"); !errors.As(err, &noe) {
		t.Fatalf("SendTo nobody = %v, want *NotOnlineError", err)
	}
	if n, _ := s.Offline.Pending("carol"); n != 1 {
		t.Fatalf("%d stored for carol", n)
	}
}

// TestOneShotSendQueueFull: a full queue is a *NotDeliveredError naming
// the reason.
func TestOneShotSendQueueFull(t *testing.T) {
	s := &relayServer{relaytest.Start(t, relaytest.Options{Offline: &offline.Options{MaxPerRecipient: 1}})}
	s.join(t, "carol", true).Close()
	s.join(t, "alice", true).Close()
	s.waitOnline(t, "nobody", func(n []string) bool { return len(n) == 0 })
	if err := Send(t.Context(), s.join(t, "alice", false), "carol", "1"); err != nil {
		t.Fatal(err)
	}
	err := Send(t.Context(), s.join(t, "alice", false), "carol", "2")
	var nde *NotDeliveredError
	if !errors.As(err, &nde) || err.Error() != "message to carol not delivered: "+wire.ReasonOfflineQueueFull("carol") {
		t.Fatalf("Send to a full queue = %v", err)
	}
}
