package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestGencertBinaryArgs runs the gencert binary with command lines that
// are not valid, --server-days 0 among them: one line on stderr naming
// the flag or argument, exit status 2, no file written. --version prints
// the version line.
func TestGencertBinaryArgs(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "gencert")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--server-days", "0"}, `error: --server-days 0: want 1 or more days (see gencert --help)`},
		{[]string{"--server-days", "-1"}, `error: --server-days -1: want 1 or more days (see gencert --help)`},
		{[]string{"--ca-days", "0"}, `error: --ca-days 0: want 1 or more days (see gencert --help)`},
		{[]string{"--ca-days", "ten"}, `error: --ca-days: "ten" is not a whole number (see gencert --help)`},
		{[]string{"junk"}, `error: unexpected argument "junk"; give host names with --host a,b (see gencert --help)`},
		{[]string{"--nope"}, `error: unknown flag --nope (see gencert --help)`},
	} {
		dir := t.TempDir()
		cmd := exec.Command(bin, append([]string{"--dir", dir}, c.args...)...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || stderr.String() != c.want+"\n" || stdout.String() != "" {
			t.Errorf("gencert %q: %v, stdout %q, stderr %q; want exit 2 and %q", c.args, err, stdout.String(), stderr.String(), c.want)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("gencert %q wrote %d files", c.args, len(entries))
		}
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "gencert version ") || !strings.Contains(string(out), ", go1.") {
		t.Errorf("--version: %v, %q", err, out)
	}
}
