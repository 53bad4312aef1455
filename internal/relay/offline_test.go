package relay_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"sslmessager/internal/offline"
	"sslmessager/internal/relay"
	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

var lineQueued = wire.NotOnline{Reason: wire.ReasonQueued}

// startOffline starts a server that stores offline messages, with alice
// online and carol signed up but gone.
func startOffline(t *testing.T, opts offline.Options) (*relaytest.Server, *relaytest.Client) {
	t.Helper()
	h := relaytest.Start(t, relaytest.Options{Offline: &opts})
	alice := h.Dial(t)
	alice.SignUp("alice")
	carol := h.Dial(t)
	carol.SignUp("carol")
	carol.Send(wire.Quit{Token: carol.Token})
	carol.Expect(wire.End{Reason: wire.ReasonEndAccepted})
	checkFor(t, "carol offline", 5*time.Second, func() bool { return !slices.Contains(h.Online(), "carol") })
	return h, alice
}

// queue sends texts from c to carol, each answered as queued.
func queue(c *relaytest.Client, texts ...string) {
	c.T.Helper()
	for _, text := range texts {
		c.Msg("carol", text)
		c.Expect(lineQueued)
	}
}

// expectQueued reads n RELAYQ lines and checks sender, texts, order and
// times.
func expectQueued(t *testing.T, c *relaytest.Client, from string, since time.Time, texts ...string) []wire.RelayQueued {
	t.Helper()
	var got []wire.RelayQueued
	for i, text := range texts {
		q, ok := c.MustNext().(wire.RelayQueued)
		if !ok {
			t.Fatalf("message %d: got %#v, want RELAYQ", i, q)
		}
		if q.Target != c.User || q.Sender != from || q.Text != text {
			t.Fatalf("message %d: %+v, want %q from %s", i, q, text, from)
		}
		if q.Sent.Before(since.Truncate(time.Second)) || q.Sent.After(time.Now()) || q.Sent.Location() != time.UTC {
			t.Fatalf("message %d: sent %v, not between %v and now", i, q.Sent, since)
		}
		if i > 0 && q.Seq <= got[i-1].Seq {
			t.Fatalf("message %d: seq %d after %d", i, q.Seq, got[i-1].Seq)
		}
		got = append(got, q)
	}
	return got
}

// liveMarker sends a live message from alice to c and expects it as the
// next line: nothing else came before it.
func liveMarker(t *testing.T, alice, c *relaytest.Client, text string) {
	t.Helper()
	alice.Msg(c.User, text)
	c.Expect(wire.Relay{Target: c.User, Sender: "alice", Text: text})
}

func TestOfflineMessagesToOurClient(t *testing.T) {
	h, alice := startOffline(t, offline.Options{})
	since := time.Now()
	queue(alice, "one", "two\nlines", "three \\ ü")

	carol := h.DialExt(t)
	carol.LogIn("carol")
	got := expectQueued(t, carol, "alice", since, "one", "two\nlines", "three \\ ü")
	liveMarker(t, alice, carol, "live after the backlog")

	// Confirming the second leaves the third.
	carol.Send(wire.AckMsg{Seq: got[1].Seq, Token: carol.Token})
	carol.Send(wire.Quit{Token: carol.Token})
	carol.Expect(wire.End{Reason: wire.ReasonEndAccepted})
	checkFor(t, "one pending", 5*time.Second, func() bool { n, _ := h.Offline.Pending("carol"); return n == 1 })

	carol = h.DialExt(t)
	carol.Send(wire.Auth{User: "CAROL", Pass: "password-carol"})
	carol.AcceptAs("carol")
	if again := expectQueued(t, carol, "alice", since, "three \\ ü"); again[0] != got[2] {
		t.Fatalf("resent %+v, was %+v", again[0], got[2])
	}
	// An ACKM beyond what was sent confirms only what was sent.
	carol.Send(wire.AckMsg{Seq: got[2].Seq + 1000, Token: carol.Token})
	checkFor(t, "none pending", 5*time.Second, func() bool { n, _ := h.Offline.Pending("carol"); return n == 0 })
	carol.Conn.Close()

	carol = h.DialExt(t)
	carol.LogIn("carol")
	liveMarker(t, alice, carol, "nothing stored is left")
}

func TestOfflineMessagesToAnOriginalClient(t *testing.T) {
	h, alice := startOffline(t, offline.Options{})
	queue(alice, "one", "two")
	long := strings.Repeat("x", wire.MaxTextRunes)
	queue(alice, long)

	carol := h.Dial(t) // no ALPN: the original client
	carol.LogIn("carol")
	var texts []string
	for range 4 {
		r, ok := carol.MustNext().(wire.Relay)
		if !ok || r.Sender != "alice" || r.Target != "carol" {
			t.Fatalf("got %#v, want RELAY from alice", r)
		}
		texts = append(texts, r.Text)
	}
	prefix := wire.OriginalSentPrefix(time.Now(), time.Now())
	// The minute may have turned since: compare the form, then the texts.
	for i, text := range texts {
		if !strings.HasPrefix(text, "[sent ") || !strings.Contains(text, " UTC ") {
			t.Fatalf("line %d: %.60q has no sent time (like %q)", i, text, prefix)
		}
	}
	cut := func(s string) string { return s[strings.Index(s, "] ")+2:] }
	if cut(texts[0]) != "one" || cut(texts[1]) != "two" {
		t.Fatalf("texts %.60q", texts[:2])
	}
	if !strings.Contains(texts[3], ", continued] ") || cut(texts[2])+cut(texts[3]) != long {
		t.Fatalf("the long text was not carried whole in two lines")
	}
	// Written to the connection counts as delivered: nothing comes again.
	checkFor(t, "none pending", 5*time.Second, func() bool { n, _ := h.Offline.Pending("carol"); return n == 0 })
	carol.Conn.Close()
	carol = h.Dial(t)
	carol.LogIn("carol")
	liveMarker(t, alice, carol, "nothing twice")

	// ACKM is ours: the original protocol does not know it.
	carol.Send(wire.AckMsg{Seq: 1, Token: carol.Token})
	carol.Expect(wire.End{Fatal: true, Reason: wire.ReasonProtocol})
}

func TestOfflineUnknownUserAndBound(t *testing.T) {
	h, alice := startOffline(t, offline.Options{MaxPerRecipient: 2})
	alice.Msg("nobody", "hello?")
	alice.Expect(wire.NotOnline{Reason: wire.ReasonNotOnline})

	queue(alice, "1", "2")
	alice.Msg("carol", "3")
	alice.Expect(wire.NotOnline{Reason: "carol's offline queue is full, message not delivered"})
	// The name as registered, whatever case the sender used.
	alice.Msg("CAROL", "3")
	alice.Expect(wire.NotOnline{Reason: "carol's offline queue is full, message not delivered"})

	carol := h.DialExt(t)
	carol.LogIn("carol")
	got := expectQueued(t, carol, "alice", time.Now().Add(-time.Minute), "1", "2")
	carol.Send(wire.AckMsg{Seq: got[1].Seq, Token: carol.Token})
	carol.Send(wire.Quit{Token: carol.Token})
	carol.Expect(wire.End{Reason: wire.ReasonEndAccepted})
	checkFor(t, "carol offline", 5*time.Second, func() bool { return !slices.Contains(h.Online(), "carol") })
	queue(alice, "room again")
}

func TestOfflineOffByDefault(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	alice, carol := h.Dial(t), h.Dial(t)
	alice.SignUp("alice")
	carol.SignUp("carol")
	carol.Conn.Close()
	checkFor(t, "carol offline", 5*time.Second, func() bool { return !slices.Contains(h.Online(), "carol") })
	alice.Msg("carol", "hello")
	alice.Expect(wire.NotOnline{Reason: wire.ReasonNotOnline})
}

// TestOfflineDroppedMidBacklog: a session that ends in the middle of its
// backlog, having confirmed part of it, gets the rest at the next log-in,
// and what it confirmed never again.
func TestOfflineDroppedMidBacklog(t *testing.T) {
	h, alice := startOffline(t, offline.Options{})
	var texts []string
	for i := range 10 {
		texts = append(texts, fmt.Sprint("m", i))
	}
	queue(alice, texts...)
	carol := h.DialExt(t)
	carol.LogIn("carol")
	got := expectQueued(t, carol, "alice", time.Now().Add(-time.Minute), texts[:4]...)
	carol.Send(wire.AckMsg{Seq: got[3].Seq, Token: carol.Token})
	checkFor(t, "6 pending", 5*time.Second, func() bool { n, _ := h.Offline.Pending("carol"); return n == 6 })
	carol.Conn.Close()

	carol = h.DialExt(t)
	carol.LogIn("carol")
	expectQueued(t, carol, "alice", time.Now().Add(-time.Minute), texts[4:]...)
	liveMarker(t, alice, carol, "no more")
}

// TestOfflineOneSessionAtATime: the first session to log in takes the
// backlog; a second session of the same user gets none of it while the
// first holds it, and the rest when the first ends without confirming.
func TestOfflineOneSessionAtATime(t *testing.T) {
	h, alice := startOffline(t, offline.Options{})
	queue(alice, "a", "b")
	first := h.DialExt(t)
	first.LogIn("carol")
	got := expectQueued(t, first, "alice", time.Now().Add(-time.Minute), "a", "b")
	first.Send(wire.AckMsg{Seq: got[0].Seq, Token: first.Token})
	checkFor(t, "1 pending", 5*time.Second, func() bool { n, _ := h.Offline.Pending("carol"); return n == 1 })

	second := h.DialExt(t)
	second.LogIn("carol")
	// Live messages reach both; the backlog only the first.
	alice.Msg("carol", "live")
	first.Expect(wire.Relay{Target: "carol", Sender: "alice", Text: "live"})
	second.Expect(wire.Relay{Target: "carol", Sender: "alice", Text: "live"})

	first.Conn.Close() // "b" was not confirmed: the second takes it over
	if again := expectQueued(t, second, "alice", time.Now().Add(-time.Minute), "b"); again[0] != got[1] {
		t.Fatalf("handed over %+v, want %+v", again[0], got[1])
	}
	second.Send(wire.AckMsg{Seq: got[1].Seq, Token: second.Token})
	checkFor(t, "none pending", 5*time.Second, func() bool { n, _ := h.Offline.Pending("carol"); return n == 0 })
}

// TestOfflineLargeBacklog: a backlog far over the session's queue cap
// (1000 texts of 4000 characters, 4 MB, against 256 KiB) arrives whole
// and in order without the reader counting as slow, and lines queued for
// it meanwhile are not held back until the end.
func TestOfflineLargeBacklog(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{
		Offline: &offline.Options{},
		Config:  func(c *relay.Config) { c.MaxQueueBytes = 256 << 10 },
	})
	alice, carol := h.Dial(t), h.Dial(t)
	alice.SignUp("alice")
	carol.SignUp("carol")
	carol.Conn.Close()
	checkFor(t, "carol offline", 5*time.Second, func() bool { return !slices.Contains(h.Online(), "carol") })
	const n = 1000
	body := strings.Repeat("y", wire.MaxTextRunes-8)
	for i := range n {
		alice.Msg("carol", fmt.Sprintf("%07d %s", i, body))
	}
	for range n {
		alice.Expect(lineQueued)
	}
	carol = h.DialExt(t)
	carol.LogIn("carol")
	alice.Msg("carol", "live during the backlog")
	next, live := 0, -1
	var last uint64
	for next < n || live < 0 {
		switch q := carol.MustNext().(type) {
		case wire.RelayQueued:
			if want := fmt.Sprintf("%07d ", next); !strings.HasPrefix(q.Text, want) || q.Seq <= last {
				t.Fatalf("stored message %d: %.12q seq %d", next, q.Text, q.Seq)
			}
			last = q.Seq
			next++
		case wire.Relay:
			live = next
		default:
			t.Fatalf("got %#v", q)
		}
	}
	if live >= n {
		t.Errorf("the live message waited for the whole backlog")
	}
	carol.Send(wire.AckMsg{Seq: last, Token: carol.Token})
	checkFor(t, "none pending", 10*time.Second, func() bool { n, _ := h.Offline.Pending("carol"); return n == 0 })
	if h.Offline.Bytes() != 0 {
		t.Errorf("%d bytes left in the store", h.Offline.Bytes())
	}
}
