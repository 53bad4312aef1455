package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sslmessager/internal/pki"
)

// run runs the server command with args and returns its error; every case
// here fails before the server listens.
func runServer(t *testing.T, args ...string) error {
	t.Helper()
	// The data paths a test does not give land in its own directory, not
	// the source tree (a flag given twice takes the last value).
	dir := t.TempDir()
	return newApp().Run(append([]string{"server", "--listen", "127.0.0.1:0", "--log-level", "error",
		"--offline", filepath.Join(dir, "offline"), "--key-dir", filepath.Join(dir, "keys")}, args...))
}

func TestExpiredCertificateRefused(t *testing.T) {
	dir := t.TempDir()
	past := time.Now().AddDate(0, 0, -40)
	if _, err := pki.Generate(pki.GenerateOptions{Dir: dir, Hosts: []string{"127.0.0.1"}, ServerDays: 10, Now: func() time.Time { return past }}); err != nil {
		t.Fatal(err)
	}
	err := runServer(t, "--cert", filepath.Join(dir, pki.ServerCertFile), "--key", filepath.Join(dir, pki.ServerKeyFile),
		"--users", filepath.Join(dir, "users.csv"), "--spool", filepath.Join(dir, "spool"))
	if err == nil || !strings.Contains(err.Error(), "expired on") || !strings.Contains(err.Error(), "--allow-expired-cert") {
		t.Fatalf("got %v, want the expiry and the flag that overrides it", err)
	}
	t.Logf("error: %v", err)
}

func TestLimitFlagsChecked(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--signup", "maybe"}, `--signup "maybe": want open or closed`},
		{[]string{"--max-conns-per-ip", "-1"}, "--max-conns-per-ip -1: want 0 (no limit) or more"},
		{[]string{"--max-signups-per-ip", "-3"}, "--max-signups-per-ip -3"},
		{[]string{"--max-key-changes", "-1"}, "--max-key-changes -1: want 0 (no limit) or more"},
	} {
		if err := runServer(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want %q", c.args, err, c.want)
		}
	}
}
