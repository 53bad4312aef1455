package relay

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"sslmessager/internal/wire"
)

// slowDownload runs CMD <get ack> and reads the files in small pieces with
// a pause between them, as a slow link would. Lines that arrive between
// two files, and after the last one, are collected. It returns the files
// and every other line up to CMD <file send complete>.
func (c *tclient) slowDownload(pause time.Duration) (files []gotFile, lines []wire.Query) {
	c.t.Helper()
	c.send(wire.Get{Ack: true, Token: c.token})
	begin, ok := c.nextNotCheck().(wire.Begin)
	if !ok {
		c.t.Fatal("want BEGIN")
	}
	for len(files) < begin.Count {
		q := c.nextNotCheck()
		h, ok := q.(wire.FileHeader)
		if !ok {
			lines = append(lines, q)
			continue
		}
		data := make([]byte, h.Size)
		for off := 0; off < len(data); {
			c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := io.ReadFull(c.r, data[off:min(off+256<<10, len(data))])
			if err != nil {
				c.t.Fatalf("file data after %d bytes: %v", off, err)
			}
			off += n
			time.Sleep(pause)
		}
		if q := c.nextNotCheck(); q != (wire.FileEnd{}) {
			c.t.Fatalf("after the data: %#v", q)
		}
		files = append(files, gotFile{h, data})
	}
	for {
		q := c.nextNotCheck()
		if q == (wire.Notice{Text: wire.NoticeSendComplete}) {
			break
		}
		if _, ok := q.(wire.FileHeader); ok {
			c.t.Fatal("a file after the announced count")
		}
		lines = append(lines, q)
	}
	for _, f := range files {
		c.send(wire.AckFile{ID: f.h.ID, Token: c.token})
	}
	return files, lines
}

func (c *tclient) nextNotCheck() wire.Query {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	q, err := c.next()
	if err != nil {
		c.t.Fatal(err)
	}
	return q
}

// A user reading a 32 MiB download slowly while 500 messages of 2000
// characters (6000 bytes each, over 3 MB in all) arrive for them: the
// file arrives byte-exact, every message arrives once and in order,
// nobody is dropped, and the messages go out between the two files.
func TestSlowDownloadWithMessagesLosesNothing(t *testing.T) {
	h := startServer(t, nil)
	alice, bob := twoUsers(t, h)
	carol := h.dial(t)
	carol.signUp("carol")
	big := randomBytes(t, 32<<20)
	alice.upload("bob", "big.bin", big)
	alice.upload("bob", "small.txt", []byte("second file"))

	const n = 500
	text := func(i int) string { return fmt.Sprintf("%04d", i) + strings.Repeat("日", 1996) }
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(50 * time.Millisecond) // the download is under way
		for i := range n {
			carol.msg("bob", text(i))
		}
	}()
	files, lines := bob.slowDownload(5 * time.Millisecond)
	wg.Wait()
	if len(files) != 2 || !bytes.Equal(files[0].data, big) || string(files[1].data) != "second file" {
		t.Fatalf("files: %d, first byte-exact %v", len(files), len(files) > 0 && bytes.Equal(files[0].data, big))
	}
	between := len(lines)
	for len(lines) < n {
		lines = append(lines, bob.nextNotCheck())
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
	bob.send(wire.Online{Token: bob.token})
	bob.expect(wire.OnlineList{Users: []string{"alice", "bob", "carol"}})
	if left, _ := h.srv.cfg.Spool.List("bob"); len(left) != 0 {
		t.Fatalf("%d files left queued", len(left))
	}
}

// One member's download must not slow group chat for the others: while
// dave sits in the middle of a 32 MiB download without reading, erin's
// group messages (more than the high-water mark in all) reach frank at
// once; erin is never paused for dave.
func TestGroupSenderNotSlowedByDownloadingMember(t *testing.T) {
	h := startServer(t, func(c *Config) { c.StallWait = 10 * time.Second })
	alice := h.dial(t)
	alice.signUp("alice")
	var dave, erin, frank *tclient
	for _, p := range []struct {
		c    **tclient
		name string
	}{{&dave, "dave"}, {&erin, "erin"}, {&frank, "frank"}} {
		*p.c = h.dial(t)
		(*p.c).signUp(p.name)
	}
	dave.send(wire.Group{Token: dave.token})
	frank.send(wire.Group{Token: frank.token})
	checkFor(t, "two group members", 5*time.Second, func() bool { return len(h.srv.hub.groupMembers()) == 2 })
	big := randomBytes(t, 32<<20)
	alice.upload("dave", "big.bin", big)

	dave.send(wire.Get{Ack: true, Token: dave.token})
	if _, ok := dave.nextNotCheck().(wire.Begin); !ok {
		t.Fatal("want BEGIN")
	}
	hdr, ok := dave.nextNotCheck().(wire.FileHeader)
	if !ok {
		t.Fatal("want a file header")
	}
	head := make([]byte, 1<<20)
	if _, err := io.ReadFull(dave.r, head); err != nil {
		t.Fatal(err)
	}
	// dave now reads nothing; the server's writer is stuck in his file.
	const n = 400 // 400 lines of about 6 KB: 2.4 MB, over the 1 MiB high-water mark
	text := func(i int) string { return fmt.Sprintf("%04d", i) + strings.Repeat("語", 1996) }
	start := time.Now()
	for i := range n {
		erin.send(wire.GroupMsg{Sender: "erin", Text: text(i), Token: erin.token})
	}
	for i := range n {
		frank.expect(wire.RelayGroup{Sender: "erin", Text: text(i)})
	}
	took := time.Since(start)
	// With a 10 s stall per paused query, one pause would show.
	if took > 5*time.Second {
		t.Fatalf("group delivery to frank took %v while dave downloaded", took)
	}
	t.Logf("%d group messages reached frank in %v while dave's download stood still", n, took)

	// dave resumes and gets the rest of his file and then every message.
	rest := make([]byte, hdr.Size-int64(len(head)))
	dave.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(dave.r, rest); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(head, rest...), big) {
		t.Fatal("file not byte-exact")
	}
	if q := dave.nextNotCheck(); q != (wire.FileEnd{}) {
		t.Fatalf("after the data: %#v", q)
	}
	// A one-file download: the lines follow its end.
	dave.expect(wire.Notice{Text: wire.NoticeSendComplete})
	for i := range n {
		dave.expect(wire.RelayGroup{Sender: "erin", Text: text(i)})
	}
}
