package relay

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// While a download streams, lines wait behind it without stalling their
// producers, up to backlogFactor times the cap; after it, the queue keeps
// that room until it has drained under the cap, so the lines that waited
// cannot get their reader dropped the moment the download ends.
func TestOutboundBacklogBehindADownload(t *testing.T) {
	const max = 1000
	o := newOutbound(func() {}, max, max/4)
	line := make([]byte, 100)
	fill := func(n int) (res enqueueResult, stalled bool) {
		for range n {
			r, ch := o.enqueue(line)
			if r != queued {
				return r, stalled
			}
			stalled = stalled || ch != nil
		}
		return queued, stalled
	}
	if r, stalled := fill(3); r != queued || !stalled {
		t.Fatalf("over high water without a download: %v, stalled %v", r, stalled)
	}
	o.setDownloading(true)
	if r, stalled := fill(37); r != queued || stalled {
		t.Fatalf("behind a download: %v, stalled %v", r, stalled)
	}
	if r, _ := o.enqueue(line); r != overflow {
		t.Fatalf("past %d x the cap: %v, want overflow", backlogFactor, r)
	}
	o.setDownloading(false)
	o.sent(100) // 3900 bytes left, over the cap: the room stays
	if r, ch := o.enqueue(line); r != queued || ch != nil {
		t.Fatalf("draining after the download: %v, stalled %v", r, ch != nil)
	}
	o.sent(3100) // 900 left: back to normal
	if r, _ := o.enqueue(make([]byte, 200)); r != overflow {
		t.Fatalf("over the cap after draining: %v, want overflow", r)
	}
}

// A batch ended with endBatchNow never waits for the socket: with the peer
// not reading and the socket full it returns at once and keeps what the
// socket did not take; flushLeft then writes it, and a write outside a
// batch goes after it. The peer gets every byte, in order.
func TestBatchConnEndBatchNowNeverWaits(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	peer, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	peer.(*net.TCPConn).SetReadBuffer(4096)
	conn, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetWriteBuffer(4096)
	bc := newBatchConn(conn, 10*time.Second)
	if canWriteNow && rawConnOf(&prefixConn{Conn: &peerConn{Conn: conn}}) == nil {
		t.Fatal("no raw socket beneath the server's wrappers of a TCP connection")
	}

	var want []byte
	left := false
	start := time.Now()
	// Fill the socket: batches of 48 KiB until one leaves bytes behind.
	for i := 0; !left; i++ {
		if i == 200 {
			t.Fatal("200 batches of 48 KiB went out to a peer that reads nothing")
		}
		if !bc.tryBeginBatch() {
			t.Fatalf("batch %d: the connection was not free", i)
		}
		chunk := bytes.Repeat([]byte{byte('a' + i%26)}, 48<<10)
		bc.Write(chunk)
		want = append(want, chunk...)
		if left, err = bc.endBatchNow(); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("filling the socket took %v: endBatchNow waited", took)
	}
	if bc.tryBeginBatch() {
		t.Fatal("a new batch began while bytes were left")
	}

	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(peer)
		got <- b
	}()
	if err := bc.flushLeft(); err != nil {
		t.Fatal(err)
	}
	bc.Write([]byte("after"))
	want = append(want, "after"...)
	conn.Close()
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("peer got %d bytes, want %d, or not in order", len(b), len(want))
	}
}
