package pki

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var defaultHosts = strings.Split(DefaultHosts, ",")

func mustGenerate(t *testing.T, opts GenerateOptions) Generated {
	t.Helper()
	if opts.Hosts == nil {
		opts.Hosts = defaultHosts
	}
	g, err := Generate(opts)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return g
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s: no CERTIFICATE block", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func verify(ca, leaf *x509.Certificate, host string) error {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: host})
	return err
}

func TestGenerateCreatesVerifiableChain(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	g := mustGenerate(t, GenerateOptions{Dir: dir})

	want := []string{
		filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile),
		filepath.Join(dir, ServerCertFile), filepath.Join(dir, ServerKeyFile),
	}
	if strings.Join(g.Files, "|") != strings.Join(want, "|") {
		t.Fatalf("Files = %v, want %v", g.Files, want)
	}
	if g.ReusedCA {
		t.Error("ReusedCA is true for a fresh directory")
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode: %v %v, want 0700", fi.Mode().Perm(), err)
	}
	for name, mode := range map[string]os.FileMode{CAFile: 0o644, CAKeyFile: 0o600, ServerCertFile: 0o644, ServerKeyFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s mode %v, want %v", name, fi.Mode().Perm(), mode)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 {
		t.Errorf("directory holds %d entries, want 4 (temp files left behind?)", len(entries))
	}

	ca := readCert(t, filepath.Join(dir, CAFile))
	leaf := readCert(t, filepath.Join(dir, ServerCertFile))
	if !ca.IsCA || !ca.BasicConstraintsValid || !ca.MaxPathLenZero || ca.MaxPathLen != 0 {
		t.Errorf("CA constraints wrong: IsCA=%v BCV=%v MaxPathLenZero=%v", ca.IsCA, ca.BasicConstraintsValid, ca.MaxPathLenZero)
	}
	if ca.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("CA key usage %v", ca.KeyUsage)
	}
	if ca.Subject.CommonName != "SSL-Messager local CA" || len(ca.Subject.Organization) != 1 || ca.Subject.Organization[0] != "SSL-Messager" {
		t.Errorf("CA subject %v", ca.Subject)
	}
	if leaf.IsCA || leaf.KeyUsage != x509.KeyUsageDigitalSignature ||
		len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("server usage wrong: IsCA=%v KU=%v EKU=%v", leaf.IsCA, leaf.KeyUsage, leaf.ExtKeyUsage)
	}
	if leaf.Subject.CommonName != "localhost" {
		t.Errorf("server CN %q", leaf.Subject.CommonName)
	}
	if len(leaf.DNSNames) != 1 || len(leaf.IPAddresses) != 2 {
		t.Errorf("SANs DNS=%v IP=%v", leaf.DNSNames, leaf.IPAddresses)
	}
	for _, c := range []*x509.Certificate{ca, leaf} {
		if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 {
			t.Errorf("serial %v out of range", c.SerialNumber)
		}
		if _, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || c.PublicKey.(*ecdsa.PublicKey).Curve != elliptic.P256() {
			t.Errorf("public key is not P-256: %T", c.PublicKey)
		}
	}
	if d := time.Until(ca.NotAfter) - 3650*24*time.Hour; d > time.Minute || d < -time.Minute {
		t.Errorf("CA NotAfter %v not ~3650 days away", ca.NotAfter)
	}
	if d := time.Until(leaf.NotAfter) - 825*24*time.Hour; d > time.Minute || d < -time.Minute {
		t.Errorf("server NotAfter %v not ~825 days away", leaf.NotAfter)
	}
	if d := time.Since(leaf.NotBefore) - time.Hour; d > time.Minute || d < -time.Minute {
		t.Errorf("server NotBefore %v not ~1h ago", leaf.NotBefore)
	}
	if g.CAFingerprint != Fingerprint(ca) || g.ServerFingerprint != Fingerprint(leaf) {
		t.Error("fingerprints in result do not match the files")
	}
	if !g.CANotAfter.Equal(ca.NotAfter) || !g.ServerNotAfter.Equal(leaf.NotAfter) {
		t.Error("NotAfter in result does not match the files")
	}

	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		if err := verify(ca, leaf, host); err != nil {
			t.Errorf("verify for %s: %v", host, err)
		}
	}
	for _, host := range []string{"example.org", "10.0.0.1"} {
		if err := verify(ca, leaf, host); err == nil {
			t.Errorf("verify for %s succeeded, want failure", host)
		}
	}

	for _, name := range []string{CAKeyFile, ServerKeyFile} {
		data, _ := os.ReadFile(filepath.Join(dir, name))
		block, _ := pem.Decode(data)
		if block == nil || block.Type != "PRIVATE KEY" {
			t.Fatalf("%s: not a PRIVATE KEY PEM", name)
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if ek, ok := k.(*ecdsa.PrivateKey); !ok || ek.Curve != elliptic.P256() {
			t.Errorf("%s: key is %T, want P-256 ECDSA", name, k)
		}
	}
}

func TestGenerateCustomHosts(t *testing.T) {
	dir := t.TempDir()
	mustGenerate(t, GenerateOptions{Dir: dir, Hosts: []string{"chat.example.org", "203.0.113.7", "chat.example.org"}, ServerDays: 10})
	ca := readCert(t, filepath.Join(dir, CAFile))
	leaf := readCert(t, filepath.Join(dir, ServerCertFile))
	if leaf.Subject.CommonName != "chat.example.org" || len(leaf.DNSNames) != 1 || len(leaf.IPAddresses) != 1 {
		t.Fatalf("CN=%q DNS=%v IP=%v", leaf.Subject.CommonName, leaf.DNSNames, leaf.IPAddresses)
	}
	for _, h := range []string{"chat.example.org", "203.0.113.7"} {
		if err := verify(ca, leaf, h); err != nil {
			t.Errorf("verify %s: %v", h, err)
		}
	}
	if err := verify(ca, leaf, "localhost"); err == nil {
		t.Error("certificate for chat.example.org verified for localhost")
	}
}

type snapshot map[string]struct {
	data  []byte
	mtime time.Time
}

func takeSnapshot(t *testing.T, dir string) snapshot {
	t.Helper()
	s := snapshot{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(p)
		s[e.Name()] = struct {
			data  []byte
			mtime time.Time
		}{data, fi.ModTime()}
	}
	return s
}

func sameSnapshot(t *testing.T, a, b snapshot) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("directory changed: %d entries before, %d after", len(a), len(b))
	}
	for name, x := range a {
		y, ok := b[name]
		if !ok || !bytes.Equal(x.data, y.data) || !x.mtime.Equal(y.mtime) {
			t.Errorf("%s was modified", name)
		}
	}
}

func TestGenerateRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	mustGenerate(t, GenerateOptions{Dir: dir})
	before := takeSnapshot(t, dir)

	_, err := Generate(GenerateOptions{Dir: dir, Hosts: defaultHosts})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("err = %v, want ErrExists", err)
	}
	for _, name := range []string{ServerCertFile, ServerKeyFile} {
		if !strings.Contains(err.Error(), filepath.Join(dir, name)) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	sameSnapshot(t, before, takeSnapshot(t, dir))

	// Only ca.pem present (no key): the CA would have to be recreated.
	dir2 := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir2, CAFile), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	before = takeSnapshot(t, dir2)
	_, err = Generate(GenerateOptions{Dir: dir2, Hosts: defaultHosts})
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), filepath.Join(dir2, CAFile)) {
		t.Fatalf("err = %v, want ErrExists naming ca.pem", err)
	}
	sameSnapshot(t, before, takeSnapshot(t, dir2))

	// CA present plus one server file: the server file is in the way.
	os.Remove(filepath.Join(dir, ServerKeyFile))
	before = takeSnapshot(t, dir)
	_, err = Generate(GenerateOptions{Dir: dir, Hosts: defaultHosts})
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), filepath.Join(dir, ServerCertFile)) ||
		strings.Contains(err.Error(), filepath.Join(dir, CAFile)) {
		t.Fatalf("err = %v, want ErrExists naming only server.pem", err)
	}
	sameSnapshot(t, before, takeSnapshot(t, dir))
}

func TestGenerateForceRegenerates(t *testing.T) {
	dir := t.TempDir()
	first := mustGenerate(t, GenerateOptions{Dir: dir})
	second := mustGenerate(t, GenerateOptions{Dir: dir, Force: true})
	if second.ReusedCA || len(second.Files) != 4 {
		t.Fatalf("ReusedCA=%v Files=%v", second.ReusedCA, second.Files)
	}
	if first.CAFingerprint == second.CAFingerprint || first.ServerFingerprint == second.ServerFingerprint {
		t.Fatal("Force did not produce new certificates")
	}
	if got := Fingerprint(readCert(t, filepath.Join(dir, CAFile))); got != second.CAFingerprint {
		t.Fatal("ca.pem on disk is not the new CA")
	}
	if err := verify(readCert(t, filepath.Join(dir, CAFile)), readCert(t, filepath.Join(dir, ServerCertFile)), "localhost"); err != nil {
		t.Fatal(err)
	}
}

func TestGenerateReusesCA(t *testing.T) {
	dir := t.TempDir()
	first := mustGenerate(t, GenerateOptions{Dir: dir})
	caBefore, _ := os.ReadFile(filepath.Join(dir, CAFile))
	keyBefore, _ := os.ReadFile(filepath.Join(dir, CAKeyFile))
	os.Remove(filepath.Join(dir, ServerCertFile))
	os.Remove(filepath.Join(dir, ServerKeyFile))

	g := mustGenerate(t, GenerateOptions{Dir: dir, Hosts: []string{"chat.example.org"}})
	if !g.ReusedCA {
		t.Fatal("ReusedCA = false")
	}
	want := []string{filepath.Join(dir, ServerCertFile), filepath.Join(dir, ServerKeyFile)}
	if strings.Join(g.Files, "|") != strings.Join(want, "|") {
		t.Fatalf("Files = %v, want %v", g.Files, want)
	}
	if g.CAFingerprint != first.CAFingerprint || !g.CANotAfter.Equal(first.CANotAfter) {
		t.Fatal("CA fingerprint changed on reuse")
	}
	caAfter, _ := os.ReadFile(filepath.Join(dir, CAFile))
	keyAfter, _ := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if !bytes.Equal(caBefore, caAfter) || !bytes.Equal(keyBefore, keyAfter) {
		t.Fatal("CA files were rewritten")
	}
	ca := readCert(t, filepath.Join(dir, CAFile))
	leaf := readCert(t, filepath.Join(dir, ServerCertFile))
	if err := verify(ca, leaf, "chat.example.org"); err != nil {
		t.Fatal(err)
	}

	// A CA key that does not belong to ca.pem is refused.
	other := t.TempDir()
	mustGenerate(t, GenerateOptions{Dir: other})
	otherKey, _ := os.ReadFile(filepath.Join(other, CAKeyFile))
	os.WriteFile(filepath.Join(dir, CAKeyFile), otherKey, 0o600)
	os.Remove(filepath.Join(dir, ServerCertFile))
	os.Remove(filepath.Join(dir, ServerKeyFile))
	_, err := Generate(GenerateOptions{Dir: dir, Hosts: defaultHosts})
	if err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("err = %v, want key mismatch", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ServerCertFile)); !os.IsNotExist(err) {
		t.Fatal("server certificate written despite mismatched CA key")
	}
}

func TestGenerateRejectsBadHosts(t *testing.T) {
	for _, hosts := range [][]string{
		nil,
		{},
		{""},
		{"localhost", ""},
		{"my host"},
		{"localhost\t"},
		{"localhost:8443"},
		{"bad/name"},
	} {
		dir := filepath.Join(t.TempDir(), "certs")
		if _, err := Generate(GenerateOptions{Dir: dir, Hosts: hosts}); err == nil {
			t.Errorf("hosts %q accepted", hosts)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("hosts %q: directory created before validation", hosts)
		}
	}
	if _, err := Generate(GenerateOptions{Dir: t.TempDir(), Hosts: defaultHosts, ServerDays: -1}); err == nil {
		t.Error("negative validity accepted")
	}
}

func TestFingerprintFormat(t *testing.T) {
	c := &x509.Certificate{Raw: []byte("abc")}
	want := "SHA256:BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
	if got := Fingerprint(c); got != want {
		t.Fatalf("Fingerprint = %s\nwant %s", got, want)
	}
	dir := t.TempDir()
	mustGenerate(t, GenerateOptions{Dir: dir})
	leaf := readCert(t, filepath.Join(dir, ServerCertFile))
	fp := Fingerprint(leaf)
	if !regexp.MustCompile(`^SHA256:([0-9A-F]{2}:){31}[0-9A-F]{2}$`).MatchString(fp) {
		t.Fatalf("bad format %q", fp)
	}
	sum := sha256.Sum256(leaf.Raw)
	if strings.ReplaceAll(strings.TrimPrefix(fp, "SHA256:"), ":", "") != strings.ToUpper(hex.EncodeToString(sum[:])) {
		t.Fatal("fingerprint is not sha256 of the DER")
	}
	if Fingerprint(nil) != "" {
		t.Fatal("Fingerprint(nil) != \"\"")
	}
}

// startEchoServer runs a TLS server that echoes one line per connection.
func startEchoServer(t *testing.T, dir string) string {
	t.Helper()
	cfg, err := ServerTLSConfig(filepath.Join(dir, ServerCertFile), filepath.Join(dir, ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return
				}
				c.Write([]byte("echo: " + line))
			}()
		}
	}()
	return ln.Addr().String()
}

func dialClient(t *testing.T, addr, caFile, serverName string) (*tls.Conn, error) {
	t.Helper()
	cfg, err := ClientTLSConfig(caFile, serverName)
	if err != nil {
		t.Fatal(err)
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	return tls.DialWithDialer(d, "tcp", addr, cfg)
}

func TestTLSRoundTrip(t *testing.T) {
	dir := t.TempDir()
	mustGenerate(t, GenerateOptions{Dir: dir})
	addr := startEchoServer(t, dir)
	for _, name := range []string{"localhost", "127.0.0.1", addr} {
		conn, err := dialClient(t, addr, filepath.Join(dir, CAFile), name)
		if err != nil {
			t.Fatalf("dial as %q: %v", name, err)
		}
		if _, err := conn.Write([]byte("hello\n")); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line != "echo: hello\n" {
			t.Fatalf("got %q", line)
		}
		if v := conn.ConnectionState().Version; v < tls.VersionTLS12 {
			t.Fatalf("TLS version %x", v)
		}
		conn.Close()
	}
}

func TestTLSVerificationFailuresAreDescribed(t *testing.T) {
	dir := t.TempDir()
	mustGenerate(t, GenerateOptions{Dir: dir})
	addr := startEchoServer(t, dir)
	serverFP := Fingerprint(readCert(t, filepath.Join(dir, ServerCertFile)))

	other := t.TempDir()
	mustGenerate(t, GenerateOptions{Dir: other})
	_, err := dialClient(t, addr, filepath.Join(other, CAFile), "localhost")
	if err == nil {
		t.Fatal("handshake with a foreign CA succeeded")
	}
	msg := DescribeVerifyError(err)
	t.Log(msg)
	if !strings.Contains(msg, serverFP) || !strings.Contains(msg, "not signed by the trusted CA") {
		t.Errorf("wrong CA: %q", msg)
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("description is not one line: %q", msg)
	}

	_, err = dialClient(t, addr, filepath.Join(dir, CAFile), "chat.example.org")
	if err == nil {
		t.Fatal("handshake for the wrong host succeeded")
	}
	msg = DescribeVerifyError(err)
	t.Log(msg)
	if !strings.Contains(msg, serverFP) || !strings.Contains(msg, `not valid for host "chat.example.org"`) {
		t.Errorf("wrong host: %q", msg)
	}
}

// TestHostMismatchNamesHostsAndTheCA checks the description of a host-name
// mismatch given the client's CA: it names the hosts the certificate
// covers and says the CA is right; with the wrong CA too, it describes the
// CA, which is what to fix first. Each has one hint, never "run gencert".
func TestHostMismatchNamesHostsAndTheCA(t *testing.T) {
	dir := t.TempDir()
	mustGenerate(t, GenerateOptions{Dir: dir})
	addr := startEchoServer(t, dir)
	roots := func(ca string) *x509.CertPool {
		cfg, err := ClientTLSConfig(ca, "localhost")
		if err != nil {
			t.Fatal(err)
		}
		return cfg.RootCAs
	}
	_, err := dialClient(t, addr, filepath.Join(dir, CAFile), "chat.example.org")
	if err == nil {
		t.Fatal("handshake for the wrong host succeeded")
	}
	msg := DescribeVerifyErrorWith(err, roots(filepath.Join(dir, CAFile)))
	for _, want := range []string{`not valid for host "chat.example.org": it covers "localhost", "127.0.0.1", "::1"`, "it is signed by your CA, so --ca is right"} {
		if !strings.Contains(msg, want) {
			t.Errorf("wrong host: %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "gencert") || strings.Count(msg, "(") != 1 {
		t.Errorf("wrong host: %q: want one hint and no gencert", msg)
	}

	other := t.TempDir()
	mustGenerate(t, GenerateOptions{Dir: other})
	msg = DescribeVerifyErrorWith(err, roots(filepath.Join(other, CAFile)))
	if !strings.Contains(msg, "not signed by the trusted CA") || strings.Contains(msg, "--ca is right") {
		t.Errorf("wrong host and wrong CA: %q", msg)
	}
}

func TestTLSExpiredCertificateIsDescribed(t *testing.T) {
	dir := t.TempDir()
	past := time.Now().AddDate(0, 0, -30)
	mustGenerate(t, GenerateOptions{Dir: dir, ServerDays: 1, Now: func() time.Time { return past }})
	addr := startEchoServer(t, dir)
	_, err := dialClient(t, addr, filepath.Join(dir, CAFile), "localhost")
	if err == nil {
		t.Fatal("handshake with an expired certificate succeeded")
	}
	msg := DescribeVerifyError(err)
	t.Log(msg)
	fp := Fingerprint(readCert(t, filepath.Join(dir, ServerCertFile)))
	if !strings.Contains(msg, fp) || !strings.Contains(msg, "expired") {
		t.Errorf("expired: %q", msg)
	}
}

func TestDescribeVerifyErrorOther(t *testing.T) {
	if got := DescribeVerifyError(errors.New("connection refused")); got != "connection refused" {
		t.Errorf("got %q", got)
	}
	if got := DescribeVerifyError(nil); got != "" {
		t.Errorf("got %q", got)
	}
}

func TestServerTLSConfig(t *testing.T) {
	dir := t.TempDir()
	mustGenerate(t, GenerateOptions{Dir: dir})
	cfg, err := ServerTLSConfig(filepath.Join(dir, ServerCertFile), filepath.Join(dir, ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 || !cfg.DynamicRecordSizingDisabled || len(cfg.Certificates) != 1 {
		t.Errorf("config: MinVersion=%x DRSD=%v certs=%d", cfg.MinVersion, cfg.DynamicRecordSizingDisabled, len(cfg.Certificates))
	}
	missing := filepath.Join(dir, "nope.pem")
	_, err = ServerTLSConfig(missing, filepath.Join(dir, ServerKeyFile))
	if err == nil || !strings.HasPrefix(err.Error(), "load server certificate "+missing+": ") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing cert: %v", err)
	}
	_, err = ServerTLSConfig(filepath.Join(dir, ServerCertFile), missing)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing key: %v", err)
	}
	// Key from the CA does not match the server certificate.
	_, err = ServerTLSConfig(filepath.Join(dir, ServerCertFile), filepath.Join(dir, CAKeyFile))
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, ServerCertFile)) {
		t.Errorf("mismatched key: %v", err)
	}
}

func TestClientTLSConfig(t *testing.T) {
	dir := t.TempDir()
	mustGenerate(t, GenerateOptions{Dir: dir})
	cfg, err := ClientTLSConfig(filepath.Join(dir, CAFile), "[::1]:7443")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.InsecureSkipVerify || cfg.RootCAs == nil || cfg.MinVersion != tls.VersionTLS12 || cfg.ServerName != "::1" {
		t.Errorf("config: insecure=%v roots=%v min=%x name=%q", cfg.InsecureSkipVerify, cfg.RootCAs != nil, cfg.MinVersion, cfg.ServerName)
	}

	missing := filepath.Join(dir, "missing.pem")
	_, err = ClientTLSConfig(missing, "localhost")
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "get ca.pem from the server's operator") ||
		strings.Contains(err.Error(), "gencert") {
		t.Errorf("missing CA: %v", err)
	}
	empty := filepath.Join(dir, "empty.pem")
	os.WriteFile(empty, []byte("not a certificate\n"), 0o644)
	_, err = ClientTLSConfig(empty, "localhost")
	if err == nil || !strings.Contains(err.Error(), empty) || !strings.Contains(err.Error(), "server's operator") ||
		strings.Contains(err.Error(), "gencert") {
		t.Errorf("empty CA: %v", err)
	}
	_, err = ClientTLSConfig(filepath.Join(dir, ServerCertFile), "localhost")
	if err == nil || !strings.Contains(err.Error(), "server.pem") {
		t.Errorf("server.pem as CA: %v", err)
	}
}
