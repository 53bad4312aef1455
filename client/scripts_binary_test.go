package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"sslmessager/internal/relay"
	"sslmessager/internal/relay/relaytest"
)

// Issue 9, item 2: a script's input is never lost or misread, and its exit
// status says whether every line was delivered.
func TestClientBinaryScriptsCannotLoseInput(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildClient(t)
	s := startServer(t)
	args := func(extra ...string) []string {
		return append([]string{"--server", s.Addr, "--ca", s.CAFile, "--no-timestamps"}, extra...)
	}
	alice := []string{"SSLM_PASSWORD=pw-of-alice", "SSLM_USER=alice"}
	if out, errOut, code := runOnce(t, bin, "", alice, args("--signup", "--to", "bob")...); code != 0 {
		t.Fatalf("sign-up: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	bob := startProc(t, bin, []string{"SSLM_PASSWORD=pw-of-bob"}, args("--user", "bob", "--signup", "--to", "alice")...)
	bob.waitOutput(t, "signed up and logged in as bob")
	s.waitOnline(t, "bob")

	t.Run("no target", func(t *testing.T) {
		for _, to := range [][]string{nil, {"--to", "bad name"}, {"--to", "help"}} {
			out, errOut, code := runOnce(t, bin, "bob\nhello bob\n", alice, args(to...)...)
			if code != 2 || !strings.Contains(errOut, "--to") || strings.Contains(out, "logged in") {
				t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 naming --to, before logging in", to, code, out, errOut)
			}
		}
		if strings.Contains(bob.stdout.String(), "hello bob") {
			t.Error("a line reached bob")
		}
	})

	t.Run("every line delivered", func(t *testing.T) {
		out, errOut, code := runOnce(t, bin, "hi bob\n:online:\n", alice, args("--to", "bob")...)
		if code != 0 {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		bob.waitOutput(t, "alice: hi bob\n")
		s.waitOnline(t, "bob")
	})

	t.Run("undelivered lines fail, in order", func(t *testing.T) {
		input := "to nobody\n:status:\n" + strings.Repeat("x", 4001) + "\n:new_target: bad.name\n:new_target: bob\nto bob\n:bogus:\n:status:\n"
		out, errOut, code := runOnce(t, bin, input, alice, args("--to", "carol")...)
		if code != 1 || !strings.Contains(errOut, "error: 4 input lines were not delivered") {
			t.Fatalf("exit %d, stderr %q, want exit 1 and 4 lines not delivered; stdout:\n%s", code, errOut, out)
		}
		// The local answers come in input order with the server's.
		wantOrder := []string{
			"! carol is not online\n",
			"status: user alice, target carol,",
			"! message not sent: 4001 characters",
			"! target unchanged: ",
			"target: bob\n",
			"unknown command :bogus:",
			"status: user alice, target bob,",
		}
		at := 0
		for _, w := range wantOrder {
			i := strings.Index(out[at:], w)
			if i < 0 {
				t.Fatalf("stdout lacks %q after byte %d (or has it out of order):\n%s", w, at, out)
			}
			at += i + len(w)
		}
		bob.waitOutput(t, "alice: to bob\n")
		s.waitOnline(t, "bob")
	})

	t.Run("send reads stdin", func(t *testing.T) {
		out, errOut, code := runOnce(t, bin, "hi from a pipe\n", alice, args("send", "--to", "bob")...)
		if code != 0 || !strings.Contains(out, "sent to bob") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		bob.waitOutput(t, "alice: hi from a pipe\n")
		_, errOut, code = runOnce(t, bin, "", alice, args("send", "--to", "bob")...)
		if code != 1 || !strings.Contains(errOut, "no text") {
			t.Fatalf("empty stdin: exit %d, stderr %q", code, errOut)
		}
		_, errOut, code = runOnce(t, bin, strings.Repeat("y", 4001), alice, args("send", "--to", "bob")...)
		if code != 1 || !strings.Contains(errOut, "the limit is 4000") {
			t.Fatalf("long stdin: exit %d, stderr %q", code, errOut)
		}
	})

	bob.stdin.Close()
	if err := bob.wait(t); err != nil {
		t.Fatalf("bob: %v, stderr %q", err, bob.stderr.String())
	}
}

// Issue 9, item 4: the password sources, as a user sets them.
func TestClientBinaryPasswordSources(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildClient(t)
	s := startServer(t)
	args := func(extra ...string) []string {
		return append([]string{"--server", s.Addr, "--ca", s.CAFile, "--user", "alice", "--to", "bob"}, extra...)
	}
	if out, errOut, code := runOnce(t, bin, "", []string{"SSLM_PASSWORD=pw-of-alice"}, args("--signup")...); code != 0 {
		t.Fatalf("sign-up: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	s.waitOnline(t)

	// What a Windows editor writes: a byte-order mark and CR LF.
	bomFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(bomFile, []byte("\ufeffpw-of-alice\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		env  []string
		args []string
	}{
		{"file with BOM and CR LF", nil, args("--password-file", bomFile)},
		{"SSLM_PASSWORD_FILE", []string{"SSLM_PASSWORD_FILE=" + bomFile}, args()},
		{"SSLM_PASSWORD with BOM and CR", []string{"SSLM_PASSWORD=\ufeffpw-of-alice\r"}, args()},
	} {
		out, errOut, code := runOnce(t, bin, "", tt.env, tt.args...)
		if code != 0 || !strings.Contains(out, "logged in as alice") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", tt.name, code, out, errOut)
		}
		s.waitOnline(t)
	}

	for _, tt := range []struct {
		env  []string
		args []string
	}{
		{[]string{"SSLM_PASSWORD=pw-of-alice"}, args("--password-file", bomFile)},
		{[]string{"SSLM_PASSWORD=pw-of-alice", "SSLM_PASSWORD_FILE=" + bomFile}, args()},
	} {
		_, errOut, code := runOnce(t, bin, "", tt.env, tt.args...)
		if code != 1 || !strings.Contains(errOut, "--password-file (or SSLM_PASSWORD_FILE)") || !strings.Contains(errOut, "and SSLM_PASSWORD are set") {
			t.Errorf("%v: exit %d, stderr %q, want both sources named", tt.env, code, errOut)
		}
	}
}

// Issue 9, item 5 (one-shot half): a download whose session the server
// ends (it shuts down) after the last file, before the client's quit, exits
// 1 with the server's reason and never reports a clean download.
func TestClientBinaryDownloadWhenServerShutsDown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildClient(t)
	log := &relaytest.SyncBuffer{}
	s := &testServer{relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) {
		c.Logger = slog.New(slog.NewTextHandler(log, nil))
	}})}
	common := []string{"--server", s.Addr, "--ca", s.CAFile}
	bob := []string{"SSLM_PASSWORD=pw-of-bob", "SSLM_USER=bob"}
	if out, errOut, code := runOnce(t, bin, "", bob, append(common, "--signup", "--to", "x")...); code != 0 {
		t.Fatalf("sign-up: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	alice := s.Dial(t)
	alice.SignUp("alice")
	alice.Upload("bob", "report.txt", []byte("the report\n"))

	// stdout is a full pipe: the client stops at its first line ("saved
	// report.txt ..."), after the server has sent everything, before the
	// client confirms the file and quits.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	size, err := unix.FcntlInt(w.Fd(), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(bytes.Repeat([]byte{'.'}, size)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	dir := t.TempDir()
	cmd := clientCmd(ctx, bin, bob, append(common, "download", "--dir", dir)...)
	var errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = w, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	relaytest.CheckFor(t, waitLimit, func() error {
		if !strings.Contains(log.String(), "file sent") {
			return errors.New("the server has not sent the file")
		}
		return nil
	})
	go s.Shutdown(ctx)
	s.waitOnline(t) // the server ended bob's session

	out, _ := io.ReadAll(r) // lets the client go on, to its end
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit = %v, want status 1; stderr %q", err, errOut.String())
	}
	stdout := strings.TrimLeft(string(out), ".")
	if !strings.Contains(errOut.String(), "error: the server closed the session: server shutting down") {
		t.Errorf("stderr %q lacks the server's reason; stdout %q", errOut.String(), stdout)
	}
	if strings.Contains(stdout, "downloaded") || strings.Contains(errOut.String(), "broken pipe") {
		t.Errorf("a clean download or a bare broken pipe was reported: stdout %q, stderr %q", stdout, errOut.String())
	}
	if !strings.Contains(stdout, "saved report.txt") {
		t.Errorf("stdout %q: the file saved is not reported", stdout)
	}
}

// Issue 9, item 5 (one-shot half): an upload whose session the server ends
// after the file is stored, before the client's quit (or before it heard
// that the file was stored), exits 1 with the server's reason.
func TestClientBinaryUploadWhenServerShutsDown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildClient(t)
	s := startServer(t)
	common := []string{"--server", s.Addr, "--ca", s.CAFile}
	for _, u := range []string{"alice", "bob"} {
		if out, errOut, code := runOnce(t, bin, "", []string{"SSLM_PASSWORD=pw-of-" + u, "SSLM_USER=" + u}, append(common, "--signup", "--to", "x")...); code != 0 {
			t.Fatalf("sign-up: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	}
	file := filepath.Join(t.TempDir(), "report.txt")
	if err := os.WriteFile(file, []byte("the report\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// stdout is a pipe with room for the first line only: the client stops
	// at "upload complete", before it quits.
	first := "uploading report.txt (11 B) to bob…\n"
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	size, err := unix.FcntlInt(w.Fd(), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(bytes.Repeat([]byte{'.'}, size-len(first))); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	cmd := clientCmd(ctx, bin, []string{"SSLM_PASSWORD=pw-of-alice", "SSLM_USER=alice"}, append(common, "upload", "--to", "bob", file)...)
	var errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = w, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	relaytest.CheckFor(t, waitLimit, func() error {
		if metas, err := s.Spool.List("bob", 10); err != nil || len(metas) != 1 {
			return fmt.Errorf("bob's queue: %v, %v", metas, err)
		}
		return nil
	})
	go s.Shutdown(ctx)
	s.waitOnline(t)

	out, _ := io.ReadAll(r)
	err = cmd.Wait()
	stdout := strings.TrimLeft(string(out), ".")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit = %v, want status 1; stdout %q, stderr %q", err, stdout, errOut.String())
	}
	if !strings.Contains(errOut.String(), "error: the server closed the session: server shutting down") {
		t.Errorf("stderr %q lacks the server's reason; stdout %q", errOut.String(), stdout)
	}
	// The file may be stored before the server could say so: then the
	// session ends before "upload complete".
	if stdout != first+"upload complete: report.txt to bob\n" && stdout != first {
		t.Errorf("stdout %q", stdout)
	}
}
