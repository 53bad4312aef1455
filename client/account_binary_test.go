package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The account commands, ping and mute through the real binary with stdin
// from a pipe: passwords are read as input lines, the mute list goes to
// $XDG_CONFIG_HOME/sslm unless --config-dir says otherwise.
func TestClientBinaryAccountCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildClient(t)
	s := startServer(t)
	xdg := t.TempDir()
	env := []string{"SSLM_PASSWORD=pw-of-alice", "XDG_CONFIG_HOME=" + xdg}
	args := func(extra ...string) []string {
		return append([]string{"--server", s.Addr, "--ca", s.CAFile, "--user", "alice", "--to", "bob"}, extra...)
	}

	out, errOut, code := runOnce(t, bin, ":mute: bob\n:ping:\n", env, args("--signup")...)
	if code != 0 || !strings.Contains(out, "muted bob") || !strings.Contains(out, "pong from server in ") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	muteFile := filepath.Join(xdg, "sslm", "muted-"+strings.ReplaceAll(s.Addr, ":", "_")+"-alice")
	if b, err := os.ReadFile(muteFile); err != nil || string(b) != "bob\n" {
		t.Fatalf("mute file %s: %q, %v", muteFile, b, err)
	}

	other := t.TempDir()
	out, errOut, code = runOnce(t, bin, ":mute:\n:passwd:\npw-of-alice\nnew-pw-of-alice\nnew-pw-of-alice\n", env, args("--config-dir", other)...)
	if code != 0 || !strings.Contains(out, "nobody is muted") || !strings.Contains(out, "password changed") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if strings.Contains(out, "new-pw-of-alice") {
		t.Fatalf("the new password is in the output: %q", out)
	}

	newEnv := slices.Concat([]string{"SSLM_PASSWORD=new-pw-of-alice"}, env[1:])
	out, errOut, code = runOnce(t, bin, ":mute:\n:delete_account:\nnew-pw-of-alice\nnever sent\n", newEnv, args()...)
	if code != 0 || !strings.Contains(out, "muted: bob") || !strings.Contains(out, "account alice deleted; goodbye") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, ok := s.Accounts.Lookup("alice"); ok {
		t.Fatal("the account is still there")
	}
	_, errOut, code = runOnce(t, bin, "", newEnv, args("send", "hi")...)
	if code != 1 || !strings.Contains(errOut, "incorrect username or password") {
		t.Fatalf("log-in after the deletion: exit %d, stderr %q", code, errOut)
	}
}
