package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sslmessager/internal/offline"
	"sslmessager/internal/relay/relaytest"
)

// TestClientBinaryOfflineMessages: the one-shot send to a user who is
// offline exits 0 and says the message was queued; that user's chat
// then shows it as sent earlier, and a second log-in with the same
// --config-dir does not show it again.
func TestClientBinaryOfflineMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildClient(t)
	s := &testServer{relaytest.Start(t, relaytest.Options{Offline: &offline.Options{}})}
	config := t.TempDir()
	env := func(user string) []string {
		return []string{"SSLM_PASSWORD=pw-of-" + user, "SSLM_CONFIG_DIR=" + config}
	}
	common := []string{"--server", s.Addr, "--ca", s.CAFile}
	for _, u := range []string{"alice", "carol"} {
		if _, errOut, code := runOnce(t, bin, "", env(u), append(common, "--user", u, "--signup", "--to", "nobody")...); code != 0 {
			t.Fatalf("sign-up of %s: exit %d, %s", u, code, errOut)
		}
	}
	out, errOut, code := runOnce(t, bin, "", env("alice"), append(common, "--user", "alice", "send", "--to", "carol", "see", "you", "at", "3")...)
	if code != 0 || out != "queued for carol (offline)\n" {
		t.Fatalf("send to carol (offline): exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	_, errOut, code = runOnce(t, bin, "", env("alice"), append(common, "--user", "alice", "send", "--to", "nobody", "hi")...)
	if code != 1 || !strings.Contains(errOut, "error: nobody is not online") {
		t.Fatalf("send to nobody: exit %d, stderr %q", code, errOut)
	}

	carol := startProc(t, bin, env("carol"), append(common, "--user", "carol", "--to", "alice")...)
	carol.waitOutput(t, "] alice: see you at 3\n")
	if !strings.Contains(carol.stdout.String(), "[sent ") {
		t.Fatalf("not shown as sent earlier:\n%s", carol.stdout.String())
	}
	carol.stdin.Close()
	if err := carol.wait(t); err != nil {
		t.Fatalf("carol: %v\n%s", err, carol.stderr.String())
	}
	entries, err := os.ReadDir(filepath.Join(config, "offline-seen"))
	if err != nil || len(entries) != 1 {
		t.Fatalf("config dir: %v, %v", entries, err)
	}
	relaytest.CheckFor(t, waitLimit, func() error {
		if n, _ := s.Offline.Pending("carol"); n != 0 {
			return fmt.Errorf("%d messages still stored for carol", n)
		}
		return nil
	})
	out, errOut, code = runOnce(t, bin, ":online:\n", env("carol"), append(common, "--user", "carol", "--to", "alice", "--no-timestamps")...)
	if code != 0 || strings.Contains(out, "see you at 3") || !strings.Contains(out, "online: carol") {
		t.Fatalf("second log-in: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
