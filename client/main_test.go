package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// clientEnv lists every environment variable the client reads.
var clientEnv = []string{
	"SSLM_SERVER", "SSLM_CA", "SSLM_USER", "SSLM_PASSWORD_FILE", "SSLM_PASSWORD",
	"SSLM_SIGNUP", "SSLM_TO", "SSLM_NO_COLOR", "SSLM_NO_TIMESTAMPS", "NO_COLOR", "SSLM_DOWNLOADS",
}

// cleanEnv unsets the client's environment for this test.
func cleanEnv(t *testing.T) {
	t.Helper()
	for _, k := range clientEnv {
		t.Setenv(k, "") // restores the old value after the test
		os.Unsetenv(k)
	}
}

// runApp runs the app with stdin from a string (not a terminal).
func runApp(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := newApp()
	app.Reader = strings.NewReader(stdin)
	app.Writer, app.ErrWriter = &out, &out
	err := app.Run(append([]string{"client"}, args...))
	return out.String(), err
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFlagAndCredentialRules(t *testing.T) {
	missingCA := filepath.Join(t.TempDir(), "no-ca.pem")
	pwFile := writeFile(t, "file-password\r\nsecond line\n")
	emptyFile := writeFile(t, "\n")
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string
	}{
		{"stray argument", nil, []string{"--user", "alice", "bob"}, `unexpected argument "bob"`},
		{"two password sources", map[string]string{"SSLM_PASSWORD": "x"},
			[]string{"--to", "bob", "--user", "alice", "--password-file", pwFile}, "both --password-file"},
		{"two password sources from env", map[string]string{"SSLM_PASSWORD": "x", "SSLM_PASSWORD_FILE": pwFile},
			[]string{"--to", "bob", "--user", "alice"}, "both --password-file"},
		{"no user when piped", map[string]string{"SSLM_PASSWORD": "x"}, []string{"--to", "bob"}, "no user: use --user or SSLM_USER"},
		{"no password when piped", nil, []string{"--to", "bob", "--user", "alice"}, "no password: use --password-file or SSLM_PASSWORD"},
		{"empty password file", nil, []string{"--to", "bob", "--user", "alice", "--password-file", emptyFile}, "first line is empty"},
		{"missing password file", nil, []string{"--to", "bob", "--user", "alice", "--password-file", missingCA}, "password file"},
		{"empty server", map[string]string{"SSLM_PASSWORD": "x"}, []string{"--to", "bob", "--user", "a", "--server", ""}, "--server is empty"},
		// Past every check, the client reaches for the CA file: proof that
		// the credentials were accepted.
		{"password from env", map[string]string{"SSLM_PASSWORD": "x", "SSLM_USER": "alice"},
			[]string{"--to", "bob", "--ca", missingCA}, "load CA certificate"},
		{"password from file", nil, []string{"--to", "bob", "--user", "alice", "--password-file", pwFile, "--ca", missingCA}, "load CA certificate"},
		// With stdin from a pipe, a chat needs --to (exit status 2).
		{"chat without target when piped", map[string]string{"SSLM_PASSWORD": "x"}, []string{"--user", "a"}, "no target: with input from a pipe"},
		{"send without target", map[string]string{"SSLM_PASSWORD": "x"}, []string{"--user", "a", "send", "hi"}, "no target"},
		{"send without text", map[string]string{"SSLM_PASSWORD": "x"}, []string{"--user", "a", "send", "--to", "bob"}, "no text"},
		{"send with two targets", map[string]string{"SSLM_PASSWORD": "x"},
			[]string{"--user", "a", "--to", "carol", "send", "--to", "bob", "hi"}, "conflicting targets"},
		{"send too long", map[string]string{"SSLM_PASSWORD": "x"},
			[]string{"--user", "a", "send", "--to", "bob", strings.Repeat("x", 4001)}, "the limit is 4000"},
		{"send checks credentials", nil, []string{"--user", "a", "send", "--to", "bob", "hi"}, "no password"},
		{"send ok up to the CA", map[string]string{"SSLM_PASSWORD": "x"},
			[]string{"--user", "a", "--ca", missingCA, "--to", "bob", "send", "hi"}, "load CA certificate"},
		{"upload without target", map[string]string{"SSLM_PASSWORD": "x"}, []string{"--user", "a", "upload", pwFile}, "upload: no target"},
		{"upload without files", map[string]string{"SSLM_PASSWORD": "x"}, []string{"--user", "a", "upload", "--to", "bob"}, "upload: no file"},
		{"upload of a missing file", nil, []string{"--user", "a", "upload", "--to", "bob", missingCA}, "cannot upload " + missingCA + ": no such file"},
		{"upload of a directory", nil, []string{"--user", "a", "upload", "--to", "bob", filepath.Dir(missingCA)}, "is a directory"},
		{"upload with two targets", map[string]string{"SSLM_PASSWORD": "x"},
			[]string{"--user", "a", "--to", "carol", "upload", "--to", "bob", pwFile}, "conflicting targets"},
		{"upload ok up to the CA", map[string]string{"SSLM_PASSWORD": "x"},
			[]string{"--user", "a", "--ca", missingCA, "upload", "--to", "bob", pwFile}, "load CA certificate"},
		{"download with an argument", map[string]string{"SSLM_PASSWORD": "x"}, []string{"--user", "a", "download", "dir"}, "--dir DIR"},
		{"download checks credentials", nil, []string{"--user", "a", "download"}, "no password"},
		{"download ok up to the CA", map[string]string{"SSLM_PASSWORD": "x", "SSLM_DOWNLOADS": t.TempDir()},
			[]string{"--user", "a", "--ca", missingCA, "download"}, "load CA certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			out, err := runApp(t, "", tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q (output %q)", err, tt.wantErr, out)
			}
		})
	}
}

func TestReadPasswordFile(t *testing.T) {
	for content, want := range map[string]string{
		"pw\n":          "pw",
		"pw\r\n":        "pw",
		"pw":            "pw",
		"p w\nsecond\n": "p w",
	} {
		got, err := readPasswordFile(writeFile(t, content))
		if err != nil || got != want {
			t.Errorf("readPasswordFile(%q) = %q, %v; want %q", content, got, err, want)
		}
	}
}

func TestHelpHasExamples(t *testing.T) {
	cleanEnv(t)
	out, err := runApp(t, "", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Examples:", "SSLM_PASSWORD=", "| ", "send --to bob", "--password-file", "$SSLM_SERVER", "NO_COLOR",
		"upload --to bob report.pdf", "download --dir", ":upload: PATH [NAME]", ":download:", ":fingerprint:", ":verify: NAME", ":trust: NAME", ":plaintext: NAME", ":plain_group: TEXT", "--downloads DIR", "$SSLM_DOWNLOADS", `default: "./downloads"`} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func TestHelpHasNoComingSoon(t *testing.T) {
	cleanEnv(t)
	for _, args := range [][]string{{"--help"}, {"upload", "--help"}, {"download", "--help"}} {
		out, err := runApp(t, "", args...)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "coming soon") {
			t.Errorf("%v: help says coming soon", args)
		}
	}
}
