package messenger

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

// partFiles returns the sizes of the temporary files of downloads in dir.
func partFiles(t *testing.T, dir string) []int64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int64
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) && strings.HasSuffix(e.Name(), partSuffix) {
			if fi, err := e.Info(); err == nil {
				sizes = append(sizes, fi.Size())
			}
		}
	}
	return sizes
}

// waitPart waits until dir holds one temporary file of exactly n bytes
// and nothing else was named.
func waitPart(t *testing.T, dir string, n int64) {
	t.Helper()
	relaytest.CheckFor(t, 30*time.Second, func() error {
		if p := partFiles(t, dir); len(p) != 1 || p[0] != n {
			return fmt.Errorf("temporary files %v, want one of %d bytes", p, n)
		}
		return nil
	})
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tempPrefix) {
			t.Fatalf("%s named before the upload ended", e.Name())
		}
	}
}

// pushingRecipient runs bob's chat session (which asks for pushes) saving
// into a fresh directory, and waits until the server has his PUSH.
func pushingRecipient(t *testing.T, s *relayServer) (*running, string) {
	t.Helper()
	dir := t.TempDir()
	bob := startRun(t, s.join(t, "bob", true), Options{Target: "alice", Downloads: dir})
	bob.typeLine(t, ":ping:") // answered after the PUSH before it
	waitOutput(t, bob.out, "pong from server")
	return bob, dir
}

// startUpload has alice (a protocol client we can pause) begin a sized
// upload to bob and send its first n bytes.
func startUpload(t *testing.T, s *relayServer, data []byte, n int) *relaytest.Client {
	t.Helper()
	alice := s.Dial(t)
	alice.SignUp("alice")
	alice.Send(wire.Upload{Name: "big.bin", Target: "bob", Size: int64(len(data)), Token: alice.Token})
	alice.Expect(wire.Proceed{})
	alice.Conn.SetWriteDeadline(time.Now().Add(60 * time.Second))
	if _, err := alice.Conn.Write(data[:n]); err != nil {
		t.Fatal(err)
	}
	return alice
}

// finishUpload sends the rest and wants the upload acknowledged.
func finishUpload(t *testing.T, alice *relaytest.Client, rest []byte) {
	t.Helper()
	alice.Conn.SetWriteDeadline(time.Now().Add(60 * time.Second))
	if _, err := alice.Conn.Write(rest); err != nil {
		t.Fatal(err)
	}
	alice.Send(wire.UploadEnd{Token: alice.Token})
	alice.Conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	alice.Expect(wire.Notice{Text: wire.NoticeUploadComplete})
}

// A 64 MiB file uploaded to bob while his chat session runs is streamed:
// with the sender paused mid-file, bob already holds exactly what was sent
// in a temporary file and has named nothing; after the rest it is saved
// byte-exact, confirmed, and the server's queue is empty.
func TestStreamedFileReachesOnlineRecipient(t *testing.T) {
	s := startRelay(t)
	bob, dir := pushingRecipient(t, s)
	size, first := 64<<20, 24<<20
	if testing.Short() {
		size, first = 4<<20, 1<<20+3
	}
	data := randomBytes(size, 64)
	alice := startUpload(t, s, data, first)
	waitPart(t, dir, int64(first))
	finishUpload(t, alice, data[first:])
	waitOutput(t, bob.out, "saved big.bin from alice")
	sameFiles(t, dir, map[string][]byte{"big.bin": data})
	relaytest.CheckFor(t, waitLimit, func() error {
		if n := s.Spool.Queued("bob"); n != 0 {
			return fmt.Errorf("%d files queued for bob after his confirmation", n)
		}
		return nil
	})
	bob.typeLine(t, ":quit:")
	if err := bob.wait(t); err != nil {
		t.Fatal(err)
	}
}

// A sender that breaks off mid-way leaves nothing: no file queued on the
// server, nothing named and no temporary file at the recipient, whose
// session goes on.
func TestStreamedUploadBreaksOff(t *testing.T) {
	s := startRelay(t)
	bob, dir := pushingRecipient(t, s)
	data := randomBytes(8<<20, 65)
	alice := startUpload(t, s, data, 3<<20)
	waitPart(t, dir, 3<<20)
	alice.Conn.Close()
	waitOutput(t, bob.out, "big.bin from alice: the upload broke off")
	sameFiles(t, dir, map[string][]byte{})
	if p := partFiles(t, dir); len(p) != 0 {
		t.Fatalf("temporary files left: %v", p)
	}
	relaytest.CheckFor(t, waitLimit, func() error {
		if n := s.Spool.Queued("bob"); n != 0 {
			return fmt.Errorf("%d files queued for bob", n)
		}
		return nil
	})
	if m, err := s.Spool.List("bob", 0); err != nil || len(m) != 0 {
		t.Fatalf("queued after the break: %v, %v", m, err)
	}
	bob.typeLine(t, ":ping:")
	waitOutput(t, bob.out, "pong from server in")
}

// The one-shot download, asked while an upload to the user is under way,
// waits for it and saves it with the queued files.
func TestOneShotDownloadStreamsUploadUnderWay(t *testing.T) {
	s := startRelay(t)
	signUp(t, s, "bob")
	data := randomBytes(2<<20, 66)
	alice := startUpload(t, s, data, 1<<20)
	dir := t.TempDir()
	c := s.join(t, "bob", false)
	out := &relaytest.SyncBuffer{}
	done := make(chan error, 1)
	go func() { done <- Download(context.Background(), c, dir, TransferOptions{Out: out}) }()
	waitPart(t, dir, 1<<20)
	finishUpload(t, alice, data[1<<20:])
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Download: %v\n%s", err, out)
		}
	case <-time.After(waitLimit):
		t.Fatalf("Download did not return:\n%s", out)
	}
	sameFiles(t, dir, map[string][]byte{"big.bin": data})
	if !strings.Contains(out.String(), "downloaded 1 file") {
		t.Fatalf("output:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "big.bin")); err != nil {
		t.Fatal(err)
	}
}
