package main

import (
	"crypto/tls"
	"path/filepath"
	"strings"
	"testing"

	"sslmessager/internal/pki"
)

// TestClientBinaryHints checks the hints of the client binary's TLS
// errors: a missing CA file sends the user to the server's operator for
// ca.pem (never to gencert, whose CA could not verify the server); a
// host-name mismatch names the hosts the certificate covers and says the
// CA is right; each error has exactly one hint.
func TestClientBinaryHints(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildClient(t)
	env := []string{"SSLM_PASSWORD=pw", "SSLM_USER=alice"}

	missing := filepath.Join(t.TempDir(), "ca.pem")
	_, errOut, code := runOnce(t, bin, "", env, "--ca", missing, "--server", "127.0.0.1:1", "send", "--to", "bob", "hi")
	want := "error: load CA certificate " + missing + ": no such file or directory (get ca.pem from the server's operator and pass it with --ca)\n"
	if code != 1 || errOut != want {
		t.Errorf("missing CA: exit %d, stderr %q, want %q", code, errOut, want)
	}

	// A server whose certificate covers only chat.example.org, dialled
	// as 127.0.0.1.
	dir := t.TempDir()
	if _, err := pki.Generate(pki.GenerateOptions{Dir: dir, Hosts: []string{"chat.example.org"}}); err != nil {
		t.Fatal(err)
	}
	cfg, err := pki.ServerTLSConfig(filepath.Join(dir, pki.ServerCertFile), filepath.Join(dir, pki.ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	_, errOut, code = runOnce(t, bin, "", env, "--ca", filepath.Join(dir, pki.CAFile), "--server", l.Addr().String(), "send", "--to", "bob", "hi")
	for _, w := range []string{`is not valid for host "127.0.0.1": it covers "chat.example.org"`, "it is signed by your CA, so --ca is right"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("host mismatch: stderr %q lacks %q", errOut, w)
		}
	}
	if code != 1 || strings.Contains(errOut, "gencert") || strings.Count(errOut, "(") != 1 || strings.Count(errOut, "\n") != 1 {
		t.Errorf("host mismatch: exit %d, stderr %q: want exit 1 and one line with one hint", code, errOut)
	}
}
