package main

import (
	"crypto/tls"
	"path/filepath"
	"testing"
	"time"

	"sslmessager/internal/pki"
	"sslmessager/internal/wire"
)

// dialExt is dial offering ALPN sslm/2, as our client does.
func dialExt(t *testing.T, st *serverState, addr string) *client {
	t.Helper()
	cfg, err := pki.ClientTLSConfig(filepath.Join(st.certs, pki.CAFile), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cfg.NextProtos = []string{wire.ALPN}
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	if p := conn.ConnectionState().NegotiatedProtocol; p != wire.ALPN {
		t.Fatalf("ALPN %q negotiated", p)
	}
	conn.SetDeadline(time.Now().Add(waitLimit))
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, conn: conn, r: wire.NewReader(conn, 64<<10)}
}

// TestOfflineMessagesSurviveKill queues 3 messages for each of two offline
// users, SIGKILLs the server as soon as the last was answered as queued,
// restarts it and logs both in: our client (sslm/2) gets the 3 as RELAYQ,
// in order, with the times they were sent, and confirms them; an original
// client gets them as RELAY with the time in front of the text. After
// another SIGKILL and restart, neither gets any of them again.
func TestOfflineMessagesSurviveKill(t *testing.T) {
	st := newState(t)
	offDir := filepath.Join(st.dir, "offline")
	srv := st.start(t, "--offline", offDir)
	alice := dial(t, st, srv.addr)
	alice.login(wire.SignUp{User: "alice", Pass: "alice-password"})
	for _, u := range []string{"carol", "dave"} {
		c := dial(t, st, srv.addr)
		c.login(wire.SignUp{User: u, Pass: u + "-password"})
		c.send(wire.Quit{Token: c.token})
		if q := c.next(); q != (wire.End{Reason: wire.ReasonEndAccepted}) {
			t.Fatalf("quit answered with %#v", q)
		}
	}
	since := time.Now().Truncate(time.Second)
	texts := []string{"first", "second\nof two lines", "third ✓"}
	for _, to := range []string{"carol", "dave"} {
		for _, text := range texts {
			alice.send(wire.Msg{Target: to, Sender: "alice", Text: text, Token: alice.token})
			if q := alice.next(); q != (wire.NotOnline{Reason: wire.ReasonQueued}) {
				t.Fatalf("MSG to %s answered with %#v", to, q)
			}
		}
	}
	srv.kill(t)

	srv = st.start(t, "--offline", offDir)
	carol := dialExt(t, st, srv.addr)
	carol.login(wire.Auth{User: "carol", Pass: "carol-password"})
	var last uint64
	for i, text := range texts {
		q, ok := carol.next().(wire.RelayQueued)
		if !ok || q.Text != text || q.Sender != "alice" || q.Target != "carol" || q.Seq <= last {
			t.Fatalf("carol's message %d: %#v", i, q)
		}
		if q.Sent.Before(since) || q.Sent.After(time.Now()) {
			t.Fatalf("message %d sent at %v, before the test began (%v) or in the future", i, q.Sent, since)
		}
		last = q.Seq
	}
	carol.send(wire.AckMsg{Seq: last, Token: carol.token})

	dave := dial(t, st, srv.addr) // the original client: no ALPN
	dave.login(wire.Auth{User: "dave", Pass: "dave-password"})
	for i, text := range texts {
		q, ok := dave.next().(wire.Relay)
		// Sent between since and now: one of the minutes in between.
		found := false
		for at := since; !at.After(time.Now()); at = at.Add(time.Minute) {
			found = found || q.Text == wire.OriginalSentPrefix(at, time.Now())+text
		}
		if !ok || q.Sender != "alice" || q.Target != "dave" || !found && q.Text != wire.OriginalSentPrefix(time.Now(), time.Now())+text {
			t.Fatalf("dave's message %d: %#v", i, q)
		}
	}
	// Our client's ACKM is durable once the server has read it; a CMD
	// <online> answered after it proves it was read.
	carol.send(wire.Online{Token: carol.token})
	if _, ok := carol.next().(wire.OnlineList); !ok {
		t.Fatal("no online list")
	}
	// The original client's are delivered once written; the server has
	// removed them once its log-in has seen them all. Ask dave's session
	// the same way, then kill.
	dave.send(wire.Online{Token: dave.token})
	if _, ok := dave.next().(wire.OnlineList); !ok {
		t.Fatal("no online list")
	}
	srv.kill(t)

	srv = st.start(t, "--offline", offDir)
	alice = dial(t, st, srv.addr)
	alice.login(wire.Auth{User: "alice", Pass: "alice-password"})
	for _, c := range []*client{dialExt(t, st, srv.addr), dial(t, st, srv.addr)} {
		u := "carol"
		if c.conn.ConnectionState().NegotiatedProtocol == "" {
			u = "dave"
		}
		c.login(wire.Auth{User: u, Pass: u + "-password"})
		alice.send(wire.Msg{Target: u, Sender: "alice", Text: "live", Token: alice.token})
		if q := c.next(); q != (wire.Relay{Target: u, Sender: "alice", Text: "live"}) {
			t.Fatalf("%s got %#v after the restart, want only the live message", u, q)
		}
	}
}
