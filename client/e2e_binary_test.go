package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sslmessager/internal/keydir"
	"sslmessager/internal/offline"
	"sslmessager/internal/relay/relaytest"
)

// TestClientBinaryE2E: client processes against a server with a key
// directory. A one-shot send to an offline user goes end to end (the
// server stores no plaintext) and the recipient's chat opens it; keys
// export and keys import move alice's identity to a second configuration
// directory (another device): the same safety-number half there, and
// what bob sends then opens on it without a key-change warning;
// importing twice, or with a wrong export passphrase, fails; --e2e=require
// refuses a user without a key (an original client).
func TestClientBinaryE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildClient(t)
	s := &testServer{relaytest.Start(t, relaytest.Options{Offline: &offline.Options{}, Keys: &keydir.Options{}})}
	deviceA, deviceB, bobDir := t.TempDir(), t.TempDir(), t.TempDir()
	env := func(user, config string, more ...string) []string {
		return append([]string{"SSLM_PASSWORD=pw-of-" + user, "SSLM_CONFIG_DIR=" + config}, more...)
	}
	common := []string{"--server", s.Addr, "--ca", s.CAFile, "--no-timestamps"}
	run := func(stdin string, env []string, args ...string) (string, string, int) {
		t.Helper()
		return runOnce(t, bin, stdin, env, append(append([]string{}, common...), args...)...)
	}
	for _, u := range []struct{ name, dir string }{{"alice", deviceA}, {"bob", bobDir}} {
		if _, errOut, code := run("", env(u.name, u.dir), "--user", u.name, "--signup", "--to", "nobody"); code != 0 {
			t.Fatalf("sign-up of %s: exit %d, %s", u.name, code, errOut)
		}
	}
	out, errOut, code := run("", env("alice", deviceA), "--user", "alice", "send", "--to", "bob", "hello", "encrypted")
	if code != 0 || out != "queued for bob (offline)\n" {
		t.Fatalf("send: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	filepath.WalkDir(s.Dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(path); bytes.Contains(b, []byte("hello encrypted")) {
				t.Errorf("%s holds the plaintext", path)
			}
		}
		return nil
	})
	out, errOut, code = run(":fingerprint:\n", env("bob", bobDir), "--user", "bob", "--to", "alice")
	if code != 0 || !strings.Contains(out, "] alice: hello encrypted\n") {
		t.Fatalf("bob's chat: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// Export from device A, import on device B.
	export := filepath.Join(t.TempDir(), "alice.keys")
	xp := "SSLM_EXPORT_PASSPHRASE=correct horse battery"
	out, errOut, code = run("", env("alice", deviceA, xp), "--user", "alice", "keys", "export", export)
	if code != 0 || !strings.Contains(out, "exported the end-to-end identity") {
		t.Fatalf("keys export: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if fi, err := os.Stat(export); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("export file: %v, %v", fi, err)
	}
	if b, _ := os.ReadFile(export); !bytes.HasPrefix(b, []byte("-----BEGIN AGE ENCRYPTED FILE-----")) {
		t.Fatalf("export file starts %q", b[:min(len(b), 40)])
	}
	if _, errOut, code = run("", env("alice", deviceB, "SSLM_EXPORT_PASSPHRASE=wrong"), "--user", "alice", "keys", "import", export); code != 1 || !strings.Contains(errOut, "wrong export passphrase") {
		t.Fatalf("import with a wrong passphrase: exit %d, stderr %q", code, errOut)
	}
	if out, errOut, code = run("", env("alice", deviceB, xp), "--user", "alice", "keys", "import", export); code != 0 {
		t.Fatalf("keys import: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, errOut, code = run("", env("alice", deviceB, xp), "--user", "alice", "keys", "import", export); code != 1 || !strings.Contains(errOut, "already holds an identity") {
		t.Fatalf("second import: exit %d, stderr %q", code, errOut)
	}
	half := regexp.MustCompile(`\n  (\d{5}( \d{5}){5})\n`)
	outA, _, _ := run(":fingerprint:\n", env("alice", deviceA), "--user", "alice", "--to", "bob")
	outB, errB, _ := run(":fingerprint:\n", env("alice", deviceB), "--user", "alice", "--to", "bob")
	fa, fb := half.FindStringSubmatch(outA), half.FindStringSubmatch(outB)
	if fa == nil || fb == nil || fa[1] != fb[1] {
		t.Fatalf("fingerprints differ:\n%s\n---\n%s\n%s", outA, outB, errB)
	}
	if out, errOut, code = run("", env("bob", bobDir), "--user", "bob", "send", "--to", "alice", "to", "the", "new", "device"); code != 0 || strings.Contains(out, "[plain]") {
		t.Fatalf("bob's send: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, errOut, code = run("", env("alice", deviceB), "--user", "alice", "--to", "bob")
	if code != 0 || !strings.Contains(out, "] bob: to the new device\n") || strings.Contains(out, "changed") {
		t.Fatalf("alice on device B: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// An original client has no key: require refuses, prefer tags.
	olga := s.Dial(t)
	olga.SignUp("olga")
	if _, errOut, code = run("", env("alice", deviceA), "--user", "alice", "--e2e=require", "send", "--to", "olga", "hi"); code != 1 || !strings.Contains(errOut, "olga has no end-to-end key, and --e2e=require refuses plaintext") {
		t.Fatalf("require: exit %d, stderr %q", code, errOut)
	}
	if out, errOut, code = run("", env("alice", deviceA), "--user", "alice", "send", "--to", "olga", "hi"); code != 0 || out != "sent to olga [plain]\n" {
		t.Fatalf("prefer: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
