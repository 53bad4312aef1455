package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"sslmessager/internal/pki"
	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

// waitLimit bounds every wait in these tests.
const waitLimit = 20 * time.Second

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	binDir    string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// serverBinary builds this package's binary once per test binary.
func serverBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		if binDir, buildErr = os.MkdirTemp("", "sslm-server-test-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "server")
		if out, err := exec.Command(goTool, "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// serverState is what survives a server process: its files.
type serverState struct {
	dir, certs, users, spool string
}

func newState(t *testing.T) *serverState {
	t.Helper()
	dir := t.TempDir()
	st := &serverState{dir: dir, certs: filepath.Join(dir, "certs"), users: filepath.Join(dir, "users.csv"), spool: filepath.Join(dir, "spool")}
	if _, err := pki.Generate(pki.GenerateOptions{Dir: st.certs, Hosts: []string{"127.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	return st
}

// serverProc is a running server binary.
type serverProc struct {
	cmd    *exec.Cmd
	addr   string
	stderr *relaytest.SyncBuffer
	done   chan error
}

// start runs the server binary on st's files, listening on 127.0.0.1:0,
// and waits until it has written its address.
func (st *serverState) start(t *testing.T, extra ...string) *serverProc {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	p := &serverProc{stderr: &relaytest.SyncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(serverBinary(t),
		"--listen", "127.0.0.1:0", "--addr-file", addrFile,
		"--users", st.users, "--spool", st.spool,
		"--cert", filepath.Join(st.certs, pki.ServerCertFile), "--key", filepath.Join(st.certs, pki.ServerKeyFile),
		"--hash-cost", "4", "--log-level", "warn")
	p.cmd.Args = append(p.cmd.Args, extra...)
	p.cmd.Dir = t.TempDir() // the data paths not given (offline, key directory) land there
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.kill(t) })
	relaytest.CheckFor(t, waitLimit, func() error {
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("server exited: %v\n%s", err, p.stderr.String())
		default:
		}
		b, err := os.ReadFile(addrFile)
		if err != nil || !bytes.HasSuffix(b, []byte("\n")) {
			return fmt.Errorf("no address yet (%v)", err)
		}
		p.addr = strings.TrimSpace(string(b))
		return nil
	})
	return p
}

// kill ends the server with SIGKILL, as a crash or power cut would, and
// waits for it. Killing twice is harmless.
func (p *serverProc) kill(t *testing.T) {
	t.Helper()
	p.cmd.Process.Kill() // SIGKILL: no shutdown code runs
	select {
	case <-p.done:
		p.done <- nil
	case <-time.After(waitLimit):
		t.Fatalf("server did not die")
	}
}

// client is a minimal protocol client over real TLS, built on the wire
// package only.
type client struct {
	t     *testing.T
	conn  *tls.Conn
	r     *wire.Reader
	token string
}

func dial(t *testing.T, st *serverState, addr string) *client {
	t.Helper()
	cfg, err := pki.ClientTLSConfig(filepath.Join(st.certs, pki.CAFile), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	conn.SetDeadline(time.Now().Add(waitLimit))
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, conn: conn, r: wire.NewReader(conn, 64<<10)}
}

func (c *client) send(q wire.Query) {
	c.t.Helper()
	if _, err := c.conn.Write(wire.MustFormat(q)); err != nil {
		c.t.Fatalf("send %s: %v", q.Verb(), err)
	}
}

// next returns the next line from the server that is not a CHECK.
func (c *client) next() wire.Query {
	c.t.Helper()
	for {
		line, err := c.r.ReadLine()
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		q, err := wire.ParseServer(line)
		if err != nil {
			c.t.Fatalf("parse %q: %v", line, err)
		}
		if _, ok := q.(wire.Check); !ok {
			return q
		}
	}
}

// login sends q (AUTH or PUT) and wants ACCEPT.
func (c *client) login(q wire.Query) {
	c.t.Helper()
	c.send(q)
	a, ok := c.next().(wire.Accept)
	if !ok {
		c.t.Fatalf("%s: no ACCEPT", q.Verb())
	}
	c.token = a.Token
}

// upload sends data as a file with a declared size and wants
// CMD <upload complete>.
func (c *client) upload(to, name string, data []byte) {
	c.t.Helper()
	c.send(wire.Upload{Name: name, Target: to, Size: int64(len(data)), Token: c.token})
	if q := c.next(); q != (wire.Proceed{}) {
		c.t.Fatalf("BEGINF answered with %#v", q)
	}
	if _, err := c.conn.Write(data); err != nil {
		c.t.Fatal(err)
	}
	c.send(wire.UploadEnd{Token: c.token})
	if q := c.next(); q != (wire.Notice{Text: wire.NoticeUploadComplete}) {
		c.t.Fatalf("upload answered with %#v", q)
	}
}

// file is one downloaded file.
type file struct {
	hdr  wire.FileHeader
	data []byte
}

// download asks for the queued files and returns them.
func (c *client) download() []file {
	c.t.Helper()
	c.send(wire.Get{Ack: true, Token: c.token})
	b, ok := c.next().(wire.Begin)
	if !ok {
		c.t.Fatal("CMD <get> not answered with BEGIN")
	}
	var files []file
	for range b.Count {
		h, ok := c.next().(wire.FileHeader)
		if !ok {
			c.t.Fatal("no file header")
		}
		data := make([]byte, h.Size)
		if _, err := io.ReadFull(c.r, data); err != nil {
			c.t.Fatalf("file data: %v", err)
		}
		if q := c.next(); q != (wire.FileEnd{}) {
			c.t.Fatalf("file data not followed by its end: %#v", q)
		}
		files = append(files, file{h, data})
		c.send(wire.AckFile{ID: h.ID, Token: c.token})
	}
	if q := c.next(); q != (wire.Notice{Text: wire.NoticeSendComplete}) {
		c.t.Fatalf("download ended with %#v", q)
	}
	return files
}

// TestSignUpSurvivesKill signs up over real TLS, SIGKILLs the server as
// soon as ACCEPT arrived, restarts it on the same users.csv and logs in.
func TestSignUpSurvivesKill(t *testing.T) {
	st := newState(t)
	srv := st.start(t)
	pw := strings.Repeat("€", 18) + "pw-1" // multi-byte: 58 bytes
	if len(pw) > wire.MaxPasswordBytes {
		t.Fatalf("test password has %d bytes", len(pw))
	}
	dial(t, st, srv.addr).login(wire.SignUp{User: "Alice", Pass: pw})
	srv.kill(t)

	srv = st.start(t)
	c := dial(t, st, srv.addr)
	c.login(wire.Auth{User: "alice", Pass: pw})
	// The account is there once, not twice: signing up again is refused.
	d := dial(t, st, srv.addr)
	d.send(wire.SignUp{User: "ALICE", Pass: "another-password"})
	if _, ok := d.next().(wire.Try); !ok {
		t.Error("second sign-up of the same name not refused with TRY")
	}
}

// TestUploadSurvivesKill uploads a file, SIGKILLs the server as soon as
// CMD <upload complete> arrived, restarts it and downloads the file byte
// for byte.
func TestUploadSurvivesKill(t *testing.T) {
	st := newState(t)
	srv := st.start(t)
	bob := dial(t, st, srv.addr)
	bob.login(wire.SignUp{User: "bob", Pass: "bob-password"})
	alice := dial(t, st, srv.addr)
	alice.login(wire.SignUp{User: "alice", Pass: "alice-password"})
	data := make([]byte, 3<<20+17)
	rand.Read(data)
	bob.upload("alice", "report.bin", data)
	srv.kill(t)

	srv = st.start(t)
	alice = dial(t, st, srv.addr)
	alice.login(wire.Auth{User: "alice", Pass: "alice-password"})
	files := alice.download()
	if len(files) != 1 {
		t.Fatalf("downloaded %d files, want 1", len(files))
	}
	f := files[0]
	sum := sha256.Sum256(data)
	if !bytes.Equal(f.data, data) || f.hdr.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("file differs: %d bytes, sha256 %s", len(f.data), f.hdr.SHA256)
	}
	if f.hdr.Name != "report.bin" || f.hdr.Sender != "bob" {
		t.Errorf("header = %+v", f.hdr)
	}
	// Acknowledged, so gone: a second download is empty.
	if files := alice.download(); len(files) != 0 {
		t.Errorf("second download: %d files", len(files))
	}
}

// TestBadFlags checks that negative limits are refused, as a usage error
// (exit status 2), before any work.
func TestBadFlags(t *testing.T) {
	for _, flag := range []string{"--max-queued-files", "--spool-max", "--min-free-disk"} {
		dir := t.TempDir()
		cmd := exec.Command(serverBinary(t), flag, "-1", "--users", filepath.Join(dir, "users.csv"), "--spool", filepath.Join(dir, "spool"))
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "error: "+flag) || !strings.Contains(string(out), "-1") {
			t.Errorf("%s -1: %v, %q", flag, err, out)
		}
		if _, err := os.Stat(filepath.Join(dir, "users.csv")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s -1: users.csv created before the flags were checked", flag)
		}
	}
}

// TestQueuedFilesFlag checks that --max-queued-files reaches the spool and
// that the refused sender gets the STOP reason that names the limit, also
// after a restart.
func TestQueuedFilesFlag(t *testing.T) {
	st := newState(t)
	srv := st.start(t, "--max-queued-files", "2")
	bob := dial(t, st, srv.addr)
	bob.login(wire.SignUp{User: "bob", Pass: "bob-password"})
	dial(t, st, srv.addr).login(wire.SignUp{User: "alice", Pass: "alice-password"})
	refused := func(c *client) {
		t.Helper()
		c.send(wire.Upload{Name: "x", Target: "alice", Size: 0, Token: c.token})
		want := wire.Stop{Reason: "recipient's file queue is full (2 files)"}
		if q := c.next(); q != want {
			t.Fatalf("third upload answered with %#v, want %#v", q, want)
		}
	}
	bob.upload("alice", "one", nil)
	bob.upload("alice", "two", []byte("2"))
	refused(bob)
	srv.kill(t)

	srv = st.start(t, "--max-queued-files", "2")
	bob = dial(t, st, srv.addr)
	bob.login(wire.Auth{User: "bob", Pass: "bob-password"})
	refused(bob)
}
