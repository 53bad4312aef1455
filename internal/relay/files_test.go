package relay_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sslmessager/internal/relay"
	"sslmessager/internal/relay/relaytest"
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

func twoUsers(t *testing.T, h *relaytest.Server) (alice, bob *relaytest.Client) {
	alice, bob = h.Dial(t), h.Dial(t)
	alice.SignUp("alice")
	bob.SignUp("bob")
	return alice, bob
}

func TestFileRoundTrips(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
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
		{"markers", []byte("ENDF " + alice.Token + " \r\nENDF ENDF ENDF \r\nCMD <file send complete> \r\nENDF")},
		{"big", randomBytes(t, big)},
	}
	for _, c := range cases {
		alice.Upload("bob", c.name+".bin", c.data)
	}
	files := bob.Download(true)
	if len(files) != len(cases) {
		t.Fatalf("got %d files, want %d", len(files), len(cases))
	}
	for i, c := range cases {
		f := files[i]
		if f.Header.Name != c.name+".bin" || f.Header.Sender != "alice" || !bytes.Equal(f.Data, c.data) {
			t.Errorf("file %d: %s from %s, %d bytes; want %s.bin, %d bytes", i, f.Header.Name, f.Header.Sender, len(f.Data), c.name, len(c.data))
		}
	}
	// Confirmed files are gone; the queue is empty.
	checkFor(t, "the queue to empty", 5*time.Second, func() bool { return h.Spool.Used("bob") == 0 })
	if again := bob.Download(true); len(again) != 0 {
		t.Fatalf("a second download got %d files", len(again))
	}
}

// TestSentinelUploadSplitAnywhere sends uploads as the original client
// does (no size, data at once, ENDF token as the end) split into two TLS
// records at every position around the end line.
func TestSentinelUploadSplitAnywhere(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	alice, bob := twoUsers(t, h)
	data := []byte("data with ENDF and ENDF xyz \r\n and the token " + alice.Token + " inside\r\n")
	end := "ENDF " + alice.Token + " \r\n"
	stream := append(append([]byte{}, data...), end...)
	n := 0
	for split := len(data) - 8; split <= len(stream); split++ {
		alice.Raw(fmt.Sprintf("BEGINF split%d.txt bob %s \r\n", split, alice.Token))
		alice.Raw(string(stream[:split]))
		if split < len(stream) {
			alice.Raw(string(stream[split:]))
		}
		alice.Expect(wire.Proceed{})
		alice.Expect(wire.Notice{Text: wire.NoticeUploadComplete})
		n++
	}
	// The form without the space before CR LF, too.
	alice.Raw("BEGINF nospace.txt bob " + alice.Token + " \r\n" + string(data) + "ENDF " + alice.Token + "\r\n")
	alice.Expect(wire.Proceed{})
	alice.Expect(wire.Notice{Text: wire.NoticeUploadComplete})
	n++
	files := bob.Download(false)
	if len(files) != n {
		t.Fatalf("got %d files, want %d", len(files), n)
	}
	for _, f := range files {
		if !bytes.Equal(f.Data, data) {
			t.Fatalf("%s: %q, want %q", f.Header.Name, f.Data, data)
		}
	}
	// Without ack a complete send removes the files: no duplicates.
	if again := bob.Download(false); len(again) != 0 {
		t.Fatalf("a second download got %d files", len(again))
	}
	alice.Msg("bob", "the stream is still in step")
	bob.Expect(wire.Relay{Target: "bob", Sender: "alice", Text: "the stream is still in step"})
}

func TestTwoSendersToOneRecipient(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	alice, bob := twoUsers(t, h)
	carol := h.Dial(t)
	carol.SignUp("carol")
	a, c := randomBytes(t, 3<<20), randomBytes(t, 3<<20)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); alice.Upload("bob", "from-alice", a) }()
	go func() { defer wg.Done(); carol.Upload("bob", "from-carol", c) }()
	wg.Wait()
	got := map[string][]byte{}
	for _, f := range bob.Download(true) {
		got[f.Header.Sender] = f.Data
	}
	if !bytes.Equal(got["alice"], a) || !bytes.Equal(got["carol"], c) || len(got) != 2 {
		t.Fatalf("got files from %d senders, contents intact: alice %v carol %v", len(got), bytes.Equal(got["alice"], a), bytes.Equal(got["carol"], c))
	}
}

// TestMessagesWaitForTheDownload: lines for bob that arrive while his
// download streams come after it, never inside a file's bytes.
func TestMessagesWaitForTheDownload(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) { c.CheckInterval = 5 * time.Millisecond }})
	alice, bob := twoUsers(t, h)
	data := randomBytes(t, 8<<20)
	alice.Upload("bob", "big", data)
	bob.Send(wire.Get{Token: bob.Token})
	bob.Expect(wire.Begin{Count: 1}) // the download is under way
	for i := range 20 {
		alice.Msg("bob", fmt.Sprint("during ", i))
	}
	f := bob.ReadFile()
	if !bytes.Equal(f.Data, data) {
		t.Fatal("the file arrived damaged")
	}
	bob.Expect(wire.Notice{Text: wire.NoticeSendComplete})
	for i := range 20 {
		bob.Expect(wire.Relay{Target: "bob", Sender: "alice", Text: fmt.Sprint("during ", i)})
	}
}

func TestInterruptedDownloadLosesNothing(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	alice, bob := twoUsers(t, h)
	want := map[string][]byte{}
	for i := range 3 {
		d := randomBytes(t, 2<<20)
		name := fmt.Sprintf("f%d", i)
		want[name] = d
		alice.Upload("bob", name, d)
	}
	// bob reads half of the first file and his connection dies.
	bob.Send(wire.Get{Ack: true, Token: bob.Token})
	bob.Expect(wire.Begin{Count: 3})
	bob.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := bob.R.ReadLine(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(bob.R, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	bob.Conn.NetConn().Close()
	checkFor(t, "bob offline", 5*time.Second, func() bool { return len(h.Online()) == 1 })

	bob = h.Dial(t)
	bob.LogIn("bob")
	got := bob.Download(true)
	if len(got) != 3 {
		t.Fatalf("after the cut, %d files, want 3", len(got))
	}
	for _, f := range got {
		if !bytes.Equal(f.Data, want[f.Header.Name]) {
			t.Fatalf("%s damaged", f.Header.Name)
		}
	}
	checkFor(t, "the queue to empty", 5*time.Second, func() bool { return h.Spool.Used("bob") == 0 })
	if again := bob.Download(true); len(again) != 0 {
		t.Fatalf("duplicates: %d files", len(again))
	}
}

func TestInterruptedUploadQueuesNothing(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	alice, bob := twoUsers(t, h)
	alice.Send(wire.Upload{Name: "half", Target: "bob", Size: 1 << 20, Token: alice.Token})
	alice.Expect(wire.Proceed{})
	alice.Raw(string(randomBytes(t, 512<<10)))
	alice.Conn.NetConn().Close()
	checkFor(t, "alice offline", 5*time.Second, func() bool { return len(h.Online()) == 1 })
	checkFor(t, "the reservation released", 5*time.Second, func() bool { return h.Spool.Used("bob") == 0 })
	if got := bob.Download(true); len(got) != 0 {
		t.Fatalf("a cut upload left %d files", len(got))
	}
	tmp, _ := os.ReadDir(filepath.Join(h.Dir, "spool", ".tmp"))
	if len(tmp) != 0 {
		t.Fatalf("%d temporary files left", len(tmp))
	}
}

func TestHostileFileNames(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	alice, bob := twoUsers(t, h)
	names := []string{"../../etc/passwd", "a/b", "..", "x\x1b[31mred\x07", strings.Repeat("n", 1000), "résumé 日本.pdf", "evil\u202etxt.exe", `C:\x\evil.exe`}
	for _, n := range names {
		alice.Upload("bob", n, []byte(n))
	}
	for _, f := range bob.Download(true) {
		n := f.Header.Name
		if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\\\x1b\x07\u202e") || len(n) > spool.MaxNameBytes {
			t.Errorf("unsafe name %q delivered", n)
		}
	}
	// Nothing was written outside the spool.
	if _, err := os.Stat(filepath.Join(h.Dir, "etc")); err == nil {
		t.Fatal("a file escaped the spool")
	}
}

func TestUploadLimits(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{Spool: spool.Options{MaxFileSize: 1000, Quota: 1500}})
	alice, bob := twoUsers(t, h)
	alice.Send(wire.Upload{Name: "big", Target: "bob", Size: 1001, Token: alice.Token})
	alice.Expect(wire.Stop{Reason: "file too large (the limit is 1000 B)"})
	alice.Send(wire.Upload{Name: "x", Target: "nobody", Size: 1, Token: alice.Token})
	alice.Expect(wire.Stop{Reason: "no such user: nobody"})
	alice.Upload("bob", "fits", make([]byte, 1000))
	alice.Send(wire.Upload{Name: "over", Target: "bob", Size: 600, Token: alice.Token})
	alice.Expect(wire.Stop{Reason: "recipient's file queue is full"})
	// A sentinel upload over the size limit: refused after its data, and
	// the connection stays in step.
	alice.Raw("BEGINF huge carol " + alice.Token + " \r\n")
	alice.Raw(strings.Repeat("z", 2000) + "ENDF " + alice.Token + " \r\n")
	alice.Expect(wire.Stop{Reason: "no such user: carol"})
	alice.Raw("BEGINF huge alice " + alice.Token + " \r\n")
	alice.Raw(strings.Repeat("z", 2000) + "ENDF " + alice.Token + " \r\n")
	alice.Expect(wire.Proceed{})
	alice.Expect(wire.Notice{Text: wire.NoticeProblem})
	alice.Msg("bob", "still usable")
	bob.Expect(wire.Relay{Target: "bob", Sender: "alice", Text: "still usable"})
	if got := bob.Download(true); len(got) != 1 || got[0].Header.Name != "fits" {
		t.Fatalf("got %d files", len(got))
	}
}

func TestQueuedFilesSurviveRestart(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	alice, _ := twoUsers(t, h)
	data := randomBytes(t, 100<<10)
	alice.Upload("bob", "kept", data)
	h.Restart()
	bob := h.Dial(t)
	bob.LogIn("bob")
	got := bob.Download(false)
	if len(got) != 1 || !bytes.Equal(got[0].Data, data) {
		t.Fatalf("after a restart: %d files", len(got))
	}
}

// TestNoDataRecordStartsWithENDF: the earlier original client ends a file
// at any record that starts with ENDF.
func TestNoDataRecordStartsWithENDF(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	alice, bob := twoUsers(t, h)
	data := bytes.Repeat([]byte("ENDF"), 40<<10/4) // ENDF at every record boundary
	alice.Upload("bob", "endf", data)
	bob.Send(wire.Get{Token: bob.Token})
	var got []byte
	buf := make([]byte, 64<<10)
	records := 0
	for !bytes.Contains(got, []byte("CMD <file send complete> \r\n")) {
		bob.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := bob.Conn.Read(buf)
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
	h := relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) { c.MaxQueueBytes = 2 * wire.MaxLineBytes }})
	alice, bob := twoUsers(t, h)
	alice.Upload("bob", "f", randomBytes(t, 1<<20))
	line, _ := wire.Format(wire.Get{Token: bob.Token})
	flood := bytes.Repeat(line, 2000)
	bob.Conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
	bob.Conn.Write(flood) // may fail once the server drops bob
	checkFor(t, "bob dropped", 20*time.Second, func() bool { return !slices.Contains(h.Online(), "bob") })
	alice.Msg("alice", "still here")
	alice.Expect(wire.Relay{Target: "alice", Sender: "alice", Text: "still here"})
}

// 2000 empty files for one recipient: the default count limit queues the
// first 1000 and refuses the rest with a STOP naming the limit; the
// session goes on and the refused ones left nothing behind.
func TestEmptyFilesRefusedAtTheCountLimit(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	alice, _ := twoUsers(t, h)
	queued, refused := 0, 0
	for i := range 2000 {
		alice.Send(wire.Upload{Name: fmt.Sprintf("empty-%d", i), Target: "bob", Size: 0, Token: alice.Token})
		switch q := alice.MustNext().(type) {
		case wire.Proceed:
			alice.Send(wire.UploadEnd{Token: alice.Token})
			alice.Expect(wire.Notice{Text: wire.NoticeUploadComplete})
			queued++
		case wire.Stop:
			if q.Reason != "recipient's file queue is full (1000 files)" {
				t.Fatalf("upload %d: STOP <%s>", i, q.Reason)
			}
			refused++
		default:
			t.Fatalf("upload %d: got %#v", i, q)
		}
	}
	if queued != spool.DefaultMaxQueuedFiles || refused != 2000-spool.DefaultMaxQueuedFiles {
		t.Fatalf("%d queued, %d refused", queued, refused)
	}
	if n, _ := h.Spool.List("bob", 0); len(n) != queued {
		t.Fatalf("%d files listed", len(n))
	}
	alice.Send(wire.Online{Token: alice.Token})
	alice.Expect(wire.OnlineList{Users: []string{"alice", "bob"}})
}

// TestSizeText checks the sizes the server's refusals show.
func TestSizeText(t *testing.T) {
	for n, want := range map[int64]string{1 << 30: "1 GiB", 512 << 10: "512 KiB", 3 << 29: "1536 MiB", 3<<29 + 1: "1.5 GiB", 1000: "1000 B", 10 << 40: "10 TiB"} {
		if got := relay.SizeText(n); got != want {
			t.Errorf("SizeText(%d) = %q, want %q", n, got, want)
		}
	}
}
