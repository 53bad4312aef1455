package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"sslmessager/internal/cliflags"
)

// writeConfig writes content to a file named name in a new directory.
func writeConfig(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfigFilePrecedence reads settings from a YAML and a TOML file
// through the same parse the server runs, and checks the precedence: the
// file beats the default, the environment beats the file, a flag beats
// both.
func TestConfigFilePrecedence(t *testing.T) {
	yamlFile := writeConfig(t, "server.yaml", `
# a comment
max-conns-per-ip: 16
max-sessions-per-user: 3
login-timeout: 20s
signup: closed
max-file-size: 5MB
allow-expired-cert: true
log-level: warn
`)
	tomlFile := writeConfig(t, "server.toml", `
max-conns-per-ip = 16
max-sessions-per-user = 3
login-timeout = "20s"
signup = "closed"
max-file-size = 5000000
allow-expired-cert = true
log-level = "warn"
`)
	for _, file := range []string{yamlFile, tomlFile} {
		t.Run(filepath.Ext(file), func(t *testing.T) {
			t.Setenv("SSLM_SIGNUP", "open")           // the environment beats the file
			t.Setenv("SSLM_LISTEN", "127.0.0.1:1234") // and the default
			cc, err := parseAgain([]string{"server", "--config", file, "--max-sessions-per-user", "5"})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				name      string
				got, want any
			}{
				{"max-conns-per-ip (file)", cc.Int("max-conns-per-ip"), 16},
				{"max-sessions-per-user (flag over file)", cc.Int("max-sessions-per-user"), 5},
				{"login-timeout (file)", cc.Duration("login-timeout"), 20 * time.Second},
				{"signup (environment over file)", cc.String("signup"), "open"},
				{"max-file-size (file)", cliflags.SizeOf(cc, "max-file-size"), int64(5000000)},
				{"allow-expired-cert (file)", cc.Bool("allow-expired-cert"), true},
				{"log-level (file)", cc.String("log-level"), "warn"},
				{"listen (environment over default)", cc.String("listen"), "127.0.0.1:1234"},
				{"max-conns (default)", cc.Int("max-conns"), 50000},
			} {
				if c.got != c.want {
					t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
				}
			}
		})
	}
}

// TestConfigFileErrors checks that a bad configuration file stops the
// server before any work with one line that names the file and what is
// wrong.
func TestConfigFileErrors(t *testing.T) {
	for _, c := range []struct {
		name, file, content, want string
	}{
		{"syntax", "a.yaml", "max-conns: [1,\n", "yaml: "},
		{"toml syntax", "a.toml", "max-conns = = 3\n", "toml: "},
		{"unknown setting", "a.yaml", "max-conn: 5\n", `unknown setting "max-conn"`},
		{"config in config", "a.yaml", "config: other.yaml\n", `unknown setting "config"`},
		{"wrong type", "a.yaml", "max-conns: lots\n", "max-conns"},
		{"bad duration", "a.toml", "login-timeout = \"soon\"\n", "login-timeout"},
		{"extension", "a.ini", "max-conns=3\n", `unknown format ".ini"`},
		{"bad value", "a.yaml", "signup: maybe\n", `--signup "maybe": want open or closed`},
	} {
		path := writeConfig(t, c.file, c.content)
		dir := t.TempDir()
		err := runServer(t, "--config", path, "--users", filepath.Join(dir, "users.csv"), "--spool", filepath.Join(dir, "spool"))
		switch {
		case err == nil:
			t.Errorf("%s: the server started", c.name)
		case strings.Contains(err.Error(), "\n"):
			t.Errorf("%s: error has more than one line: %q", c.name, err)
		case !strings.Contains(err.Error(), c.want) || c.name != "bad value" && !strings.Contains(err.Error(), path):
			t.Errorf("%s: got %q, want it to name %s and %q", c.name, err, path, c.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "users.csv")); err == nil {
			t.Errorf("%s: users.csv created despite the bad configuration", c.name)
		}
	}
	if err := runServer(t, "--config", filepath.Join(t.TempDir(), "none.yaml")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
}

// TestExampleConfig checks that deploy/sslm-server.yaml is a valid
// configuration that mentions every setting, and that the values it sets
// are the defaults it claims.
func TestExampleConfig(t *testing.T) {
	const example = "../deploy/sslm-server.yaml"
	data, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range newApp().Flags {
		name := f.Names()[0]
		if name == configFlag || name == "help" {
			continue
		}
		if !regexp.MustCompile(`(?m)^(# )?` + regexp.QuoteMeta(name) + `: `).Match(data) {
			t.Errorf("%s does not mention %s", example, name)
		}
	}
	withFile, err := parseAgain([]string{"server", "--config", example})
	if err != nil {
		t.Fatal(err)
	}
	defaults, err := parseAgain([]string{"server"})
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]bool{"users": true, "spool": true, "offline": true, "keys": true, "cert": true, "key": true, configFlag: true}
	got, want := flagValues(withFile), flagValues(defaults)
	for name, v := range got {
		if !paths[name] && v != want[name] {
			t.Errorf("%s sets %s to %s; the default is %s", example, name, v, want[name])
		}
	}
}
