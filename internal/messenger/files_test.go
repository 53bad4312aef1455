package messenger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/spool"
	"sslmessager/internal/wire"
)

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	r.Read(b)
	return b
}

func writeTestFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// savedFiles returns the files in dir by name, failing on leftovers of a
// transfer (temporary files); the journal is allowed.
func savedFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix+"received-") {
			continue
		}
		if strings.HasPrefix(e.Name(), tempPrefix) {
			t.Errorf("leftover temporary file %s", e.Name())
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	return files
}

func sameFiles(t *testing.T, dir string, want map[string][]byte) {
	t.Helper()
	got := savedFiles(t, dir)
	for name, data := range want {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s missing from %s", name, dir)
		case !bytes.Equal(g, data):
			t.Errorf("%s: %d bytes differ from the %d sent", name, len(g), len(data))
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected file %s in %s", name, dir)
		}
	}
}

// hookBuffer is a SyncBuffer that calls fn (once) as soon as it holds on.
type hookBuffer struct {
	relaytest.SyncBuffer
	on   string
	fn   func()
	once sync.Once
}

func (b *hookBuffer) Write(p []byte) (int, error) {
	n, err := b.SyncBuffer.Write(p)
	if strings.Contains(b.String(), b.on) {
		b.once.Do(b.fn)
	}
	return n, err
}

// signUp creates the accounts and waits until their sessions are gone.
func signUp(t *testing.T, s *relayServer, names ...string) {
	t.Helper()
	for _, n := range names {
		s.join(t, n, true).Close()
	}
	s.waitOnline(t, "the new users gone", func(online []string) bool {
		for _, n := range names {
			if slices.Contains(online, n) {
				return false
			}
		}
		return true
	})
}

// uploadAll sends files from a one-shot session of user.
func uploadAll(t *testing.T, s *relayServer, user, to string, paths ...string) {
	t.Helper()
	c := s.join(t, user, false)
	if err := Upload(t.Context(), c, to, paths, TransferOptions{}); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	c.Close()
	s.waitOnline(t, user+" gone", func(n []string) bool { return !slices.Contains(n, user) })
}

func TestFileRoundTrips(t *testing.T) {
	s := startRelay(t)
	signUp(t, s, "carol") // has an account, stays offline
	bobConn := s.join(t, "bob", true)
	aliceConn := s.join(t, "alice", true)

	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	// Data that looks like the lines around it: the server's end marker,
	// the upload end line with alice's token, bob's token.
	tricky := []byte("ENDF ENDF ENDF \r\nENDF " + aliceConn.token + " \r\nENDF " + aliceConn.token +
		"\r\nENDF ENDF ENDF\r\n" + bobConn.token + "\r\nBEGIN 1 \r\nCMD <file send complete> \r\nENDF")
	files := []struct {
		name string
		data []byte
	}{
		{"empty.bin", nil},
		{"one.bin", []byte{0x42}},
		{"all-bytes.bin", allBytes},
		{"random.bin", randomBytes(8<<20, 1)},
		{"tricky.txt", tricky},
		{"my notes.txt", []byte("a name with spaces\n")},
	}
	src := t.TempDir()
	alice := startRun(t, aliceConn, Options{Target: "bob", NoTimestamps: true})
	want := map[string][]byte{}
	for _, f := range files {
		p := writeTestFile(t, src, f.name, f.data)
		want[f.name] = f.data
		if strings.Contains(f.name, " ") {
			alice.typeLine(t, `:upload: "`+p+`"`)
		} else {
			alice.typeLine(t, ":upload: "+p)
		}
		waitOutput(t, alice.out, fmt.Sprintf("uploading %s (%s) to bob…\n", f.name, humanSize(int64(len(f.data)))))
		waitOutput(t, alice.out, "upload complete: "+f.name+" to bob\n")
	}
	waitOutput(t, alice.out, "uploading random.bin (8.4 MB) to bob…\n")
	// An offline recipient with an account, named after the path.
	alice.typeLine(t, ":upload: "+filepath.Join(src, "one.bin")+" carol")
	waitOutput(t, alice.out, "upload complete: one.bin to carol\n")

	dl := filepath.Join(t.TempDir(), "new", "downloads")
	bob := startRun(t, bobConn, Options{Target: "alice", NoTimestamps: true, Downloads: dl})
	bob.typeLine(t, ":download:")
	waitOutput(t, bob.out, "downloaded 6 files\n")
	for _, f := range files {
		waitOutput(t, bob.out, fmt.Sprintf("saved %s from alice (%s, sha256 ok) -> %s\n",
			f.name, humanSize(int64(len(f.data))), filepath.Join(dl, f.name)))
	}
	sameFiles(t, dl, want)
	if st, err := os.Stat(dl); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("download directory: %v, mode %v; want 0700", err, st.Mode().Perm())
	}
	// Everything was confirmed: nothing waits any more.
	bob.typeLine(t, ":download:")
	waitOutput(t, bob.out, "no files waiting\n")
	if strings.Count(bob.out.String(), "saved ") != len(files) {
		t.Errorf("files saved more than once:\n%s", bob.out.String())
	}
	if _, err := os.Stat(journalPath(dl, "bob")); err == nil {
		t.Error("the journal outlived a download that found nothing")
	}
	// The session goes on.
	bob.typeLine(t, "thanks")
	waitOutput(t, alice.out, "bob: thanks\n")
}

func TestDownloadNameCollision(t *testing.T) {
	s := startRelay(t)
	signUp(t, s, "alice")
	bobConn := s.join(t, "bob", true)
	src, dl := t.TempDir(), t.TempDir()
	writeTestFile(t, dl, "a.txt", []byte("the original"))
	p := writeTestFile(t, src, "a.txt", []byte("first upload"))
	uploadAll(t, s, "alice", "bob", p)
	writeTestFile(t, src, "a.txt", []byte("second upload"))
	uploadAll(t, s, "alice", "bob", p)

	bob := startRun(t, bobConn, Options{Target: "alice", NoTimestamps: true, Downloads: dl})
	bob.typeLine(t, ":download:")
	waitOutput(t, bob.out, "downloaded 2 files\n")
	waitOutput(t, bob.out, "saved a.txt from alice (12 B, sha256 ok) -> "+filepath.Join(dl, "a (1).txt")+"\n")
	waitOutput(t, bob.out, "saved a.txt from alice (13 B, sha256 ok) -> "+filepath.Join(dl, "a (2).txt")+"\n")
	sameFiles(t, dl, map[string][]byte{
		"a.txt":     []byte("the original"),
		"a (1).txt": []byte("first upload"),
		"a (2).txt": []byte("second upload"),
	})
}

func TestDownloadWhileMessagesArrive(t *testing.T) {
	s := startRelay(t)
	signUp(t, s, "alice")
	bobConn := s.join(t, "bob", true)
	src, dl := t.TempDir(), t.TempDir()
	f1 := writeTestFile(t, src, "f1.bin", randomBytes(4<<20, 2))
	f2 := writeTestFile(t, src, "f2.bin", randomBytes(4<<20, 3))
	uploadAll(t, s, "alice", "bob", f1, f2)

	alice := startRun(t, s.join(t, "alice", false), Options{Target: "bob", NoTimestamps: true})
	bob := startRun(t, bobConn, Options{Target: "alice", NoTimestamps: true, Downloads: dl})
	s.waitOnline(t, "alice and bob", func(n []string) bool { return len(n) == 2 })
	bob.typeLine(t, ":download:")
	const n = 40
	for i := range n {
		alice.typeLine(t, fmt.Sprintf("message %d", i))
	}
	waitOutput(t, bob.out, "downloaded 2 files\n")
	waitOutput(t, bob.out, fmt.Sprintf("alice: message %d\n", n-1))

	// The messages may come between the two files (the server sends what
	// waited for a file right after it), never twice, in order.
	got := 0
	for _, l := range strings.Split(bob.out.String(), "\n") {
		if strings.HasPrefix(l, "alice: message ") {
			if l != fmt.Sprintf("alice: message %d", got) {
				t.Fatalf("line %q, want message %d:\n%s", l, got, bob.out.String())
			}
			got++
		}
	}
	if got != n {
		t.Errorf("%d messages printed, want %d", got, n)
	}
	sameFiles(t, dl, map[string][]byte{"f1.bin": randomBytes(4<<20, 2), "f2.bin": randomBytes(4<<20, 3)})
}

func TestInterruptedDownload(t *testing.T) {
	s := startRelay(t)
	signUp(t, s, "alice", "bob")
	src := t.TempDir()
	want := map[string][]byte{
		"first.bin": randomBytes(10<<10, 4),
		"big.bin":   randomBytes(8<<20, 5),
		"last.bin":  randomBytes(10<<10, 6),
	}
	upload := func() {
		var paths []string
		for _, name := range []string{"first.bin", "big.bin", "last.bin"} {
			paths = append(paths, writeTestFile(t, src, name, want[name]))
		}
		uploadAll(t, s, "alice", "bob", paths...)
	}
	bobGone := func() { s.waitOnline(t, "bob gone", func(n []string) bool { return !slices.Contains(n, "bob") }) }

	t.Run("connection closed", func(t *testing.T) {
		upload()
		dl := t.TempDir()
		c := s.join(t, "bob", false)
		// The connection breaks as first.bin is reported saved: before
		// its confirmation could be sent.
		out := &hookBuffer{on: "saved first.bin", fn: func() { c.Close() }}
		if err := Download(t.Context(), c, dl, TransferOptions{Out: out}); err == nil {
			t.Fatal("Download on a closed connection succeeded")
		}
		sameFiles(t, dl, map[string][]byte{"first.bin": want["first.bin"]})
		bobGone()

		out2 := &relaytest.SyncBuffer{}
		if err := Download(t.Context(), s.join(t, "bob", false), dl, TransferOptions{Out: out2}); err != nil {
			t.Fatalf("second Download: %v\n%s", err, out2.String())
		}
		// first.bin comes again, unconfirmed, and is not saved twice.
		for _, line := range []string{
			"already saved first.bin from alice (10 KB, sha256 ok); confirmed\n",
			"saved big.bin from alice (8.4 MB, sha256 ok) -> " + filepath.Join(dl, "big.bin") + "\n",
			"saved last.bin from alice (10 KB, sha256 ok) -> " + filepath.Join(dl, "last.bin") + "\n",
			"downloaded 3 files\n",
		} {
			if !strings.Contains(out2.String(), line) {
				t.Errorf("second download lacks %q:\n%s", line, out2.String())
			}
		}
		sameFiles(t, dl, want)
		bobGone()
		out3 := &relaytest.SyncBuffer{}
		if err := Download(t.Context(), s.join(t, "bob", false), dl, TransferOptions{Out: out3}); err != nil || out3.String() != "no files waiting\n" {
			t.Fatalf("third Download: %v, %q", err, out3.String())
		}
		bobGone()
	})

	t.Run("session cancelled", func(t *testing.T) {
		upload()
		dl := t.TempDir()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		out := &hookBuffer{on: "saved first.bin", fn: cancel}
		pr, pw := io.Pipe()
		defer pw.Close()
		done := make(chan error, 1)
		c := s.join(t, "bob", false)
		go func() { done <- c.Run(ctx, pr, out, Options{Target: "alice", Downloads: dl}) }()
		io.WriteString(pw, ":download:\n")
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
		bobGone()
		t.Logf("files saved before the interruption: %d", len(savedFiles(t, dl)))

		bob := startRun(t, s.join(t, "bob", false), Options{Target: "alice", NoTimestamps: true, Downloads: dl})
		bob.typeLine(t, ":download:")
		waitOutput(t, bob.out, "downloaded ")
		sameFiles(t, dl, want)
		bob.typeLine(t, ":download:")
		waitOutput(t, bob.out, "no files waiting\n")
		sameFiles(t, dl, want)
	})
}

func TestUploadRefusals(t *testing.T) {
	s := startRelayWith(t, &spool.Options{MaxFileSize: 1000, Quota: 1500})
	s.join(t, "bob", true).Close()
	src := t.TempDir()
	small := writeTestFile(t, src, "small.txt", bytes.Repeat([]byte("s"), 100))
	big := writeTestFile(t, src, "big.bin", make([]byte, 2000))
	mid := writeTestFile(t, src, "mid.bin", make([]byte, 900))
	mid2 := writeTestFile(t, src, "mid2.bin", make([]byte, 900))

	alice := startRun(t, s.join(t, "alice", true), Options{Target: "bob", NoTimestamps: true})
	alice.typeLine(t, ":upload: "+small+" nobody")
	waitOutput(t, alice.out, "uploading small.txt (100 B) to nobody…\n! upload refused: no such user: nobody\n")
	alice.typeLine(t, ":upload: "+big)
	waitOutput(t, alice.out, "! upload refused: file too large (the limit is 1000 B)\n")
	alice.typeLine(t, ":upload: "+mid)
	waitOutput(t, alice.out, "upload complete: mid.bin to bob\n")
	alice.typeLine(t, ":upload: "+mid2)
	waitOutput(t, alice.out, "! upload refused: recipient's file queue is full\n")
	// The session goes on, uploads included.
	alice.typeLine(t, ":online:")
	waitOutput(t, alice.out, "online: alice\n")
	alice.typeLine(t, ":upload: "+small)
	waitOutput(t, alice.out, "upload complete: small.txt to bob\n")

	// The one-shot upload stops at the first refusal.
	c := s.join(t, "carol", true)
	err := Upload(t.Context(), c, "bob", []string{small, big, small}, TransferOptions{})
	var re *UploadRefusedError
	var pe *PartialUploadError
	if !errors.As(err, &re) || re.Reason != "file too large (the limit is 1000 B)" || !errors.As(err, &pe) ||
		!slices.Equal(pe.Delivered, []string{small}) || !slices.Equal(pe.NotDelivered, []string{big, small}) {
		t.Fatalf("Upload = %v, want the refusal after %s", err, small)
	}

	// A server without a spool.
	s2 := startRelayWith(t, nil)
	s2.join(t, "bob", true).Close()
	dave := startRun(t, s2.join(t, "dave", true), Options{Target: "bob", NoTimestamps: true, Downloads: t.TempDir()})
	dave.typeLine(t, ":upload: "+small)
	waitOutput(t, dave.out, "! upload refused: file transfer is not enabled on this server\n")
	dave.typeLine(t, ":download:")
	waitOutput(t, dave.out, "no files waiting\n")
}

func TestUploadRefusedLocally(t *testing.T) {
	s := startFake(t)
	c, fc := loggedIn(t, s, "alice")
	dir := t.TempDir()
	notADir := writeTestFile(t, dir, "plain-file", nil)
	r := startRun(t, c, Options{Target: "bob", Downloads: notADir})
	fc.expectCarbons()
	missing := filepath.Join(dir, "missing.txt")
	r.typeLine(t, ":download:")
	waitOutput(t, r.out, "! download directory: ")
	r.typeLine(t, ":upload: "+dir)
	waitOutput(t, r.out, "! cannot upload "+dir+": is a directory\n")
	r.typeLine(t, ":upload: "+missing)
	waitOutput(t, r.out, "! cannot upload "+missing+": no such file\n")
	r.typeLine(t, `:upload: "`+missing)
	waitOutput(t, r.out, "! missing closing \" after the path\n")
	r.typeLine(t, ":upload: "+missing+" bad\x1bname")
	waitOutput(t, r.out, "! upload: user name")
	r.typeLine(t, ":online:")
	if q := fc.next(); q != (wire.Online{Token: testToken}) {
		t.Fatalf("server got %#v, want only the :online: query (no BEGINF, no CMD <get ack>)", q)
	}
}

func TestUploadProtocol(t *testing.T) {
	s := startFake(t)
	c, fc := loggedIn(t, s, "alice")
	r := startRun(t, c, Options{Target: "bob", NoTimestamps: true})
	fc.expectCarbons()
	data := append([]byte("ENDF "+testToken+" \r\n"), randomBytes(300<<10, 7)...)
	p := writeTestFile(t, t.TempDir(), "x y.bin", data)

	r.typeLine(t, ":upload: "+p+" carol")
	q := fc.next()
	if q != (wire.Upload{Name: "x y.bin", Target: "carol", Size: int64(len(data)), Token: testToken}) {
		t.Fatalf("got %#v", q)
	}
	fc.send(wire.Proceed{})
	got := make([]byte, len(data))
	if _, err := io.ReadFull(fc.r, got); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("data: %v, equal %v", err, bytes.Equal(got, data))
	}
	if q := fc.next(); q != (wire.UploadEnd{Token: testToken}) {
		t.Fatalf("got %#v", q)
	}
	fc.send(wire.Relay{Target: "alice", Sender: "bob", Text: "meanwhile"}) // a message before the verdict
	fc.send(wire.Notice{Text: wire.NoticeUploadComplete})
	waitOutput(t, r.out, "bob: meanwhile\nupload complete: x y.bin to carol\n")

	// STOP: no data follows, the next query is the next command.
	r.typeLine(t, ":upload: "+p)
	if q := fc.next(); q.(wire.Upload).Target != "bob" {
		t.Fatalf("got %#v", q)
	}
	fc.send(wire.Stop{Reason: "file too large"})
	waitOutput(t, r.out, "! upload refused: file too large\n")
	r.typeLine(t, ":online:")
	if q := fc.next(); q != (wire.Online{Token: testToken}) {
		t.Fatalf("got %#v after STOP, want the next command", q)
	}

	// The server reports a problem after the data.
	r.typeLine(t, ":upload: "+p)
	fc.next()
	fc.send(wire.Proceed{})
	io.ReadFull(fc.r, got)
	fc.next()
	fc.send(wire.Notice{Text: wire.NoticeProblem})
	waitOutput(t, r.out, "! upload of x y.bin to bob failed: the server reported a problem\n")
}

func TestDownloadChecksumMismatch(t *testing.T) {
	s := startFake(t)
	c, fc := loggedIn(t, s, "bob")
	dl := t.TempDir()
	r := startRun(t, c, Options{Target: "alice", NoTimestamps: true, Downloads: dl})
	fc.expectCarbons()
	r.typeLine(t, ":download:")
	if q := fc.next(); q != (wire.Get{Ack: true, Token: testToken}) {
		t.Fatalf("got %#v", q)
	}
	sum := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
	bad, good := []byte("corrupted on the way"), []byte("fine")
	fc.send(wire.Relay{Target: "bob", Sender: "alice", Text: "before"})
	fc.send(wire.Begin{Count: 3})
	for _, f := range []struct {
		name string
		data []byte
		sum  string
		id   string
	}{
		{"notes.txt", bad, sum([]byte("what was sent")), "0000000000000001aaaaaaaa"},
		{"../../etc/\x1b[31mgood\u202e.txt", good, sum(good), "0000000000000002aaaaaaaa"},
		{"..", nil, sum(nil), "0000000000000003aaaaaaaa"},
	} {
		fc.send(wire.FileHeader{Name: f.name, Size: int64(len(f.data)), Sender: "alice", SHA256: f.sum, ID: f.id})
		fc.tc.Write(f.data)
		fc.send(wire.FileEnd{})
	}
	fc.send(wire.Notice{Text: wire.NoticeSendComplete})
	fc.send(wire.Relay{Target: "bob", Sender: "alice", Text: "after"})
	waitOutput(t, r.out, "alice: before\n! notes.txt from alice: checksum mismatch, kept on the server\n"+
		"saved [31mgood.txt from alice (4 B, sha256 ok) -> "+filepath.Join(dl, "[31mgood.txt")+"\n"+
		"saved file from alice (0 B, sha256 ok) -> "+filepath.Join(dl, "file")+"\n"+
		"downloaded 2 files, 1 file kept on the server\nalice: after\n")
	// Confirmations only for the good files.
	for _, id := range []string{"0000000000000002aaaaaaaa", "0000000000000003aaaaaaaa"} {
		if q := fc.next(); q != (wire.AckFile{ID: id, Token: testToken}) {
			t.Fatalf("got %#v, want ACKF %s", q, id)
		}
	}
	r.typeLine(t, ":online:")
	if q := fc.next(); q != (wire.Online{Token: testToken}) {
		t.Fatalf("got %#v", q)
	}
	sameFiles(t, dl, map[string][]byte{"[31mgood.txt": good, "file": nil})
}

func TestDownloadRounds(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 101 files")
	}
	s := startRelay(t)
	signUp(t, s, "alice", "bob")
	src := t.TempDir()
	want := map[string][]byte{}
	var paths []string
	for i := range wire.MaxFilesPerGet + 1 {
		name := fmt.Sprintf("f%03d.txt", i)
		want[name] = []byte(name)
		paths = append(paths, writeTestFile(t, src, name, want[name]))
	}
	uploadAll(t, s, "alice", "bob", paths...)
	dl := t.TempDir()
	out := &relaytest.SyncBuffer{}
	if err := Download(t.Context(), s.join(t, "bob", false), dl, TransferOptions{Out: out}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(out.String(), "downloaded 101 files\n") {
		t.Errorf("output ends %q", out.String()[max(0, len(out.String())-100):])
	}
	sameFiles(t, dl, want)
}

func TestProgressBars(t *testing.T) {
	s := startRelay(t)
	signUp(t, s, "bob")
	p := writeTestFile(t, t.TempDir(), "big.bin", randomBytes(3<<20, 8))

	// Plain mode: the bar is the last line of the progress writer.
	bars := &relaytest.SyncBuffer{}
	alice := startRun(t, s.join(t, "alice", true), Options{Target: "bob", NoTimestamps: true, Progress: bars})
	alice.typeLine(t, ":upload: "+p)
	waitOutput(t, alice.out, "upload complete: big.bin to bob\n")
	if b := bars.String(); !strings.Contains(b, "\rbig.bin ") || !strings.Contains(b, "100%") || !strings.HasSuffix(b, "\r"+escClearEOL) {
		t.Errorf("plain bars: %q", b)
	}
	if strings.Contains(alice.out.String(), "%") {
		t.Errorf("a bar reached the output: %q", alice.out.String())
	}
	alice.in.Close()
	alice.wait(t)

	// Terminal mode: frames go on the bar's line above the prompt, drawn
	// through the terminal (which redraws the prompt line below them).
	bars = &relaytest.SyncBuffer{}
	r := startRun(t, s.join(t, "alice", false), Options{Target: "bob", Terminal: true, Width: 100, Height: 30, Progress: bars})
	waitOutput(t, r.out, "bob> ")
	r.in.Write([]byte(":upload: " + p + "\r"))
	waitOutput(t, r.out, "upload complete: big.bin to bob")
	if o := r.out.String(); !strings.Contains(o, escUp+"\rbig.bin ") || !strings.Contains(o, "100%") {
		t.Errorf("terminal bars: %q", o)
	}
	if bars.String() != "" {
		t.Errorf("terminal mode wrote to the progress writer: %q", bars.String())
	}
	if o := r.out.String(); !strings.Contains(o, escUp+"\r"+escClearEOL) {
		t.Errorf("the bar's line was not removed: %q", o)
	}

	// A one-shot download with bars.
	bars = &relaytest.SyncBuffer{}
	out := &relaytest.SyncBuffer{}
	if err := Download(t.Context(), s.join(t, "bob", false), t.TempDir(), TransferOptions{Out: out, Progress: bars}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(bars.String(), "100%") || strings.Contains(out.String(), "%") {
		t.Errorf("bars %q, output %q", bars.String(), out.String())
	}
}

func TestParseUploadArg(t *testing.T) {
	dir := t.TempDir()
	spaced := writeTestFile(t, dir, "my file.txt", nil)
	plain := writeTestFile(t, dir, "plain.txt", nil)
	home, _ := os.UserHomeDir()
	for _, tt := range []struct {
		arg, path, to, err string
	}{
		{plain, plain, "bob", ""},
		{plain + " carol", plain, "carol", ""},
		{spaced, spaced, "bob", ""},
		{spaced + " carol", spaced, "carol", ""},
		{`"` + spaced + `"`, spaced, "bob", ""},
		{`'` + spaced + `'  carol `, spaced, "carol", ""},
		{filepath.Join(dir, "missing file_txt"), filepath.Join(dir, "missing"), "file_txt", ""},
		{filepath.Join(dir, "missing file.txt"), "", "", wire.ErrUserName.Error()}, // no such file, nor such user
		{"~/x.txt", filepath.Join(home, "x.txt"), "bob", ""},
		{"", "", "", "usage"},
		{`"unterminated`, "", "", "missing closing"},
		{`"" bob`, "", "", "usage"},
	} {
		path, to, err := parseUploadArg(tt.arg, "bob")
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseUploadArg(%q) = %v, want %q", tt.arg, err, tt.err)
			}
			continue
		}
		if err != nil || path != tt.path || to != tt.to {
			t.Errorf("parseUploadArg(%q) = %q, %q, %v; want %q, %q", tt.arg, path, to, err, tt.path, tt.to)
		}
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1: "1 B", 999: "999 B", 1000: "1.0 KB", 12 << 10: "12 KB",
		1_200_000: "1.2 MB", 8 << 20: "8.4 MB", 999_999: "1.0 MB", 1 << 30: "1.1 GB"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// With CMD <get ack> the server sends the messages that arrived during a
// file right after it: the chat shows them in place and the download goes
// on; the one-shot download skips them as it skips every message.
func TestDownloadMessagesBetweenFiles(t *testing.T) {
	sum := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
	one, two := []byte("first file"), []byte("second file")
	script := func(fc *fakeConn) {
		fc.send(wire.Begin{Count: 2})
		fc.send(wire.FileHeader{Name: "one.txt", Size: int64(len(one)), Sender: "alice", SHA256: sum(one), ID: "0000000000000001aaaaaaaa"})
		fc.tc.Write(one)
		fc.send(wire.FileEnd{})
		fc.send(wire.Relay{Target: "bob", Sender: "carol", Text: "between the files"})
		fc.send(wire.Carbon{Target: "dave", Sender: "bob", Text: "sent meanwhile"})
		fc.send(wire.FileHeader{Name: "two.txt", Size: int64(len(two)), Sender: "alice", SHA256: sum(two), ID: "0000000000000002aaaaaaaa"})
		fc.tc.Write(two)
		fc.send(wire.FileEnd{})
		fc.send(wire.Notice{Text: wire.NoticeSendComplete})
	}

	t.Run("chat", func(t *testing.T) {
		s := startFake(t)
		c, fc := loggedIn(t, s, "bob")
		dl := t.TempDir()
		r := startRun(t, c, Options{Target: "alice", NoTimestamps: true, Downloads: dl})
		fc.expectCarbons()
		r.typeLine(t, ":download:")
		if q := fc.next(); q != (wire.Get{Ack: true, Token: testToken}) {
			t.Fatalf("got %#v", q)
		}
		script(fc)
		waitOutput(t, r.out, "saved one.txt from alice (10 B, sha256 ok) -> "+filepath.Join(dl, "one.txt")+"\n"+
			"carol: between the files\nyou → dave (other session): sent meanwhile\n"+
			"saved two.txt from alice (11 B, sha256 ok) -> "+filepath.Join(dl, "two.txt")+"\n"+
			"downloaded 2 files\n")
		sameFiles(t, dl, map[string][]byte{"one.txt": one, "two.txt": two})
	})

	t.Run("one-shot", func(t *testing.T) {
		s := startFake(t)
		c, fc := loggedIn(t, s, "bob")
		dl := t.TempDir()
		done := make(chan error, 1)
		go func() { done <- Download(t.Context(), c, dl, TransferOptions{}) }()
		if q := fc.next(); q != (wire.Get{Ack: true, Token: testToken}) {
			t.Fatalf("got %#v", q)
		}
		script(fc)
		for range 2 {
			if _, ok := fc.next().(wire.AckFile); !ok {
				t.Fatal("want ACKF")
			}
		}
		if q := fc.next(); q != (wire.Quit{Token: testToken}) {
			t.Fatalf("got %#v", q)
		}
		fc.send(wire.End{Reason: wire.ReasonEndAccepted})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		sameFiles(t, dl, map[string][]byte{"one.txt": one, "two.txt": two})
	})
}

// TestFileErrorsHideTemporaryNames checks that an error from putting a
// downloaded file in place (a link or rename names our temporary file)
// is shown without the temporary file's name.
func TestFileErrorsHideTemporaryNames(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, tempPrefix+"123"+partSuffix)
	for _, err := range []error{
		&os.LinkError{Op: "link", Old: tmp, New: filepath.Join(dir, "a.txt"), Err: syscall.EIO},
		&os.LinkError{Op: "rename", Old: tmp, New: filepath.Join(dir, "a.txt"), Err: syscall.EXDEV},
		&fs.PathError{Op: "sync", Path: tmp, Err: syscall.EIO},
	} {
		if got := hideTempName(err).Error(); strings.Contains(got, tempPrefix) || strings.Contains(got, dir) {
			t.Errorf("%v shown as %q", err, got)
		}
	}
}
