package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sslmessager/internal/pki"
)

// unsetEnv removes key for the duration of the test (t.Setenv restores it).
func unsetEnv(t *testing.T, key string) {
	t.Helper()
	t.Setenv(key, "")
	os.Unsetenv(key)
}

func runApp(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := newApp()
	app.Writer = &out
	app.ErrWriter = &errOut
	err := app.Run(append([]string{"gencert"}, args...))
	return out.String(), errOut.String(), err
}

func TestGencertCreatesRefusesAndForces(t *testing.T) {
	unsetEnv(t, "SSLM_CERT_DIR")
	unsetEnv(t, "SSLM_CERT_HOSTS")
	dir := filepath.Join(t.TempDir(), "certs")
	out, _, err := runApp(t, "--dir", dir)
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	t.Log("\n" + out)
	for _, name := range []string{pki.CAFile, pki.CAKeyFile, pki.ServerCertFile, pki.ServerKeyFile} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s missing: %v", name, err)
		}
		if !strings.Contains(out, p) {
			t.Errorf("output does not mention %s", p)
		}
	}
	if strings.Count(out, "SHA256:") != 2 {
		t.Errorf("output should show two SHA256 fingerprints:\n%s", out)
	}
	for _, want := range []string{`"localhost"`, `"127.0.0.1"`, `"::1"`, "expires", "client --ca"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	before, _ := os.ReadFile(filepath.Join(dir, pki.CAFile))

	_, _, err = runApp(t, "--dir", dir)
	if err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("second run: err = %v, want a hint about --force", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, pki.CAFile)); !bytes.Equal(before, after) {
		t.Fatal("failed run modified ca.pem")
	}

	out, _, err = runApp(t, "--dir", dir, "--force")
	if err != nil {
		t.Fatalf("--force: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, pki.CAFile)); bytes.Equal(before, after) {
		t.Fatal("--force did not replace ca.pem")
	}
	if !strings.Contains(out, "Created a new local CA") {
		t.Errorf("--force output:\n%s", out)
	}
}

func TestGencertReusesCAAndCustomHosts(t *testing.T) {
	unsetEnv(t, "SSLM_CERT_HOSTS")
	dir := t.TempDir()
	t.Setenv("SSLM_CERT_DIR", dir)
	if _, _, err := runApp(t); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, pki.ServerCertFile))
	os.Remove(filepath.Join(dir, pki.ServerKeyFile))
	out, _, err := runApp(t, "--host", "chat.example.org, 203.0.113.7", "--server-days", "30")
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out)
	if !strings.Contains(out, "existing local CA") || !strings.Contains(out, `"chat.example.org"`) || !strings.Contains(out, `"203.0.113.7"`) {
		t.Errorf("output:\n%s", out)
	}
	if strings.Contains(out, filepath.Join(dir, pki.CAKeyFile)) {
		t.Error("reuse output lists ca.key as written")
	}
}

func TestGencertRejectsBadInput(t *testing.T) {
	unsetEnv(t, "SSLM_CERT_HOSTS")
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--dir", dir, "--host", "bad host"},
		{"--dir", dir, "--host", "a,,b"},
		{"--dir", dir, "extra"},
		{"--dir", dir, "--no-such-flag"},
	} {
		if _, _, err := runApp(t, args...); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("bad input wrote %d files", len(entries))
	}
}
