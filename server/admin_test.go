package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sslmessager/internal/pki"
	"sslmessager/internal/wire"
)

// admin runs `server admin ARGS...` (the real binary) against st's server,
// with stdin, and returns its output and exit status.
func (st *serverState) admin(t *testing.T, stdin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(serverBinary(t), append([]string{"admin", "--users", st.users}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee):
		return out.String() + errOut.String(), ee.ExitCode()
	}
	t.Fatalf("server admin %v: %v", args, err)
	return "", -1
}

// mustAdmin runs `server admin` and wants exit status 0 and a last line
// "ok ...".
func (st *serverState) mustAdmin(t *testing.T, args ...string) []string {
	t.Helper()
	out, code := st.admin(t, "", args...)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 0 || !strings.HasPrefix(lines[len(lines)-1], "ok") {
		t.Fatalf("server admin %v: exit %d\n%s", args, code, out)
	}
	return lines
}

// dialFrom opens a TLS connection from the local address from.
func dialFrom(t *testing.T, st *serverState, addr, from string) (*tls.Conn, error) {
	cfg, err := pki.ClientTLSConfig(filepath.Join(st.certs, pki.CAFile), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// refusedAtAccept checks that a connection from from is closed without a
// byte, before any ClientHello: no handshake was started.
func refusedAtAccept(t *testing.T, addr, from string) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetReadDeadline(time.Now().Add(3 * time.Second)) // the first-byte timeout is 5 s
	n, err := raw.Read(make([]byte, 1))
	if n != 0 || !(errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
		t.Fatalf("connection from %s: read %d bytes, %v; want it closed at accept", from, n, err)
	}
}

func TestAdminBinaryAndBansSurviveRestart(t *testing.T) {
	st := newState(t)
	p := st.start(t)
	sock := filepath.Join(st.dir, "admin.sock")
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("admin socket: %v %v, want a socket of mode 0600", fi, err)
	}

	// useradd prints a password that logs in.
	lines := st.mustAdmin(t, "useradd", "alice")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "password ") || lines[1] != "ok created alice" {
		t.Fatalf("useradd: %q", lines)
	}
	alice := dial(t, st, p.addr)
	alice.login(wire.Auth{User: "alice", Pass: strings.TrimPrefix(lines[0], "password ")})
	// passwd with the password on stdin.
	if out, code := st.admin(t, "new-secret-9\n", "passwd", "alice", "-"); code != 0 || !strings.Contains(out, "ok password of alice changed: 1 sessions ended") {
		t.Fatalf("passwd -: exit %d\n%s", code, out)
	}
	if q := alice.next(); q != (wire.End{Fatal: true, Reason: "password changed by an admin"}) {
		t.Fatalf("alice got %#v", q)
	}
	alice = dial(t, st, p.addr)
	alice.login(wire.Auth{User: "alice", Pass: "new-secret-9"})
	if lines := st.mustAdmin(t, "online"); len(lines) != 2 || !strings.HasPrefix(lines[0], "alice 127.0.0.1:") {
		t.Fatalf("online: %q", lines)
	}
	st.mustAdmin(t, "kick", "alice", "be", "nice")
	if q := alice.next(); q != (wire.End{Fatal: true, Reason: "kicked: be nice"}) {
		t.Fatalf("alice got %#v", q)
	}

	// A failing command: an error line and exit status 1.
	out, code := st.admin(t, "", "unban", "nobody")
	if code != 1 || !strings.HasSuffix(out, "error: nobody is not banned\n") {
		t.Fatalf("unban nobody: exit %d\n%s", code, out)
	}
	if out, code := st.admin(t, "", "--admin-socket", filepath.Join(st.dir, "none.sock"), "online"); code != 1 || !strings.Contains(out, "is the server running?") {
		t.Fatalf("no server: exit %d\n%s", code, out)
	}

	st.mustAdmin(t, "useradd", "bob")
	st.mustAdmin(t, "ban", "bob", "spam")
	st.mustAdmin(t, "ban", "127.0.0.2")
	st.mustAdmin(t, "ban", "127.0.1.0/24", "7d", "noisy", "net")
	if lines := st.mustAdmin(t, "bans"); len(lines) != 4 {
		t.Fatalf("bans: %q", lines)
	}

	// SIGKILL leaves the socket behind; the next start replaces it.
	p.kill(t)
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("after SIGKILL: %v", err)
	}
	p = st.start(t)
	if lines := st.mustAdmin(t, "bans"); len(lines) != 4 {
		t.Fatalf("bans after a restart: %q", lines)
	}
	// bob: a right password, then the ban. (The password is the one
	// useradd generated; a wrong one would get the usual refusal, so set
	// one we know.)
	if _, code := st.admin(t, "bob-secret-1\n", "passwd", "bob", "-"); code != 0 {
		t.Fatal("passwd bob failed")
	}
	bob := dial(t, st, p.addr)
	bob.send(wire.Auth{User: "bob", Pass: "bob-secret-1"})
	if q := bob.next(); q != (wire.End{Fatal: true, Reason: "banned: spam"}) {
		t.Fatalf("banned bob got %#v", q)
	}
	refusedAtAccept(t, p.addr, "127.0.0.2")
	refusedAtAccept(t, p.addr, "127.0.1.9")
	if _, err := dialFrom(t, st, p.addr, "127.0.0.3"); err != nil {
		t.Fatalf("an address not banned: %v", err)
	}

	// A graceful stop removes the socket.
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("server exited with %v\n%s", err, p.stderr.String())
		}
	case <-time.After(waitLimit):
		t.Fatal("server did not stop")
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket after a graceful stop: %v", err)
	}
}

// A second server on the same files does not take the socket of a live one.
func TestAdminSocketInUse(t *testing.T) {
	st := newState(t)
	st.start(t)
	err := runServer(t, "--users", st.users, "--spool", filepath.Join(t.TempDir(), "spool2"),
		"--cert", filepath.Join(st.certs, pki.ServerCertFile), "--key", filepath.Join(st.certs, pki.ServerKeyFile))
	if err == nil || !strings.Contains(err.Error(), "another server is listening on the admin socket") {
		t.Fatalf("second server: %v", err)
	}
}
