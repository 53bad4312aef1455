package main

import (
	"errors"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestLoadgenBinaryArgs runs the loadgen binary with command lines that
// are not valid: one line on stderr, exit status 2; flags after a
// scenario's name are read; --version prints the version line.
func TestLoadgenBinaryArgs(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "loadgen")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"dm", "junk"}, `error: unexpected argument "junk" (see loadgen --help)`},
		{[]string{"dm", "--clients", "x"}, `error: --clients: "x" is not a whole number (see loadgen --help)`},
		{[]string{"--timeout", "soon", "dm"}, `error: --timeout: "soon" is not a duration, use e.g. 15s or 1m (see loadgen --help)`},
		{[]string{"dm", "--nope"}, `error: unknown flag --nope (see loadgen --help)`},
	} {
		cmd := exec.Command(bin, c.args...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || stderr.String() != c.want+"\n" || stdout.String() != "" {
			t.Errorf("loadgen %q: %v, stdout %q, stderr %q; want exit 2 and %q", c.args, err, stdout.String(), stderr.String(), c.want)
		}
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "loadgen version ") {
		t.Errorf("--version: %v, %q", err, out)
	}
}
