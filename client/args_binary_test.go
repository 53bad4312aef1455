package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientBinaryArgs runs the client binary with command lines that are
// not valid: one line on stderr that names the flag or argument, exit
// status 2, no help page, before any connection is made.
func TestClientBinaryArgs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildClient(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"junk"}, `error: unexpected argument "junk"`},
		{[]string{"download", "junk"}, `error: download: unexpected argument "junk"`},
		{[]string{"download", "--dir"}, `error: --dir needs a value (see client --help)`},
		{[]string{"--bogus"}, `error: unknown flag --bogus (see client --help)`},
		{[]string{"upload", "--bogus", "a.txt"}, `error: unknown flag --bogus (see client --help)`},
		{[]string{"--signup=maybe"}, `error: --signup: "maybe" is not true or false (see client --help)`},
		{[]string{"send", "hi"}, `error: send: no target: use send --to NAME`},
		{[]string{"upload", "--to", "bob"}, `error: upload: no file: use upload --to NAME FILE...`},
	} {
		out, errOut, code := runOnce(t, bin, "", nil, c.args...)
		if code != 2 || !strings.HasPrefix(errOut, c.want) || strings.Count(errOut, "\n") != 1 || out != "" {
			t.Errorf("client %q: exit %d, stdout %q, stderr %q; want exit 2 and one line starting %q", c.args, code, out, errOut, c.want)
		}
	}
	// The server's SSLM_SIGNUP (open|closed) in the environment is none
	// of the client's business.
	if _, errOut, code := runOnce(t, bin, "", []string{"SSLM_SIGNUP=closed"}, "send", "hi"); code != 2 || strings.Contains(errOut, "signup") {
		t.Errorf("with SSLM_SIGNUP=closed: exit %d, %q", code, errOut)
	}
	out, errOut, code := runOnce(t, bin, "", nil, "--version")
	if code != 0 || !strings.HasPrefix(out, "client version ") || !strings.Contains(out, ", go1.") {
		t.Errorf("--version: exit %d, %q %q", code, out, errOut)
	}
}

// TestClientBinaryFlagsAfterArgs checks that a command's flags and the
// global ones may follow its arguments, and that "--" keeps an argument
// that looks like a flag.
func TestClientBinaryFlagsAfterArgs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildClient(t)
	s := startServer(t)
	common := []string{"--server", s.Addr, "--ca", s.CAFile}
	if out, errOut, code := runOnce(t, bin, "", []string{"SSLM_PASSWORD=pw-of-bob"}, append(common, "--user", "bob", "--signup", "--to", "x")...); code != 0 {
		t.Fatalf("sign-up: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	src := t.TempDir()
	report := filepath.Join(src, "report.pdf")
	dashed := filepath.Join(src, "-v")
	for _, p := range []string{report, dashed} {
		if err := os.WriteFile(p, []byte("contents of "+filepath.Base(p)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// client upload report.pdf --to bob, with the global --user and
	// --signup after the command too.
	args := append([]string{"upload", "report.pdf", "--to", "bob", "--user", "alice", "--signup"}, common...)
	args = append(args, "--", "-v")
	cmd := clientCmd(t.Context(), bin, []string{"SSLM_PASSWORD=pw-of-alice"}, args...)
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("upload report.pdf --to bob: %v\n%s", err, out)
	}
	dir := t.TempDir()
	out, errOut, code := runOnce(t, bin, "", []string{"SSLM_PASSWORD=pw-of-bob"}, append([]string{"download", "--user", "bob", "--dir", dir}, common...)...)
	if code != 0 {
		t.Fatalf("download: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, name := range []string{"report.pdf", "-v"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != "contents of "+name {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
}
