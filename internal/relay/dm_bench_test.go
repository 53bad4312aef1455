package relay_test

import (
	"strings"
	"testing"

	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

// BenchmarkDirectMessage sends messages from one client to another through
// a real server over TLS on loopback; ns/op is per delivered message.
func BenchmarkDirectMessage(b *testing.B) {
	h := relaytest.Start(b, relaytest.Options{})
	alice, bob := h.Dial(b), h.Dial(b)
	alice.SignUp("alice")
	bob.SignUp("bob")
	line, err := wire.Format(wire.Msg{Target: "bob", Sender: "alice", Text: strings.Repeat("x", 100), Token: alice.Token})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	b.ResetTimer()
	done := make(chan error, 1)
	go func() {
		for range b.N {
			if _, err := bob.R.ReadLine(); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	batch := make([]byte, 0, 64*len(line))
	for i := 0; i < b.N; {
		batch = batch[:0]
		for k := 0; k < 64 && i < b.N; k++ {
			batch = append(batch, line...)
			i++
		}
		if _, err := alice.Conn.Write(batch); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkDirectMessagePaced sends one message at a time and waits for
// it to arrive before the next, as chat at a steady pace does: every
// message is its own read on the server. ns/op is the one-way time per
// message, clients included.
func BenchmarkDirectMessagePaced(b *testing.B) {
	h := relaytest.Start(b, relaytest.Options{})
	alice, bob := h.Dial(b), h.Dial(b)
	alice.SignUp("alice")
	bob.SignUp("bob")
	line, err := wire.Format(wire.Msg{Target: "bob", Sender: "alice", Text: strings.Repeat("x", 100), Token: alice.Token})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, err := alice.Conn.Write(line); err != nil {
			b.Fatal(err)
		}
		if _, err := bob.R.ReadLine(); err != nil {
			b.Fatal(err)
		}
	}
}
