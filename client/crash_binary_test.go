package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"sslmessager/internal/relay/relaytest"
)

// stallProxy forwards TCP connections to a server unchanged (TLS passes
// through), but stops passing the server's bytes to the client after
// limit of them, so that a download is caught in the middle, however fast
// the machine. A connection ends when either side closes.
type stallProxy struct {
	addr  string
	limit int64
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func startStallProxy(t *testing.T, server string, limit int64) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{addr: ln.Addr().String(), limit: limit, ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", server)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			clientGone := make(chan struct{})
			p.wg.Add(2)
			go func() { // client to server: everything
				defer p.wg.Done()
				io.Copy(s, c)
				close(clientGone)
				c.Close()
				s.Close()
			}()
			go func() { // server to client: limit bytes, then nothing
				defer p.wg.Done()
				io.Copy(c, io.LimitReader(s, p.limit))
				// The server's further writes wait in the socket
				// buffers until the client end closes.
				<-clientGone
			}()
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *stallProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// TestClientBinaryKilledInDownload: the client is killed (SIGKILL) in the
// middle of downloading a 32 MiB file, with the data half written to its
// .part file; run again, it removes the stale .part file and saves the
// file exactly once, byte for byte, and the server's queue is empty.
func TestClientBinaryKilledInDownload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildClient(t)
	s := startServer(t)
	args := func(addr string, extra ...string) []string {
		return append([]string{"--server", addr, "--ca", s.CAFile}, extra...)
	}
	alice := []string{"SSLM_PASSWORD=pw-of-alice", "SSLM_USER=alice"}
	bob := []string{"SSLM_PASSWORD=pw-of-bob", "SSLM_USER=bob"}
	for _, env := range [][]string{alice, bob} {
		if out, errOut, code := runOnce(t, bin, "", env, args(s.Addr, "--signup", "--to", "x")...); code != 0 {
			t.Fatalf("sign-up: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	}
	s.waitOnline(t)

	const size = 32 << 20
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{32}).Read(data)
	src := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := runOnce(t, bin, "", alice, args(s.Addr, "upload", "--to", "bob", src)...); code != 0 {
		t.Fatalf("upload: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	s.waitOnline(t)
	queued := func() []string {
		q, err := filepath.Glob(filepath.Join(s.Dir, "spool", "bob", "*.data"))
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	if q := queued(); len(q) != 1 {
		t.Fatalf("bob's queue holds %v, want the one file", q)
	}

	dir := filepath.Join(t.TempDir(), "in")
	// Through the proxy the client gets 8 MiB of the file, then nothing.
	proxy := startStallProxy(t, s.Addr, 8<<20)
	p := startProc(t, bin, bob, args(proxy.addr, "download", "--dir", dir)...)
	var part atomic.Value
	relaytest.CheckFor(t, waitLimit, func() error {
		parts, _ := filepath.Glob(filepath.Join(dir, ".sslm-*.part"))
		for _, name := range parts {
			if st, err := os.Stat(name); err == nil && st.Size() > 0 {
				part.Store(name)
				return nil
			}
		}
		return fmt.Errorf("no .part file with data in %s yet; stdout:\n%s\nstderr:\n%s", dir, p.stdout.String(), p.stderr.String())
	})
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if err := p.wait(t); !errors.As(err, &ee) {
		t.Fatalf("client ended with %v, want killed; stdout:\n%s", err, p.stdout.String())
	} else if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("client ended with %v, want killed by SIGKILL", err)
	}
	if st, err := os.Stat(part.Load().(string)); err != nil || st.Size() >= size {
		t.Fatalf("the .part file after the kill: %v, %v; want part of the data", st, err)
	}
	proxy.close()
	s.waitOnline(t) // the server noticed bob's end
	if q := queued(); len(q) != 1 {
		t.Fatalf("after the kill bob's queue holds %v, want the file", q)
	}

	out, errOut, code := runOnce(t, bin, "", bob, args(s.Addr, "download", "--dir", dir)...)
	if code != 0 {
		t.Fatalf("download after the kill: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, line := range []string{
		"removed 1 unfinished file left by an earlier download\n",
		"saved big.bin from alice (34 MB, sha256 ok) -> " + filepath.Join(dir, "big.bin") + "\n",
		"downloaded 1 file\n",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("stdout lacks %q:\n%s", line, out)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		switch name := e.Name(); {
		case name == "big.bin", name == ".sslm-received-bob":
		default:
			t.Errorf("%s left in the download directory", name)
		}
	}
	if got, err := os.ReadFile(filepath.Join(dir, "big.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("big.bin: %v, identical %v", err, bytes.Equal(got, data))
	}
	s.waitOnline(t)
	if q := queued(); len(q) != 0 {
		t.Errorf("bob's queue still holds %v", q)
	}
	out, errOut, code = runOnce(t, bin, "", bob, args(s.Addr, "download", "--dir", dir)...)
	if code != 0 || out != "no files waiting\n" {
		t.Fatalf("third download: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
