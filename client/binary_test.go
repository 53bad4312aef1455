package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"sslmessager/internal/pki"
	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

// waitLimit bounds every wait in these tests.
const waitLimit = 20 * time.Second

// testServer is a real relay on 127.0.0.1:0.
type testServer struct{ *relaytest.Server }

func startServer(t *testing.T) *testServer {
	t.Helper()
	return &testServer{relaytest.Start(t, relaytest.Options{})}
}

func (s *testServer) waitOnline(t *testing.T, want ...string) {
	t.Helper()
	relaytest.CheckFor(t, waitLimit, func() error {
		if got := s.Online(); !slices.Equal(got, want) {
			return fmt.Errorf("online is %v, want %v", got, want)
		}
		return nil
	})
}

// buildClient builds this package's binary with go build.
func buildClient(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "client")
	cmd := exec.Command(goTool, "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is a running client process with piped stdin and captured output.
type proc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *relaytest.SyncBuffer
	stderr *relaytest.SyncBuffer
	done   chan error
}

// clientCmd prepares the binary with a clean environment plus env.
func clientCmd(ctx context.Context, bin string, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SSLM_") && !strings.HasPrefix(kv, "NO_COLOR=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

func startProc(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: clientCmd(context.Background(), bin, env, args...), stdout: &relaytest.SyncBuffer{}, stderr: &relaytest.SyncBuffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.stdin.Close()
		select {
		case <-p.done:
		case <-time.After(waitLimit):
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *proc) waitOutput(t *testing.T, want string) {
	t.Helper()
	relaytest.CheckFor(t, waitLimit, func() error {
		if s := p.stdout.String(); !strings.Contains(s, want) {
			return fmt.Errorf("stdout does not hold %q; it is:\n%s\nstderr:\n%s", want, s, p.stderr.String())
		}
		return nil
	})
}

func (p *proc) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		return err
	case <-time.After(waitLimit):
		t.Fatalf("client did not exit; stdout:\n%s\nstderr:\n%s", p.stdout.String(), p.stderr.String())
		return nil
	}
}

// runOnce runs the client to completion with stdin and returns its output
// and exit code.
func runOnce(t *testing.T, bin, stdin string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	cmd := clientCmd(ctx, bin, env, args...)
	var o, e bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("run client: %v", err)
	}
	return o.String(), e.String(), code
}

func TestClientBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildClient(t)
	s := startServer(t)
	common := []string{"--server", s.Addr, "--ca", s.CAFile}
	args := func(extra ...string) []string { return append(slices.Clone(common), extra...) }

	// bob chats interactively over a pipe, password from the environment.
	bob := startProc(t, bin, []string{"SSLM_PASSWORD=pw-of-bob"}, args("--user", "bob", "--signup", "--to", "alice", "--no-timestamps")...)
	bob.waitOutput(t, "signed up and logged in as bob")
	s.waitOnline(t, "bob")

	t.Run("send", func(t *testing.T) {
		out, errOut, code := runOnce(t, bin, "", []string{"SSLM_PASSWORD=pw-of-alice"},
			args("--user", "alice", "--signup", "send", "--to", "bob", "hello", "from", "send")...)
		if code != 0 || !strings.Contains(out, "sent to bob") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		bob.waitOutput(t, "alice: hello from send\n")
	})

	t.Run("send to someone offline", func(t *testing.T) {
		pwFile := filepath.Join(t.TempDir(), "pw")
		os.WriteFile(pwFile, []byte("pw-of-alice\n"), 0o600)
		_, errOut, code := runOnce(t, bin, "", nil, args("--user", "alice", "--password-file", pwFile, "send", "--to", "carol", "hi")...)
		if code != 1 || !strings.Contains(errOut, "error: carol is not online") {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})

	t.Run("scripted chat", func(t *testing.T) {
		s.waitOnline(t, "bob")
		out, errOut, code := runOnce(t, bin, "hi bob\n:online:\n:status:\n",
			[]string{"SSLM_PASSWORD=pw-of-alice", "SSLM_USER=alice", "SSLM_TO=bob"}, args()...)
		if code != 0 {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		for _, want := range []string{"logged in as alice", "online: alice bob\n", "status: user alice, target bob, group chat off"} {
			if !strings.Contains(out, want) {
				t.Errorf("stdout lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "\x1b[") {
			t.Errorf("colour on a pipe: %q", out)
		}
		bob.waitOutput(t, "alice: hi bob\n")
		s.waitOnline(t, "bob")
	})

	t.Run("group chat", func(t *testing.T) {
		// carol joins the group and bob switches it on; carol's group
		// message reaches bob.
		carol := startProc(t, bin, []string{"SSLM_PASSWORD=pw-of-carol"}, args("--user", "carol", "--signup", "--to", "bob")...)
		carol.waitOutput(t, "logged in as carol")
		io.WriteString(bob.stdin, ":toggle:\n:online:\n")
		bob.waitOutput(t, "group chat on\n")
		bob.waitOutput(t, "online: bob carol\n")
		io.WriteString(carol.stdin, ":toggle:\nhello group\n")
		bob.waitOutput(t, "[group] carol: hello group\n")
		io.WriteString(bob.stdin, ":toggle:\n")
		bob.waitOutput(t, "group chat off\n")
		carol.stdin.Close()
		if err := carol.wait(t); err != nil {
			t.Fatalf("carol: %v, stderr %q", err, carol.stderr.String())
		}
		s.waitOnline(t, "bob")
	})

	t.Run("refusals exit 1", func(t *testing.T) {
		for _, tt := range []struct {
			env  []string
			args []string
			want string
		}{
			{[]string{"SSLM_PASSWORD=not-the-password"}, args("--user", "alice"), "error: log-in refused: incorrect username or password"},
			{[]string{"SSLM_PASSWORD=pw-of-alice"}, args("--user", "alice", "--signup"), "error: sign-up refused: username already taken"},
			{[]string{"SSLM_PASSWORD=pw-of-alice"}, []string{"--server", s.Addr, "--ca", filepath.Join(t.TempDir(), "none.pem"), "--user", "alice"}, "error: load CA certificate"},
			{nil, args("--user", "alice"), "error: no password: use --password-file or SSLM_PASSWORD"},
			// Refused before anything is sent, with the server's reason.
			{[]string{"SSLM_PASSWORD=" + strings.Repeat("p", wire.MaxPasswordBytes+1)}, args("--user", "erin", "--signup"),
				"error: sign-up refused: invalid password: " + wire.ErrPassword.Error()},
			{[]string{"SSLM_PASSWORD=pw-of-erin"}, args("--user", "erin.x", "--signup"), "error: sign-up refused: invalid username: " + wire.ErrUserName.Error()},
			{[]string{"SSLM_PASSWORD=pw-of-alice"}, args("--user", "alice", "send", "--to", "help", "hi"), "error: target: " + wire.ErrReservedName.Error()},
		} {
			a := tt.args
			if !slices.Contains(a, "send") {
				a = append([]string{"--to", "bob"}, a...) // a piped chat needs a target
			}
			_, errOut, code := runOnce(t, bin, "", tt.env, a...)
			if code != 1 || !strings.Contains(errOut, tt.want) {
				t.Errorf("%v: exit %d, stderr %q, want %q", tt.args, code, errOut, tt.want)
			}
		}
	})

	t.Run("72-byte password", func(t *testing.T) {
		env := []string{"SSLM_PASSWORD=" + strings.Repeat("p", wire.MaxPasswordBytes)}
		for _, extra := range [][]string{{"--signup"}, nil} { // sign up, then log in
			out, errOut, code := runOnce(t, bin, "", env, args(append([]string{"--user", "frank"}, append(extra, "--to", "bob")...)...)...)
			if code != 0 || !strings.Contains(out, "logged in as frank") {
				t.Fatalf("%v: exit %d, stdout %q, stderr %q", extra, code, out, errOut)
			}
			s.waitOnline(t, "bob")
		}
	})

	t.Run("wrong CA", func(t *testing.T) {
		other := relaytest.Certs(t)
		_, errOut, code := runOnce(t, bin, "", []string{"SSLM_PASSWORD=pw-of-alice"},
			"--server", s.Addr, "--ca", filepath.Join(other, pki.CAFile), "--user", "alice", "--to", "bob")
		if code != 1 || !strings.Contains(errOut, "SHA256:") || !strings.Contains(errOut, "--ca") {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})

	// End of input ends bob's session cleanly.
	bob.stdin.Close()
	if err := bob.wait(t); err != nil {
		t.Fatalf("bob: %v, stderr %q", err, bob.stderr.String())
	}
	s.waitOnline(t)
}

func TestClientBinaryServerGoesAway(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildClient(t)
	s := startServer(t)
	p := startProc(t, bin, []string{"SSLM_PASSWORD=pw-of-dave"},
		"--server", s.Addr, "--ca", s.CAFile, "--user", "dave", "--signup", "--to", "bob")
	s.waitOnline(t, "dave")
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	go s.Shutdown(ctx)
	err := p.wait(t)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit = %v, want status 1", err)
	}
	if !strings.Contains(p.stdout.String(), "! server closed the session: ") || !strings.Contains(p.stderr.String(), "error: ") {
		t.Errorf("stdout %q, stderr %q", p.stdout.String(), p.stderr.String())
	}
}
