package main

import (
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"sslmessager/internal/pki"
	"sslmessager/internal/wire"
)

// floorForTest runs a floor relay in-process on 127.0.0.1:0 with fresh
// certificates; it is closed, and its goroutines waited for, at cleanup.
type floorForTest struct {
	addr, ca, cert, key string
}

func startFloor(t *testing.T) *floorForTest {
	t.Helper()
	dir := t.TempDir()
	if _, err := pki.Generate(pki.GenerateOptions{Dir: dir, Hosts: []string{"127.0.0.1", "localhost"}}); err != nil {
		t.Fatal(err)
	}
	ft := &floorForTest{ca: filepath.Join(dir, pki.CAFile), cert: filepath.Join(dir, pki.ServerCertFile),
		key: filepath.Join(dir, pki.ServerKeyFile)}
	tc, err := pki.ServerTLSConfig(ft.cert, ft.key)
	if err != nil {
		t.Fatal(err)
	}
	f, err := listenFloor("127.0.0.1:0", tc)
	if err != nil {
		t.Fatal(err)
	}
	ft.addr = f.Addr().String()
	served := make(chan error, 1)
	go func() { served <- f.Serve() }()
	t.Cleanup(func() {
		f.Close()
		f.Close() // twice is harmless
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return within 10 s of Close")
		}
	})
	return ft
}

func (ft *floorForTest) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runApp(t, append([]string{"--server", ft.addr, "--ca", ft.ca}, args...)...)
}

// The floor relay carries loadgen's dm (flooded and paced) and group
// scenarios: every message arrives once and in order, and each client's
// quit is answered (the scenarios report a dropped or unanswered session).
func TestFloorRelaysScenarios(t *testing.T) {
	ft := startFloor(t)
	before := runtime.NumGoroutine()
	for _, c := range []struct {
		args []string
		want int64
	}{
		{[]string{"dm", "--clients", "6", "--messages", "50", "--size", "64"}, 6 * 50},
		{[]string{"dm", "--clients", "4", "--messages", "20", "--rate", "400"}, 4 * 20},
		{[]string{"group", "--members", "5", "--senders", "2", "--messages", "20", "--size", "50"}, 2 * 20 * (5 - 1)},
		{[]string{"group", "--members", "4", "--senders", "3", "--messages", "10", "--rate", "200"}, 3 * 10 * (4 - 1)},
	} {
		t0 := time.Now()
		out, err := ft.run(t, append([]string{"--json"}, c.args...)...)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		checkClean(t, oneResult(t, out).Msg, c.want)
		// quitAll waits quitWait for END <end accepted>; answered, the
		// run ends well before that.
		if took := time.Since(t0); took > quitWait {
			t.Errorf("%v took %s: quits not answered?", c.args, took)
		}
	}
	waitGoroutines(t, before)
}

// Line by line: log-in, a DM to oneself, a DM to nobody, group mode on and
// off, quit; and a query the floor does not serve ends the connection.
func TestFloorLines(t *testing.T) {
	ft := startFloor(t)
	tc, err := pki.ClientTLSConfig(ft.ca, ft.addr)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{addr: ft.addr, tls: tc}
	ctx := context.Background()
	expect := func(c *client, want wire.Query) {
		t.Helper()
		c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := c.next()
		if err != nil {
			t.Fatalf("%s: want %T, got %v", c.name, want, err)
		}
		gb, _ := wire.Format(got)
		wb, _ := wire.Format(want)
		if string(gb) != string(wb) {
			t.Fatalf("%s: got %q, want %q", c.name, gb, wb)
		}
	}
	alice, err := dial(ctx, e, "alice", signUpOrLogIn, smallReadBuffer, smallWriteBuf)
	if err != nil {
		t.Fatal(err)
	}
	defer alice.conn.Close()
	bob, err := dial(ctx, e, "bob", logInOnly, smallReadBuffer, smallWriteBuf)
	if err != nil {
		t.Fatal(err)
	}
	defer bob.conn.Close()
	if alice.token == "" || alice.token == bob.token {
		t.Errorf("tokens %q and %q", alice.token, bob.token)
	}

	alice.write(wire.Msg{Target: "bob", Sender: "alice", Text: "hi\tbob", Token: alice.token}, true)
	expect(bob, wire.Relay{Target: "bob", Sender: "alice", Text: "hi\tbob"})
	alice.write(wire.Msg{Target: "carol", Sender: "alice", Text: "hi", Token: alice.token}, true)
	expect(alice, wire.NotOnline{Reason: wire.ReasonNotOnline})

	// Group: bob joins, alice (not a member) sends: bob gets it. Bob sends:
	// alice is not in group mode and gets nothing; then the sender is
	// never its own recipient. A DM after each shows the order.
	bob.write(wire.Group{Token: bob.token}, true)
	bob.write(wire.Msg{Target: "carol", Sender: "bob", Text: "barrier", Token: bob.token}, true)
	expect(bob, wire.NotOnline{Reason: wire.ReasonNotOnline})
	alice.write(wire.GroupMsg{Sender: "alice", Text: "to all", Token: alice.token}, true)
	expect(bob, wire.RelayGroup{Sender: "alice", Text: "to all"})
	bob.write(wire.GroupMsg{Sender: "bob", Text: "from bob", Token: bob.token}, true)
	bob.write(wire.Msg{Target: "alice", Sender: "bob", Text: "after", Token: bob.token}, true)
	expect(alice, wire.Relay{Target: "alice", Sender: "bob", Text: "after"})
	alice.write(wire.Group{Token: alice.token}, true)
	alice.write(wire.Msg{Target: "carol", Sender: "alice", Text: "barrier", Token: alice.token}, true)
	expect(alice, wire.NotOnline{Reason: wire.ReasonNotOnline})
	bob.write(wire.GroupMsg{Sender: "bob", Text: "now", Token: bob.token}, true)
	expect(alice, wire.RelayGroup{Sender: "bob", Text: "now"})
	bob.write(wire.Msg{Target: "bob", Sender: "bob", Text: "self", Token: bob.token}, true)
	expect(bob, wire.Relay{Target: "bob", Sender: "bob", Text: "self"}) // not the group line first
	// Bob leaves the group: alice's group line reaches nobody.
	bob.write(wire.Group{Token: bob.token}, true)
	bob.write(wire.Msg{Target: "carol", Sender: "bob", Text: "barrier", Token: bob.token}, true)
	expect(bob, wire.NotOnline{Reason: wire.ReasonNotOnline})
	alice.write(wire.GroupMsg{Sender: "alice", Text: "alone", Token: alice.token}, true)
	alice.write(wire.Msg{Target: "bob", Sender: "alice", Text: "dm", Token: alice.token}, true)
	expect(bob, wire.Relay{Target: "bob", Sender: "alice", Text: "dm"})

	alice.write(wire.Online{Token: alice.token}, true)
	expect(alice, wire.End{Fatal: true, Reason: wire.ReasonProtocol})
	bob.write(wire.Quit{Token: bob.token}, true)
	expect(bob, wire.End{Reason: wire.ReasonEndAccepted})
	bob.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := bob.next(); err == nil {
		t.Error("bob's connection still open after END <end accepted>")
	}
}

// The floor relay listens on loopback only: anything else is refused
// before it listens.
func TestFloorLoopbackOnly(t *testing.T) {
	ft := startFloor(t)
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "[::]:0", "example.com:0"} {
		_, err := runApp(t, "floor", "--cert", ft.cert, "--key", ft.key, "--listen", addr)
		if err == nil || !strings.Contains(err.Error(), "loopback") || !strings.Contains(err.Error(), "never a server to run") {
			t.Errorf("--listen %s: %v, want a refusal naming loopback", addr, err)
		}
		if _, err := listenFloor(addr, nil); err == nil {
			t.Errorf("listenFloor(%s) accepted it", addr)
		}
	}
	if _, err := runApp(t, "floor", "--listen", "127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "--cert") {
		t.Errorf("no certificate: %v", err)
	}
	out, _ := runApp(t, "floor", "--help")
	if !strings.Contains(out, "LOWER BOUND FOR MEASUREMENT, NEVER A SERVER TO RUN") {
		t.Errorf("floor --help does not say it is a lower bound:\n%s", out)
	}
}
