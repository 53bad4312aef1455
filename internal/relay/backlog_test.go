package relay_test

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"sslmessager/internal/relay"
	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/spool"
	"sslmessager/internal/wire"
)

// A session whose download streams may hold up to four times its cap in
// waiting lines without counting as slow (PROTOCOL.md, "a download is not
// slowness"). Asking for the next download meanwhile, as our own client
// does after each full round of files, must not turn those waiting lines
// into an overflow that drops the reader and loses the messages.
func TestSecondGetWhileLinesWaitBehindDownload(t *testing.T) {
	const maxQueue = 256 << 10
	h := relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) { c.MaxQueueBytes = maxQueue }})
	alice, bob := twoUsers(t, h)
	big := randomBytes(t, 16<<20)
	alice.Upload("bob", "big.bin", big)

	bob.Send(wire.Get{Ack: true, Token: bob.Token})
	if _, ok := nextNotCheck(bob).(wire.Begin); !ok {
		t.Fatal("want BEGIN")
	}
	hdr, ok := nextNotCheck(bob).(wire.FileHeader)
	if !ok {
		t.Fatal("want a file header")
	}
	head := make([]byte, 1<<20)
	if _, err := io.ReadFull(bob.R, head); err != nil {
		t.Fatal(err)
	}
	// bob pauses reading for a moment (well within the write timeout);
	// messages for him wait behind the download: more than the plain cap,
	// far less than four times it.
	const n = 60 // 60 lines of about 6 KB: 360 KB > 256 KiB
	text := func(i int) string { return fmt.Sprintf("%04d", i) + strings.Repeat("語", 1996) }
	for i := range n {
		alice.Msg("bob", text(i))
	}
	// A round trip: the server has queued all of alice's messages for bob.
	alice.Send(wire.Online{Token: alice.Token})
	alice.Expect(wire.OnlineList{Users: []string{"alice", "bob"}})

	// bob asks for the next round while the first still streams.
	bob.Send(wire.Get{Ack: true, Token: bob.Token})

	rest := make([]byte, hdr.Size-int64(len(head)))
	bob.Conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(bob.R, rest); err != nil {
		t.Fatal(err)
	}
	bob.Expect(wire.FileEnd{})
	bob.Expect(wire.Notice{Text: wire.NoticeSendComplete})
	for i := range n {
		q := nextNotCheck(bob)
		if want := (wire.Relay{Target: "bob", Sender: "alice", Text: text(i)}); q != want {
			t.Fatalf("message %d of %d: got %.80v; bob, who kept reading, lost the rest", i, n, q)
		}
	}
	// The second round: the file is still queued (not acknowledged yet).
	if b, ok := nextNotCheck(bob).(wire.Begin); !ok || b.Count != 1 {
		t.Fatalf("second round: got %v", b)
	}
}

// A sized upload's declared size is checked at BEGINF but held against the
// shared limits (--spool-max, the free-disk floor, the recipient's quota)
// only as its data arrives: uploads that declare much and trickle a byte
// per idle window cannot hold the spool and shut everyone else's uploads
// out.
func TestDeclaredUploadsWithoutDataHoldNothing(t *testing.T) {
	const limit = 8 << 20
	h := relaytest.Start(t, relaytest.Options{
		Spool:  spool.Options{MaxFileSize: limit / 2, MaxTotalBytes: limit},
		Config: func(c *relay.Config) { c.UploadIdleTimeout = 500 * time.Millisecond },
	})
	twoUsers(t, h)
	mallory := h.Dial(t)
	mallory.SignUp("mallory")
	mallory2 := h.Dial(t)
	mallory2.LogIn("mallory")
	for _, m := range []*relaytest.Client{mallory, mallory2} {
		m.Send(wire.Upload{Name: "x", Target: "mallory", Size: limit / 2, Token: m.Token})
		m.Expect(wire.Proceed{})
	}
	// mallory trickles one byte per 200 ms, under the 500 ms idle timeout,
	// for four idle timeouts.
	stop := time.Now().Add(2 * time.Second)
	for time.Now().Before(stop) {
		for _, m := range []*relaytest.Client{mallory, mallory2} {
			m.Raw("x")
		}
		time.Sleep(200 * time.Millisecond)
	}
	other := h.DialFrom(t, "127.0.0.2")
	other.LogIn("alice")
	other.Send(wire.Upload{Name: "note.txt", Target: "bob", Size: 5, Token: other.Token})
	if q := other.MustNext(); q != (wire.Proceed{}) {
		t.Fatalf("alice at another address, a few bytes of data in the whole spool: got %v", q)
	}
}
