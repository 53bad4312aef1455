package main

import (
	"bytes"
	"crypto/rand"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sslmessager/internal/keydir"
	"sslmessager/internal/offline"
	"sslmessager/internal/relay/relaytest"
)

// TestClientBinaryE2EFiles: the client binary's one-shot upload seals a
// file to a user with a key (the server's disk holds neither the name nor
// the contents), and the recipient's one-shot download, which never saw
// the sender's key before, saves it under its real name, byte-exact;
// --e2e=require refuses a file to an original client.
func TestClientBinaryE2EFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildClient(t)
	s := &testServer{relaytest.Start(t, relaytest.Options{Offline: &offline.Options{}, Keys: &keydir.Options{}})}
	aliceDir, bobDir := t.TempDir(), t.TempDir()
	env := func(user, config string) []string {
		return []string{"SSLM_PASSWORD=pw-of-" + user, "SSLM_CONFIG_DIR=" + config}
	}
	common := []string{"--server", s.Addr, "--ca", s.CAFile, "--no-timestamps"}
	run := func(env []string, args ...string) (string, string, int) {
		t.Helper()
		return runOnce(t, bin, "", env, append(append([]string{}, common...), args...)...)
	}
	for _, u := range []struct{ name, dir string }{{"alice", aliceDir}, {"bob", bobDir}} {
		if _, errOut, code := run(env(u.name, u.dir), "--user", u.name, "--signup", "--to", "nobody"); code != 0 {
			t.Fatalf("sign-up of %s: exit %d, %s", u.name, code, errOut)
		}
	}
	data := make([]byte, 300_000)
	rand.Read(data)
	copy(data[1000:], "MARKER-in-the-contents-91b2")
	src := filepath.Join(t.TempDir(), "Quarterly-Plan.pdf")
	os.WriteFile(src, data, 0o600)
	out, errOut, code := run(env("alice", aliceDir), "--user", "alice", "upload", "--to", "bob", src)
	if code != 0 || !strings.Contains(out, "to bob [e2e]") || !strings.Contains(out, "upload complete") {
		t.Fatalf("upload: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	filepath.WalkDir(s.Dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(path)
			if bytes.Contains(b, []byte("MARKER-in-the-contents-91b2")) || bytes.Contains(b, []byte("Quarterly")) {
				t.Errorf("%s holds the file's name or contents", path)
			}
		}
		return nil
	})
	dl := t.TempDir()
	out, errOut, code = run(env("bob", bobDir), "--user", "bob", "download", "--dir", dl)
	if code != 0 || !strings.Contains(out, "end-to-end encrypted, authenticated") {
		t.Fatalf("download: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if got, err := os.ReadFile(filepath.Join(dl, "Quarterly-Plan.pdf")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("saved file: %v (%d bytes)", err, len(got))
	}

	olga := s.Dial(t)
	olga.SignUp("olga")
	out, errOut, code = run(env("alice", aliceDir), "--user", "alice", "--e2e=require", "upload", "--to", "olga", src)
	if code != 1 || !strings.Contains(errOut, "olga has no end-to-end key, and --e2e=require refuses plaintext") {
		t.Fatalf("require: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
