package relay_test

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"sslmessager/internal/relay"
	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

// slowDownload runs CMD <get ack> and reads the files in small pieces with
// a pause between them, as a slow link would. Lines that arrive between
// two files, and after the last one, are collected. It returns the files
// and every other line up to CMD <file send complete>.
func slowDownload(c *relaytest.Client, pause time.Duration) (files []relaytest.File, lines []wire.Query) {
	c.T.Helper()
	c.Send(wire.Get{Ack: true, Token: c.Token})
	begin, ok := nextNotCheck(c).(wire.Begin)
	if !ok {
		c.T.Fatal("want BEGIN")
	}
	for len(files) < begin.Count {
		q := nextNotCheck(c)
		h, ok := q.(wire.FileHeader)
		if !ok {
			lines = append(lines, q)
			continue
		}
		data := make([]byte, h.Size)
		for off := 0; off < len(data); {
			c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := io.ReadFull(c.R, data[off:min(off+256<<10, len(data))])
			if err != nil {
				c.T.Fatalf("file data after %d bytes: %v", off, err)
			}
			off += n
			time.Sleep(pause)
		}
		if q := nextNotCheck(c); q != (wire.FileEnd{}) {
			c.T.Fatalf("after the data: %#v", q)
		}
		files = append(files, relaytest.File{Header: h, Data: data})
	}
	for {
		q := nextNotCheck(c)
		if q == (wire.Notice{Text: wire.NoticeSendComplete}) {
			break
		}
		if _, ok := q.(wire.FileHeader); ok {
			c.T.Fatal("a file after the announced count")
		}
		lines = append(lines, q)
	}
	for _, f := range files {
		c.Send(wire.AckFile{ID: f.Header.ID, Token: c.Token})
	}
	return files, lines
}

func nextNotCheck(c *relaytest.Client) wire.Query {
	c.T.Helper()
	c.Conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	q, err := c.Next()
	if err != nil {
		c.T.Fatal(err)
	}
	return q
}

// A user reading a 32 MiB download slowly while 500 messages of 2000
// characters (6000 bytes each, over 3 MB in all) arrive for them: the
// file arrives byte-exact, every message arrives once and in order,
// nobody is dropped, and the messages go out between the two files.
func TestSlowDownloadWithMessagesLosesNothing(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	alice, bob := twoUsers(t, h)
	carol := h.Dial(t)
	carol.SignUp("carol")
	big := randomBytes(t, 32<<20)
	alice.Upload("bob", "big.bin", big)
	alice.Upload("bob", "small.txt", []byte("second file"))

	const n = 500
	text := func(i int) string { return fmt.Sprintf("%04d", i) + strings.Repeat("日", 1996) }
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(50 * time.Millisecond) // the download is under way
		for i := range n {
			carol.Msg("bob", text(i))
		}
	}()
	files, lines := slowDownload(bob, 5*time.Millisecond)
	wg.Wait()
	if len(files) != 2 || !bytes.Equal(files[0].Data, big) || string(files[1].Data) != "second file" {
		t.Fatalf("files: %d, first byte-exact %v", len(files), len(files) > 0 && bytes.Equal(files[0].Data, big))
	}
	between := len(lines)
	for len(lines) < n {
		lines = append(lines, nextNotCheck(bob))
	}
	for i, q := range lines {
		want := wire.Relay{Target: "bob", Sender: "carol", Text: text(i)}
		if q != want {
			t.Fatalf("line %d: got %.60v", i, q)
		}
	}
	if between == 0 {
		t.Error("no message went out between the two files")
	}
	t.Logf("%d of %d messages arrived between the files or before CMD <file send complete>", between, n)
	// Everyone is still online and nothing is left in bob's queue.
	bob.Send(wire.Online{Token: bob.Token})
	bob.Expect(wire.OnlineList{Users: []string{"alice", "bob", "carol"}})
	if left, _ := h.Spool.List("bob", 0); len(left) != 0 {
		t.Fatalf("%d files left queued", len(left))
	}
}

// One member's download must not slow group chat for the others: while
// dave sits in the middle of a 32 MiB download without reading, erin's
// group messages (more than the high-water mark in all) reach frank at
// once; erin is never paused for dave.
func TestGroupSenderNotSlowedByDownloadingMember(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) { c.StallWait = 10 * time.Second }})
	alice := h.Dial(t)
	alice.SignUp("alice")
	var dave, erin, frank *relaytest.Client
	for _, p := range []struct {
		c    **relaytest.Client
		name string
	}{{&dave, "dave"}, {&erin, "erin"}, {&frank, "frank"}} {
		*p.c = h.Dial(t)
		(*p.c).SignUp(p.name)
	}
	dave.Send(wire.Group{Token: dave.Token})
	frank.Send(wire.Group{Token: frank.Token})
	checkFor(t, "two group members", 5*time.Second, func() bool { return h.Stats().GroupMembers == 2 })
	big := randomBytes(t, 32<<20)
	alice.Upload("dave", "big.bin", big)

	dave.Send(wire.Get{Ack: true, Token: dave.Token})
	if _, ok := nextNotCheck(dave).(wire.Begin); !ok {
		t.Fatal("want BEGIN")
	}
	hdr, ok := nextNotCheck(dave).(wire.FileHeader)
	if !ok {
		t.Fatal("want a file header")
	}
	head := make([]byte, 1<<20)
	if _, err := io.ReadFull(dave.R, head); err != nil {
		t.Fatal(err)
	}
	// dave now reads nothing; the server's writer is stuck in his file.
	const n = 400 // 400 lines of about 6 KB: 2.4 MB, over the 1 MiB high-water mark
	text := func(i int) string { return fmt.Sprintf("%04d", i) + strings.Repeat("語", 1996) }
	start := time.Now()
	for i := range n {
		erin.Send(wire.GroupMsg{Sender: "erin", Text: text(i), Token: erin.Token})
	}
	for i := range n {
		frank.Expect(wire.RelayGroup{Sender: "erin", Text: text(i)})
	}
	took := time.Since(start)
	// With a 10 s stall per paused query, one pause would show.
	if took > 5*time.Second {
		t.Fatalf("group delivery to frank took %v while dave downloaded", took)
	}
	t.Logf("%d group messages reached frank in %v while dave's download stood still", n, took)

	// dave resumes and gets the rest of his file and then every message.
	rest := make([]byte, hdr.Size-int64(len(head)))
	dave.Conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(dave.R, rest); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(head, rest...), big) {
		t.Fatal("file not byte-exact")
	}
	if q := nextNotCheck(dave); q != (wire.FileEnd{}) {
		t.Fatalf("after the data: %#v", q)
	}
	// A one-file download: the lines follow its end.
	dave.Expect(wire.Notice{Text: wire.NoticeSendComplete})
	for i := range n {
		dave.Expect(wire.RelayGroup{Sender: "erin", Text: text(i)})
	}
}

// A session ended during its download (here: evicted at the session cap)
// stops after the file under way and gets its END reason; the files it did
// not confirm stay queued for the next session.
func TestDownloadStopsWhenTheSessionEnds(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) { c.MaxSessionsPerUser = 1 }})
	alice, bob := twoUsers(t, h)
	for i := range 3 {
		alice.Upload("bob", fmt.Sprintf("f%d.bin", i), randomBytes(t, 8<<20))
	}
	bob.Send(wire.Get{Ack: true, Token: bob.Token})
	if _, ok := nextNotCheck(bob).(wire.Begin); !ok {
		t.Fatal("want BEGIN")
	}
	hdr, ok := nextNotCheck(bob).(wire.FileHeader)
	if !ok {
		t.Fatal("want a file header")
	}
	other := h.Dial(t)
	other.LogIn("bob") // ends the downloading session at the cap of one
	data := make([]byte, hdr.Size)
	bob.Conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(bob.R, data); err != nil {
		t.Fatal(err)
	}
	bob.Expect(wire.FileEnd{})
	bob.Expect(wire.End{Fatal: true, Reason: "logged in elsewhere"})
	bob.ExpectClosed()
	if got := other.Download(true); len(got) != 3 {
		t.Fatalf("the next session got %d files, want all 3", len(got))
	}
}
