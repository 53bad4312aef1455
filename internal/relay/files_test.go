package relay

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sslmessager/internal/spool"
	"sslmessager/internal/wire"
)

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// upload sends a file in the sized form and waits for the verdict.
func (c *tclient) upload(to, name string, data []byte) {
	c.t.Helper()
	c.send(wire.Upload{Name: name, Target: to, Size: int64(len(data)), Token: c.token})
	c.expect(wire.Proceed{})
	c.conn.SetWriteDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.conn.Write(data); err != nil {
		c.t.Fatal(err)
	}
	c.send(wire.UploadEnd{Token: c.token})
	c.expect(wire.Notice{Text: wire.NoticeUploadComplete})
}

type gotFile struct {
	h    wire.FileHeader
	data []byte
}

// download runs CMD <get>, checks each file's hash and confirms it if ack.
func (c *tclient) download(ack bool) []gotFile {
	c.t.Helper()
	c.send(wire.Get{Ack: ack, Token: c.token})
	q, err := c.next()
	if err != nil {
		c.t.Fatal(err)
	}
	begin, ok := q.(wire.Begin)
	if !ok {
		c.t.Fatalf("got %#v, want BEGIN", q)
	}
	var files []gotFile
	for range begin.Count {
		files = append(files, c.readFile())
	}
	c.expect(wire.Notice{Text: wire.NoticeSendComplete})
	for _, f := range files {
		if sum(f.data) != f.h.SHA256 {
			c.t.Fatalf("%s: hash mismatch", f.h.Name)
		}
		if ack {
			c.send(wire.AckFile{ID: f.h.ID, Token: c.token})
		}
	}
	return files
}

func (c *tclient) readFile() gotFile {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	line, err := c.r.ReadLine()
	if err != nil {
		c.t.Fatal(err)
	}
	q, err := wire.ParseServer(line)
	if err != nil {
		c.t.Fatal(err)
	}
	h, ok := q.(wire.FileHeader)
	if !ok {
		c.t.Fatalf("got %#v, want a file header", q)
	}
	data := make([]byte, h.Size)
	if _, err := io.ReadFull(c.r, data); err != nil {
		c.t.Fatal(err)
	}
	line, err = c.r.ReadLine()
	if err != nil || string(line) != "ENDF ENDF ENDF " {
		c.t.Fatalf("after the data of %s: %q, %v", h.Name, line, err)
	}
	return gotFile{h, data}
}

func twoUsers(t *testing.T, h *harness) (alice, bob *tclient) {
	alice, bob = h.dial(t), h.dial(t)
	alice.signUp("alice")
	bob.signUp("bob")
	return alice, bob
}

func TestFileRoundTrips(t *testing.T) {
	h := startServer(t, nil)
	alice, bob := twoUsers(t, h)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	big := 64 << 20
	if testing.Short() {
		big = 4 << 20
	}
	cases := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"one", []byte{'x'}},
		{"every byte", all},
		{"markers", []byte("ENDF " + alice.token + " \r\nENDF ENDF ENDF \r\nCMD <file send complete> \r\nENDF")},
		{"big", randomBytes(t, big)},
	}
	for _, c := range cases {
		alice.upload("bob", c.name+".bin", c.data)
	}
	files := bob.download(true)
	if len(files) != len(cases) {
		t.Fatalf("got %d files, want %d", len(files), len(cases))
	}
	for i, c := range cases {
		f := files[i]
		if f.h.Name != c.name+".bin" || f.h.Sender != "alice" || !bytes.Equal(f.data, c.data) {
			t.Errorf("file %d: %s from %s, %d bytes; want %s.bin, %d bytes", i, f.h.Name, f.h.Sender, len(f.data), c.name, len(c.data))
		}
	}
	// Confirmed files are gone; the queue is empty.
	checkFor(t, "the queue to empty", 5*time.Second, func() bool { return h.srv.cfg.Spool.Used("bob") == 0 })
	if again := bob.download(true); len(again) != 0 {
		t.Fatalf("a second download got %d files", len(again))
	}
}

// TestSentinelUploadSplitAnywhere sends uploads as the original client
// does (no size, data at once, ENDF token as the end) split into two TLS
// records at every position around the end line.
func TestSentinelUploadSplitAnywhere(t *testing.T) {
	h := startServer(t, nil)
	alice, bob := twoUsers(t, h)
	data := []byte("data with ENDF and ENDF xyz \r\n and the token " + alice.token + " inside\r\n")
	end := "ENDF " + alice.token + " \r\n"
	stream := append(append([]byte{}, data...), end...)
	n := 0
	for split := len(data) - 8; split <= len(stream); split++ {
		alice.raw(fmt.Sprintf("BEGINF split%d.txt bob %s \r\n", split, alice.token))
		alice.raw(string(stream[:split]))
		if split < len(stream) {
			alice.raw(string(stream[split:]))
		}
		alice.expect(wire.Proceed{})
		alice.expect(wire.Notice{Text: wire.NoticeUploadComplete})
		n++
	}
	// The form without the space before CR LF, too.
	alice.raw("BEGINF nospace.txt bob " + alice.token + " \r\n" + string(data) + "ENDF " + alice.token + "\r\n")
	alice.expect(wire.Proceed{})
	alice.expect(wire.Notice{Text: wire.NoticeUploadComplete})
	n++
	files := bob.download(false)
	if len(files) != n {
		t.Fatalf("got %d files, want %d", len(files), n)
	}
	for _, f := range files {
		if !bytes.Equal(f.data, data) {
			t.Fatalf("%s: %q, want %q", f.h.Name, f.data, data)
		}
	}
	// Without ack a complete send removes the files: no duplicates.
	if again := bob.download(false); len(again) != 0 {
		t.Fatalf("a second download got %d files", len(again))
	}
	alice.msg("bob", "the stream is still in step")
	bob.expect(wire.Relay{Target: "bob", Sender: "alice", Text: "the stream is still in step"})
}

func TestTwoSendersToOneRecipient(t *testing.T) {
	h := startServer(t, nil)
	alice, bob := twoUsers(t, h)
	carol := h.dial(t)
	carol.signUp("carol")
	a, c := randomBytes(t, 3<<20), randomBytes(t, 3<<20)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); alice.upload("bob", "from-alice", a) }()
	go func() { defer wg.Done(); carol.upload("bob", "from-carol", c) }()
	wg.Wait()
	got := map[string][]byte{}
	for _, f := range bob.download(true) {
		got[f.h.Sender] = f.data
	}
	if !bytes.Equal(got["alice"], a) || !bytes.Equal(got["carol"], c) || len(got) != 2 {
		t.Fatalf("got files from %d senders, contents intact: alice %v carol %v", len(got), bytes.Equal(got["alice"], a), bytes.Equal(got["carol"], c))
	}
}

// TestMessagesWaitForTheDownload: lines for bob that arrive while his
// download streams come after it, never inside a file's bytes.
func TestMessagesWaitForTheDownload(t *testing.T) {
	h := startServer(t, func(c *Config) { c.CheckInterval = 5 * time.Millisecond })
	alice, bob := twoUsers(t, h)
	data := randomBytes(t, 8<<20)
	alice.upload("bob", "big", data)
	bob.send(wire.Get{Token: bob.token})
	bob.expect(wire.Begin{Count: 1}) // the download is under way
	for i := range 20 {
		alice.msg("bob", fmt.Sprint("during ", i))
	}
	f := bob.readFile()
	if !bytes.Equal(f.data, data) {
		t.Fatal("the file arrived damaged")
	}
	bob.expect(wire.Notice{Text: wire.NoticeSendComplete})
	for i := range 20 {
		bob.expect(wire.Relay{Target: "bob", Sender: "alice", Text: fmt.Sprint("during ", i)})
	}
}

func TestInterruptedDownloadLosesNothing(t *testing.T) {
	h := startServer(t, nil)
	alice, bob := twoUsers(t, h)
	want := map[string][]byte{}
	for i := range 3 {
		d := randomBytes(t, 2<<20)
		name := fmt.Sprintf("f%d", i)
		want[name] = d
		alice.upload("bob", name, d)
	}
	// bob reads half of the first file and his connection dies.
	bob.send(wire.Get{Ack: true, Token: bob.token})
	bob.expect(wire.Begin{Count: 3})
	bob.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := bob.r.ReadLine(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(bob.r, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	bob.conn.NetConn().Close()
	checkFor(t, "bob offline", 5*time.Second, func() bool { return len(h.srv.Online()) == 1 })

	bob = h.dial(t)
	bob.logIn("bob")
	got := bob.download(true)
	if len(got) != 3 {
		t.Fatalf("after the cut, %d files, want 3", len(got))
	}
	for _, f := range got {
		if !bytes.Equal(f.data, want[f.h.Name]) {
			t.Fatalf("%s damaged", f.h.Name)
		}
	}
	checkFor(t, "the queue to empty", 5*time.Second, func() bool { return h.srv.cfg.Spool.Used("bob") == 0 })
	if again := bob.download(true); len(again) != 0 {
		t.Fatalf("duplicates: %d files", len(again))
	}
}

func TestInterruptedUploadQueuesNothing(t *testing.T) {
	h := startServer(t, nil)
	alice, bob := twoUsers(t, h)
	alice.send(wire.Upload{Name: "half", Target: "bob", Size: 1 << 20, Token: alice.token})
	alice.expect(wire.Proceed{})
	alice.raw(string(randomBytes(t, 512<<10)))
	alice.conn.NetConn().Close()
	checkFor(t, "alice offline", 5*time.Second, func() bool { return len(h.srv.Online()) == 1 })
	checkFor(t, "the reservation released", 5*time.Second, func() bool { return h.srv.cfg.Spool.Used("bob") == 0 })
	if got := bob.download(true); len(got) != 0 {
		t.Fatalf("a cut upload left %d files", len(got))
	}
	tmp, _ := os.ReadDir(filepath.Join(h.dir, "spool", ".tmp"))
	if len(tmp) != 0 {
		t.Fatalf("%d temporary files left", len(tmp))
	}
}

func TestHostileFileNames(t *testing.T) {
	h := startServer(t, nil)
	alice, bob := twoUsers(t, h)
	names := []string{"../../etc/passwd", "a/b", "..", "x\x1b[31mred\x07", strings.Repeat("n", 1000), "résumé 日本.pdf", "evil\u202etxt.exe", `C:\x\evil.exe`}
	for _, n := range names {
		alice.upload("bob", n, []byte(n))
	}
	for _, f := range bob.download(true) {
		n := f.h.Name
		if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\\\x1b\x07\u202e") || len(n) > spool.MaxNameBytes {
			t.Errorf("unsafe name %q delivered", n)
		}
	}
	// Nothing was written outside the spool.
	if _, err := os.Stat(filepath.Join(h.dir, "etc")); err == nil {
		t.Fatal("a file escaped the spool")
	}
}

func TestUploadLimits(t *testing.T) {
	h := startServerSpool(t, nil, spool.Options{MaxFileSize: 1000, Quota: 1500})
	alice, bob := twoUsers(t, h)
	alice.send(wire.Upload{Name: "big", Target: "bob", Size: 1001, Token: alice.token})
	alice.expect(wire.Stop{Reason: "file too large"})
	alice.send(wire.Upload{Name: "x", Target: "nobody", Size: 1, Token: alice.token})
	alice.expect(wire.Stop{Reason: "no such user: nobody"})
	alice.upload("bob", "fits", make([]byte, 1000))
	alice.send(wire.Upload{Name: "over", Target: "bob", Size: 600, Token: alice.token})
	alice.expect(wire.Stop{Reason: "recipient's file queue is full"})
	// A sentinel upload over the size limit: refused after its data, and
	// the connection stays in step.
	alice.raw("BEGINF huge carol " + alice.token + " \r\n")
	alice.raw(strings.Repeat("z", 2000) + "ENDF " + alice.token + " \r\n")
	alice.expect(wire.Stop{Reason: "no such user: carol"})
	alice.raw("BEGINF huge alice " + alice.token + " \r\n")
	alice.raw(strings.Repeat("z", 2000) + "ENDF " + alice.token + " \r\n")
	alice.expect(wire.Proceed{})
	alice.expect(wire.Notice{Text: wire.NoticeProblem})
	alice.msg("bob", "still usable")
	bob.expect(wire.Relay{Target: "bob", Sender: "alice", Text: "still usable"})
	if got := bob.download(true); len(got) != 1 || got[0].h.Name != "fits" {
		t.Fatalf("got %d files", len(got))
	}
}

func TestQueuedFilesSurviveRestart(t *testing.T) {
	h := startServer(t, nil)
	alice, _ := twoUsers(t, h)
	data := randomBytes(t, 100<<10)
	alice.upload("bob", "kept", data)
	h.stop()
	h.start()
	bob := h.dial(t)
	bob.logIn("bob")
	got := bob.download(false)
	if len(got) != 1 || !bytes.Equal(got[0].data, data) {
		t.Fatalf("after a restart: %d files", len(got))
	}
}

// TestNoDataRecordStartsWithENDF: the earlier original client ends a file
// at any record that starts with ENDF.
func TestNoDataRecordStartsWithENDF(t *testing.T) {
	h := startServer(t, nil)
	alice, bob := twoUsers(t, h)
	data := bytes.Repeat([]byte("ENDF"), 40<<10/4) // ENDF at every record boundary
	alice.upload("bob", "endf", data)
	bob.send(wire.Get{Token: bob.token})
	var got []byte
	buf := make([]byte, 64<<10)
	records := 0
	for !bytes.Contains(got, []byte("CMD <file send complete> \r\n")) {
		bob.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := bob.conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		rec := buf[:n]
		if bytes.HasPrefix(rec, []byte("ENDF")) && !bytes.Equal(rec, []byte("ENDF ENDF ENDF \r\n")) {
			t.Fatalf("record %d starts with ENDF: %q...", records, rec[:min(20, len(rec))])
		}
		got = append(got, rec...)
		records++
	}
	if !bytes.Contains(got, data) {
		t.Fatal("the data did not arrive whole")
	}
}

// TestGetFloodIsBounded: a client that asks for downloads without reading
// them overflows its own queue and is dropped; nobody else is affected.
func TestGetFloodIsBounded(t *testing.T) {
	h := startServer(t, func(c *Config) { c.MaxQueueBytes = 2 * wire.MaxLineBytes })
	alice, bob := twoUsers(t, h)
	alice.upload("bob", "f", randomBytes(t, 1<<20))
	line, _ := wire.Format(wire.Get{Token: bob.token})
	flood := bytes.Repeat(line, 2000)
	bob.conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
	bob.conn.Write(flood) // may fail once the server drops bob
	checkFor(t, "bob dropped", 20*time.Second, func() bool { return !slices.Contains(h.srv.Online(), "bob") })
	alice.msg("alice", "still here")
	alice.expect(wire.Relay{Target: "alice", Sender: "alice", Text: "still here"})
}
