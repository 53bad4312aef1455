package relay_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strings"
	"testing"
	"time"

	"sslmessager/internal/relay"
	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

// streamReader reads one streamed file from c: after STREAMF it collects
// chunks and hands every other line to other.
type streamReader struct {
	c     *relaytest.Client
	h     wire.StreamHeader
	data  []byte
	other []wire.Query
}

// readHeader expects STREAMF next (lines before it are kept in other).
func readStreamHeader(t *testing.T, c *relaytest.Client) *streamReader {
	t.Helper()
	s := &streamReader{c: c}
	for {
		q := c.MustNext()
		if h, ok := q.(wire.StreamHeader); ok {
			s.h = h
			return s
		}
		s.other = append(s.other, q)
	}
}

// until reads chunks until it holds n bytes or the file ends; it returns
// the line that ended the file (StreamEnd, StreamAbort), or nil.
func (s *streamReader) until(t *testing.T, n int) wire.Query {
	t.Helper()
	for len(s.data) < n {
		if q := s.step(t); q != nil {
			return q
		}
	}
	return nil
}

// step reads one line (and a chunk's bytes); it returns the line that
// ended the file, or nil.
func (s *streamReader) step(t *testing.T) wire.Query {
	t.Helper()
	{
		q := s.c.MustNext()
		switch q := q.(type) {
		case wire.Chunk:
			if len(s.data)+q.Size > int(s.h.Size) {
				t.Fatalf("chunk of %d past the size %d", q.Size, s.h.Size)
			}
			b := make([]byte, q.Size)
			s.c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(s.c.R, b); err != nil {
				t.Fatal(err)
			}
			s.data = append(s.data, b...)
		case wire.StreamEnd, wire.StreamAbort:
			return q
		default:
			s.other = append(s.other, q)
		}
	}
	return nil
}

// end reads the rest of the file and its end line.
func (s *streamReader) end(t *testing.T) wire.Query {
	t.Helper()
	if q := s.until(t, int(s.h.Size)+1); q != nil {
		return q
	}
	t.Fatal("no end line")
	return nil
}

func hexSHA(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// beginUpload sends BEGINF with the size and the first part of data.
func beginUpload(t *testing.T, c *relaytest.Client, to string, size int, first []byte) {
	t.Helper()
	c.Send(wire.Upload{Name: "f.bin", Target: to, Size: int64(size), Token: c.Token})
	c.Expect(wire.Proceed{})
	c.Conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Conn.Write(first); err != nil {
		t.Fatal(err)
	}
}

// A recipient that asked for pushes gets an upload's bytes while it still
// arrives (half the file before the sender sends the rest), lines queued
// for it between chunks, then the SHA-256 and id; its ACKF empties the
// queue.
func TestStreamPushWhileUploading(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	alice, carol := h.Dial(t), h.Dial(t)
	alice.SignUp("alice")
	carol.SignUp("carol")
	bob := h.DialExt(t)
	bob.SignUp("bob")
	bob.Send(wire.Push{Token: bob.Token})
	bob.Send(wire.Ping{Nonce: "1", Token: bob.Token})
	bob.Expect(wire.Pong{Nonce: "1"}) // PUSH is in effect

	data := randomBytes(t, 3<<20+17)
	half := len(data) / 2
	beginUpload(t, alice, "bob", len(data), data[:half])
	s := readStreamHeader(t, bob)
	if s.h != (wire.StreamHeader{Name: "f.bin", Size: int64(len(data)), Sender: "alice"}) {
		t.Fatalf("header %+v", s.h)
	}
	if q := s.until(t, half); q != nil || !bytes.Equal(s.data, data[:half]) {
		t.Fatalf("first half: end %v, %d bytes", q, len(s.data))
	}
	// The sender waits; a message to bob reaches him inside the stream.
	carol.Msg("bob", "meanwhile")
	for len(s.other) == 0 {
		if q := s.step(t); q != nil {
			t.Fatalf("stream ended early: %v", q)
		}
	}
	if r, ok := s.other[0].(wire.Relay); !ok || r.Text != "meanwhile" {
		t.Fatalf("between chunks: %v", s.other)
	}
	alice.Conn.Write(data[half:])
	alice.Send(wire.UploadEnd{Token: alice.Token})
	alice.Expect(wire.Notice{Text: wire.NoticeUploadComplete})
	end, ok := s.end(t).(wire.StreamEnd)
	if !ok || !bytes.Equal(s.data, data) || end.SHA256 != hexSHA(data) {
		t.Fatalf("end %v, %d bytes, equal %v", end, len(s.data), bytes.Equal(s.data, data))
	}
	if n := h.Spool.Queued("bob"); n != 1 {
		t.Fatalf("%d queued before ACKF, want 1", n)
	}
	bob.Send(wire.AckFile{ID: end.ID, Token: bob.Token})
	checkFor(t, "the queue to empty", 5*time.Second, func() bool { return h.Spool.Queued("bob") == 0 })
}

// An upload that breaks off mid-way ends the stream with STREAMABORT and
// leaves nothing queued; the recipient's session goes on.
func TestStreamUploadBreaksOff(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	alice := h.Dial(t)
	alice.SignUp("alice")
	bob := h.DialExt(t)
	bob.SignUp("bob")
	bob.Send(wire.Push{Token: bob.Token})
	bob.Send(wire.Ping{Nonce: "1", Token: bob.Token})
	bob.Expect(wire.Pong{Nonce: "1"})

	data := randomBytes(t, 1<<20)
	beginUpload(t, alice, "bob", len(data), data[:len(data)/2])
	s := readStreamHeader(t, bob)
	if q := s.until(t, len(data)/2); q != nil {
		t.Fatalf("ended early: %v", q)
	}
	alice.Conn.Close()
	if q, ok := s.end(t).(wire.StreamAbort); !ok || q.Reason != wire.ReasonUploadBrokeOff {
		t.Fatalf("got %v, want STREAMABORT", q)
	}
	checkFor(t, "the upload's place to be released", 5*time.Second, func() bool { return h.Spool.Queued("bob") == 0 })
	bob.Send(wire.Ping{Nonce: "2", Token: bob.Token})
	bob.Expect(wire.Pong{Nonce: "2"})
}

// GETLIVE answers with the queued files and then the uploads under way,
// all counted in BEGIN; a session that did not ask for pushes gets none.
func TestStreamGetLive(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	alice := h.Dial(t)
	alice.SignUp("alice")
	bob := h.DialExt(t)
	bob.SignUp("bob")
	queued := []byte("queued file")
	alice.Upload("bob", "q.txt", queued)

	data := randomBytes(t, 600<<10)
	beginUpload(t, alice, "bob", len(data), data[:100<<10])
	checkFor(t, "the upload to start", 5*time.Second, func() bool { return h.Spool.Queued("bob") == 2 })
	bob.Send(wire.GetLive{Token: bob.Token})
	bob.Expect(wire.Begin{Count: 2})
	hd, ok := bob.MustNext().(wire.FileHeader)
	if !ok || hd.Name != "q.txt" {
		t.Fatalf("got %v, want the queued file", hd)
	}
	b := make([]byte, hd.Size)
	io.ReadFull(bob.R, b)
	bob.Expect(wire.FileEnd{})
	s := readStreamHeader(t, bob)
	if q := s.until(t, 100<<10); q != nil {
		t.Fatalf("ended early: %v", q)
	}
	alice.Conn.Write(data[100<<10:])
	alice.Send(wire.UploadEnd{Token: alice.Token})
	if end, ok := s.end(t).(wire.StreamEnd); !ok || end.SHA256 != hexSHA(data) || !bytes.Equal(s.data, data) {
		t.Fatalf("end %v", end)
	}
	bob.Expect(wire.Notice{Text: wire.NoticeSendComplete})
}

// The original clients never see a streamed file: PUSH and GETLIVE are
// unknown to them, and CMD <get> during an upload sends only what is
// queued, as before.
func TestStreamNotForOriginalClients(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	alice, bob := twoUsers(t, h)
	data := randomBytes(t, 100<<10)
	beginUpload(t, alice, "bob", len(data), data[:50<<10])
	bob.Send(wire.Get{Token: bob.Token})
	bob.Expect(wire.Begin{Count: 0})
	bob.Expect(wire.Notice{Text: wire.NoticeSendComplete})
	alice.Conn.Write(data[50<<10:])
	alice.Send(wire.UploadEnd{Token: alice.Token})
	alice.Expect(wire.Notice{Text: wire.NoticeUploadComplete})
	if got := bob.Download(false); len(got) != 1 || !bytes.Equal(got[0].Data, data) {
		t.Fatalf("download after the upload: %d files", len(got))
	}
	for _, q := range []wire.Query{wire.Push{}, wire.GetLive{}} {
		c := h.Dial(t)
		c.LogIn("bob")
		if _, ok := q.(wire.Push); ok {
			c.Send(wire.Push{Token: c.Token})
		} else {
			c.Send(wire.GetLive{Token: c.Token})
		}
		c.Expect(wire.End{Fatal: true, Reason: wire.ReasonProtocol})
	}
}

// An upload that stalls is no longer streamed (STREAMABORT, so that the
// recipient's other files are not held up), but it still completes into
// the queue and is downloaded as any file.
func TestStreamGivesUpOnStalledUpload(t *testing.T) {
	t.Cleanup(relay.SetStreamWindow(300 * time.Millisecond)) // restored after the server stops
	h := relaytest.Start(t, relaytest.Options{})
	alice := h.Dial(t)
	alice.SignUp("alice")
	bob := h.DialExt(t)
	bob.SignUp("bob")
	bob.Send(wire.Push{Token: bob.Token})
	bob.Send(wire.Ping{Nonce: "1", Token: bob.Token})
	bob.Expect(wire.Pong{Nonce: "1"})

	data := randomBytes(t, 200<<10)
	beginUpload(t, alice, "bob", len(data), data[:1000])
	s := readStreamHeader(t, bob)
	q, ok := s.end(t).(wire.StreamAbort)
	if !ok || !strings.Contains(q.Reason, "too slow") || len(s.data) != 1000 {
		t.Fatalf("got %v after %d bytes, want STREAMABORT for a slow upload", q, len(s.data))
	}
	alice.Conn.Write(data[1000:])
	alice.Send(wire.UploadEnd{Token: alice.Token})
	alice.Expect(wire.Notice{Text: wire.NoticeUploadComplete})
	if got := bob.Download(true); len(got) != 1 || !bytes.Equal(got[0].Data, data) {
		t.Fatalf("download: %d files", len(got))
	}
}

// An upload under way to an account that is deleted reaches nobody: not
// as a stream to whoever signs up with the name next (GETLIVE), and not
// as a queued file once it completes, whether its size was given or not;
// its sender is told it failed.
func TestStreamNotForNextHolderOfDeletedName(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	alice := h.Dial(t)
	alice.SignUp("alice")
	bob := h.DialExt(t)
	bob.SignUp("bob")

	data := randomBytes(t, 600<<10)
	beginUpload(t, alice, "bob", len(data), data[:100<<10])
	// And one of unknown size, as the original client sends it.
	carol := h.Dial(t)
	carol.SignUp("carol")
	carol.Raw("BEGINF old.txt bob " + carol.Token + " \r\n")
	carol.Expect(wire.Proceed{})
	carol.Raw("the first part ")
	checkFor(t, "the uploads to start", 5*time.Second, func() bool { return h.Spool.Queued("bob") == 2 })
	bob.Send(wire.DeleteAccount{Pass: "password-bob", Token: bob.Token})
	bob.Expect(wire.End{Reason: wire.ReasonAccountDeleted})

	next := h.DialExt(t)
	next.SignUp("bob")
	next.Send(wire.GetLive{Token: next.Token})
	next.Expect(wire.Begin{Count: 0})
	next.Expect(wire.Notice{Text: wire.NoticeSendComplete})

	alice.Conn.Write(data[100<<10:])
	alice.Send(wire.UploadEnd{Token: alice.Token})
	alice.Expect(wire.Notice{Text: wire.NoticeProblem})
	carol.Raw("and the rest\r\nENDF " + carol.Token + " \r\n")
	carol.Expect(wire.Notice{Text: wire.NoticeProblem})
	if got := next.Download(true); len(got) != 0 {
		t.Fatalf("the new bob got %d files meant for the deleted one", len(got))
	}
}

// Lines for a session reach it between the chunks of a stream also when
// a file job waits behind that stream (a second upload to it, pushed; its
// own GETLIVE): a trickling upload must not hold a conversation back.
func TestStreamLinesNotHeldBehindWaitingFiles(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	alice, carol, dave := h.Dial(t), h.Dial(t), h.Dial(t)
	alice.SignUp("alice")
	carol.SignUp("carol")
	dave.SignUp("dave")
	bob := h.DialExt(t)
	bob.SignUp("bob")
	bob.Send(wire.Push{Token: bob.Token})
	bob.Send(wire.Ping{Nonce: "1", Token: bob.Token})
	bob.Expect(wire.Pong{Nonce: "1"})

	data := randomBytes(t, 600<<10)
	beginUpload(t, alice, "bob", len(data), data[:100<<10])
	s := readStreamHeader(t, bob)
	if q := s.until(t, 100<<10); q != nil {
		t.Fatalf("ended early: %v", q)
	}
	// A second upload to bob: its push waits for the first stream.
	beginUpload(t, carol, "bob", 2000, make([]byte, 1000))
	checkFor(t, "the second upload to start", 5*time.Second, func() bool { return h.Spool.Queued("bob") == 2 })

	waitFor := func(text string) {
		t.Helper()
		for {
			for _, q := range s.other {
				if r, ok := q.(wire.Relay); ok && r.Text == text {
					return
				}
			}
			if q := s.step(t); q != nil {
				t.Fatalf("the stream ended (%v) before %q arrived", q, text)
			}
		}
	}
	dave.Msg("bob", "behind a push")
	waitFor("behind a push")
	bob.Send(wire.GetLive{Token: bob.Token})
	bob.Send(wire.Ping{Nonce: "2", Token: bob.Token})
	dave.Msg("bob", "behind a download")
	waitFor("behind a download")

	alice.Conn.Write(data[100<<10:])
	alice.Send(wire.UploadEnd{Token: alice.Token})
	if end, ok := s.end(t).(wire.StreamEnd); !ok || !bytes.Equal(s.data, data) {
		t.Fatalf("end %v after %d bytes", end, len(s.data))
	}
	alice.Expect(wire.Notice{Text: wire.NoticeUploadComplete})
}

// A session that stops streaming an upload before its end (it ended)
// gives it up: another session of the recipient gets the rest of the
// upload streamed with GETLIVE, not only once it is complete.
func TestStreamOfEndedSessionGoesToAnother(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	alice := h.Dial(t)
	alice.SignUp("alice")
	phone := h.DialExt(t)
	phone.SignUp("bob")
	phone.Send(wire.Push{Token: phone.Token})
	phone.Send(wire.Ping{Nonce: "1", Token: phone.Token})
	phone.Expect(wire.Pong{Nonce: "1"})
	desk := h.DialExt(t)
	desk.LogIn("bob")

	data := randomBytes(t, 600<<10)
	beginUpload(t, alice, "bob", len(data), data[:100<<10])
	s := readStreamHeader(t, phone)
	if q := s.until(t, 100<<10); q != nil {
		t.Fatalf("ended early: %v", q)
	}
	conns := h.Conns()
	phone.Conn.Close()
	checkFor(t, "the phone's session to end", 5*time.Second, func() bool { return h.Conns() == conns-1 })

	desk.Send(wire.GetLive{Token: desk.Token})
	desk.Expect(wire.Begin{Count: 1})
	s = readStreamHeader(t, desk)
	alice.Conn.Write(data[100<<10:])
	alice.Send(wire.UploadEnd{Token: alice.Token})
	if end, ok := s.end(t).(wire.StreamEnd); !ok || !bytes.Equal(s.data, data) {
		t.Fatalf("end %v after %d bytes", end, len(s.data))
	}
	desk.Expect(wire.Notice{Text: wire.NoticeSendComplete})
}
