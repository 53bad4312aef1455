package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runServerBinary runs the server binary with args in a fresh directory
// and returns its exit status and output; it must exit within the test's
// time (every case here is refused before the server starts).
func runServerBinary(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(serverBinary(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SSLM_USERS="+filepath.Join(dir, "users.csv"))
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee):
		if _, serr := os.Stat(filepath.Join(dir, "users.csv")); serr == nil {
			t.Errorf("%q: users.csv created before the command line was checked", args)
		}
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("%q: %v", args, err)
	return 0, "", ""
}

// TestServerArgs runs the server binary with command lines that are not
// valid: each is one line on stderr naming the flag or argument, exit
// status 2, and no help page.
func TestServerArgs(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"junk"}, `error: unexpected argument "junk" (see server --help)`},
		{[]string{"--listen", "127.0.0.1:0", "junk", "--max-conns", "5"}, `error: unexpected argument "junk" (see server --help)`},
		{[]string{"--check-interval", "banana"}, `error: --check-interval: "banana" is not a duration, use e.g. 15s or 1m (see server --help)`},
		{[]string{"--max-conns", "lots"}, `error: --max-conns: "lots" is not a whole number (see server --help)`},
		{[]string{"--max-file-size", "big"}, `error: --max-file-size: "big" is not a size, use e.g. 512KiB, 10MB or 1GiB (see server --help)`},
		{[]string{"--max-file-size", "-1"}, `error: --max-file-size: "-1" is not a size`},
		{[]string{"--max-file-size", "0"}, `error: --max-file-size 0: want a size of 1 byte or more`},
		{[]string{"--quota", "0"}, `error: --quota 0: want a size of 1 byte or more`},
		{[]string{"--max-queue", "0"}, `error: --max-queue 0: want a size of 1 byte or more`},
		{[]string{"--check-interval", "0s"}, `error: --check-interval 0s: want a duration of more than 0`},
		{[]string{"--login-timeout", "-5s"}, `error: --login-timeout -5s: want a duration of more than 0`},
		{[]string{"--write-timeout", "0"}, `error: --write-timeout 0s: want a duration of more than 0`},
		{[]string{"--first-byte-timeout", "0"}, `error: --first-byte-timeout 0s`},
		{[]string{"--failed-login-window", "0"}, `error: --failed-login-window 0s`},
		{[]string{"--login-backoff-max", "-1m"}, `error: --login-backoff-max -1m0s`},
		{[]string{"--max-conns", "0"}, `error: --max-conns 0: want 1 or more`},
		{[]string{"--max-sessions-per-user", "-1"}, `error: --max-sessions-per-user -1: want 1 or more`},
		{[]string{"--max-conns-per-ip", "-1"}, `error: --max-conns-per-ip -1: want 0 (no limit) or more`},
		{[]string{"--hash-cost", "0"}, `error: --hash-cost 0: want 4 to 31`},
		{[]string{"--no-such-flag"}, `error: unknown flag --no-such-flag (see server --help)`},
		{[]string{"--max-conns"}, `error: --max-conns needs a value (see server --help)`},
		{[]string{"admin"}, `error: admin: want a COMMAND (server admin help lists them)`},
	} {
		code, stdout, stderr := runServerBinary(t, c.args...)
		if code != 2 || !strings.HasPrefix(stderr, c.want) || strings.Count(stderr, "\n") != 1 || stdout != "" {
			t.Errorf("server %q: exit %d, stdout %q, stderr %q; want exit 2 and one line starting %q", c.args, code, stdout, stderr, c.want)
		}
	}
}

// TestServerHelpPlaceholders checks that --help says what each value is.
func TestServerHelpPlaceholders(t *testing.T) {
	code, stdout, _ := runServerBinary(t, "--help")
	if code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for _, want := range []string{"--max-file-size SIZE", "--quota SIZE", "--max-queue SIZE", "--check-interval DURATION",
		"--login-timeout DURATION", "--max-conns N", "--max-conns-per-ip N", "--log-level LEVEL", "(default: 1GiB)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--help does not show %q", want)
		}
	}
}

// TestVersion checks server --version: name, version, commit and Go
// version, on one line.
func TestVersion(t *testing.T) {
	code, stdout, stderr := runServerBinary(t, "--version")
	if code != 0 || !strings.HasPrefix(stdout, "server version ") || !strings.Contains(stdout, ", commit ") ||
		!strings.Contains(stdout, ", go1.") || strings.Count(stdout, "\n") != 1 {
		t.Errorf("--version: exit %d, %q %q", code, stdout, stderr)
	}
}

// TestSizeFromConfigFile checks that a size in the --config file takes a
// unit or a plain number, and that a size that is not one is refused
// naming the setting.
func TestSizeFromConfigFile(t *testing.T) {
	for content, want := range map[string]int64{
		"max-file-size: 10MB\n":    10_000_000,
		"max-file-size: 512KiB\n":  512 << 10,
		"max-file-size: 1048576\n": 1 << 20,
		"max-queue: 1GiB\n":        -1,
	} {
		cc, err := parseAgain([]string{"server", "--config", writeConfig(t, "s.yaml", content)})
		if err != nil {
			t.Fatalf("%q: %v", content, err)
		}
		if want == -1 {
			if got := cc.Generic("max-queue").(interface{ Get() any }).Get(); got != int64(1<<30) {
				t.Errorf("%q: max-queue %v", content, got)
			}
			continue
		}
		if got := cc.Generic("max-file-size").(interface{ Get() any }).Get(); got != want {
			t.Errorf("%q: max-file-size %v, want %d", content, got, want)
		}
	}
	_, err := parseAgain([]string{"server", "--config", writeConfig(t, "s.yaml", "max-file-size: lots\n")})
	if err == nil || !strings.Contains(err.Error(), `max-file-size: "lots" is not a size`) {
		t.Errorf("max-file-size: lots: %v", err)
	}
	// The command line beats the file.
	cc, err := parseAgain([]string{"server", "--config", writeConfig(t, "s.yaml", "max-file-size: 1MB\n"), "--max-file-size", "2MB"})
	if err != nil || cc.Generic("max-file-size").(interface{ Get() any }).Get() != int64(2_000_000) {
		t.Errorf("flag over file: %v", err)
	}
}

// TestMissingCertHintOnce checks that a missing server certificate is one
// error line with one hint (it used to carry two).
func TestMissingCertHintOnce(t *testing.T) {
	code, _, stderr := runServerBinary(t, "--listen", "127.0.0.1:0", "--cert", "none.pem")
	if code != 1 || !strings.HasPrefix(stderr, "error: load server certificate none.pem: no such file or directory (") ||
		strings.Count(stderr, "gencert") != 1 || strings.Count(stderr, "(") != 1 {
		t.Errorf("missing certificate: exit %d, %q", code, stderr)
	}
}

// TestMakeRunServerLoopback checks that make run-server listens on
// loopback only, as the README says, and that CI checks go mod tidy.
func TestMakeRunServerLoopback(t *testing.T) {
	data, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	_, recipe, _ := strings.Cut(string(data), "\nrun-server:")
	recipe, _, _ = strings.Cut(recipe, "\n\n")
	if !strings.Contains(recipe, "$(BIN)/server --listen 127.0.0.1:18443 ") {
		t.Errorf("run-server does not listen on 127.0.0.1:18443:%s", recipe)
	}
	ci, err := os.ReadFile("../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ci), "go mod tidy -diff") {
		t.Errorf(".ci/run does not check go mod tidy")
	}
}
