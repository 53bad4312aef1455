package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"sslmessager/internal/durable"
)

// ErrExists reports that Generate would overwrite certificate files that
// already exist and GenerateOptions.Force is false. The returned error wraps
// it together with the offending paths; test for it with errors.Is.
var ErrExists = errors.New("certificate files already exist")

// GenerateOptions controls Generate.
type GenerateOptions struct {
	// Dir is the output directory. It is created with mode 0700 if missing.
	Dir string
	// Hosts are the DNS names and IP addresses the server certificate is
	// valid for. The first one also becomes the certificate's common name.
	Hosts []string
	// Force regenerates all four files, overwriting any existing ones
	// (including the CA, so clients need the new ca.pem afterwards).
	Force bool
	// CADays is the CA validity in days; 0 means DefaultCADays.
	CADays int
	// ServerDays is the server certificate validity in days; 0 means
	// DefaultServerDays. It is capped so it never outlives the CA.
	ServerDays int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Generated describes what Generate did.
type Generated struct {
	// Files lists the paths written, in order: ca.pem, ca.key (unless the
	// CA was reused), server.pem, server.key.
	Files []string
	// CAFingerprint is the Fingerprint of the CA certificate (new or reused).
	CAFingerprint string
	// ServerFingerprint is the Fingerprint of the new server certificate.
	ServerFingerprint string
	// CANotAfter is when the CA certificate expires.
	CANotAfter time.Time
	// ServerNotAfter is when the server certificate expires.
	ServerNotAfter time.Time
	// ReusedCA is true when an existing ca.pem/ca.key pair signed the new
	// server certificate instead of a new CA being created.
	ReusedCA bool
}

// Generate creates a local CA and a server certificate signed by it in
// opts.Dir, following these rules:
//
//   - If none of ca.pem, ca.key, server.pem and server.key exist, all four
//     are created.
//   - If ca.pem and ca.key exist but neither server file does, the existing
//     CA is loaded (its key must match its certificate) and only a new server
//     certificate is issued; Generated.ReusedCA is then true.
//   - Otherwise, if any file that would be written already exists and
//     opts.Force is false, Generate returns an error wrapping ErrExists
//     that names the paths, and writes nothing.
//   - With opts.Force all four files are regenerated.
//
// Keys are ECDSA P-256, stored as PKCS#8 PEM with mode 0600; certificates
// are PEM with mode 0644. Every file is written atomically (temporary file,
// fsync, rename). The host list is validated before anything else happens.
func Generate(opts GenerateOptions) (Generated, error) {
	hosts, err := validateHosts(opts.Hosts)
	if err != nil {
		return Generated{}, err
	}
	caDays, serverDays := opts.CADays, opts.ServerDays
	if caDays == 0 {
		caDays = DefaultCADays
	}
	if serverDays == 0 {
		serverDays = DefaultServerDays
	}
	if caDays < 0 || serverDays < 0 {
		return Generated{}, fmt.Errorf("validity must be a positive number of days (CA %d, server %d)", opts.CADays, opts.ServerDays)
	}
	if opts.Dir == "" {
		return Generated{}, errors.New("no certificate directory given")
	}
	now := time.Now()
	if opts.Now != nil {
		now = opts.Now()
	}

	caCertPath := filepath.Join(opts.Dir, CAFile)
	caKeyPath := filepath.Join(opts.Dir, CAKeyFile)
	srvCertPath := filepath.Join(opts.Dir, ServerCertFile)
	srvKeyPath := filepath.Join(opts.Dir, ServerKeyFile)

	exists := map[string]bool{}
	for _, p := range []string{caCertPath, caKeyPath, srvCertPath, srvKeyPath} {
		_, err := os.Lstat(p)
		switch {
		case err == nil:
			exists[p] = true
		case errors.Is(err, fs.ErrNotExist):
		default:
			return Generated{}, fmt.Errorf("check %s: %w", p, err)
		}
	}

	reuseCA := !opts.Force && exists[caCertPath] && exists[caKeyPath]
	targets := []string{srvCertPath, srvKeyPath}
	if !reuseCA {
		targets = append([]string{caCertPath, caKeyPath}, targets...)
	}
	if !opts.Force {
		var conflicts []string
		for _, p := range targets {
			if exists[p] {
				conflicts = append(conflicts, p)
			}
		}
		if len(conflicts) > 0 {
			return Generated{}, fmt.Errorf("%w: %s", ErrExists, strings.Join(conflicts, ", "))
		}
	}

	var (
		caCert *x509.Certificate
		caKey  crypto.Signer
		caPEM  []byte
		caKPEM []byte
	)
	if reuseCA {
		caCert, caKey, err = loadCA(caCertPath, caKeyPath)
		if err != nil {
			return Generated{}, err
		}
		if now.After(caCert.NotAfter) {
			return Generated{}, fmt.Errorf("CA certificate %s expired on %s; regenerate everything with Force", caCertPath, caCert.NotAfter.UTC().Format(time.DateOnly))
		}
	} else {
		caCert, caKey, caPEM, caKPEM, err = newCA(now, caDays)
		if err != nil {
			return Generated{}, err
		}
	}

	srvCert, srvPEM, srvKPEM, err := newServerCert(now, serverDays, hosts, caCert, caKey)
	if err != nil {
		return Generated{}, err
	}

	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return Generated{}, fmt.Errorf("create certificate directory: %w", err)
	}

	res := Generated{
		CAFingerprint:     Fingerprint(caCert),
		ServerFingerprint: Fingerprint(srvCert),
		CANotAfter:        caCert.NotAfter,
		ServerNotAfter:    srvCert.NotAfter,
		ReusedCA:          reuseCA,
	}
	type file struct {
		path string
		data []byte
		mode fs.FileMode
	}
	var files []file
	if !reuseCA {
		files = append(files, file{caCertPath, caPEM, 0o644}, file{caKeyPath, caKPEM, 0o600})
	}
	files = append(files, file{srvCertPath, srvPEM, 0o644}, file{srvKeyPath, srvKPEM, 0o600})
	for _, f := range files {
		// Each file replaces its old version atomically and durably.
		if err := durable.WriteFile(f.path, f.mode, func(w io.Writer) error {
			_, err := w.Write(f.data)
			return err
		}); err != nil {
			return res, err
		}
		res.Files = append(res.Files, f.path)
	}
	return res, nil
}

// validateHosts checks the host list and returns it without duplicates.
func validateHosts(hosts []string) ([]string, error) {
	if len(hosts) == 0 {
		return nil, errors.New("no hosts given for the server certificate")
	}
	seen := map[string]bool{}
	var out []string
	for i, h := range hosts {
		if h == "" {
			return nil, fmt.Errorf("host %d in the list is empty", i+1)
		}
		if strings.IndexFunc(h, unicode.IsSpace) >= 0 {
			return nil, fmt.Errorf("host %q contains a space", h)
		}
		if net.ParseIP(h) == nil {
			if err := checkDNSName(h); err != nil {
				return nil, err
			}
		}
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out, nil
}

func checkDNSName(h string) error {
	if _, _, err := net.SplitHostPort(h); err == nil {
		return fmt.Errorf("host %q includes a port; give only the name or IP address", h)
	}
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			r == '-', r == '.', r == '_', r == '*':
		default:
			return fmt.Errorf("host %q is neither an IP address nor a valid DNS name (bad character %q)", h, r)
		}
	}
	return nil
}

func newSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("generate serial number: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

func newKey() (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode key: %w", err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func newCA(now time.Time, days int) (*x509.Certificate, crypto.Signer, []byte, []byte, error) {
	key, keyPEM, err := newKey()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   "SSL-Messager local CA",
			Organization: []string{"SSL-Messager"},
		},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(0, 0, days),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("parse new CA certificate: %w", err)
	}
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

func newServerCert(now time.Time, days int, hosts []string, ca *x509.Certificate, caKey crypto.Signer) (*x509.Certificate, []byte, []byte, error) {
	key, keyPEM, err := newKey()
	if err != nil {
		return nil, nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, nil, err
	}
	notAfter := now.AddDate(0, 0, days)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0], Organization: []string{"SSL-Messager"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("create server certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("parse new server certificate: %w", err)
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// loadCA reads an existing CA pair and checks that it can sign certificates
// and that the key belongs to the certificate.
func loadCA(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, fmt.Errorf("read CA certificate %s: %w", certPath, err)
	}
	var cert *x509.Certificate
	for rest := certPEM; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type == "CERTIFICATE" {
			cert, err = x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("parse CA certificate %s: %w", certPath, err)
			}
			break
		}
	}
	if cert == nil {
		return nil, nil, fmt.Errorf("CA certificate %s contains no PEM certificate", certPath)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, nil, fmt.Errorf("%s is not a CA certificate", certPath)
	}

	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("read CA key %s: %w", keyPath, err)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, nil, fmt.Errorf("CA key %s contains no PEM data", keyPath)
	}
	var parsed any
	switch block.Type {
	case "PRIVATE KEY":
		parsed, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		parsed, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		err = fmt.Errorf("unexpected PEM block %q", block.Type)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("parse CA key %s: %w", keyPath, err)
	}
	signer, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("CA key %s: unsupported key type %T", keyPath, parsed)
	}
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(signer.Public()) {
		return nil, nil, fmt.Errorf("CA key %s does not match CA certificate %s", keyPath, certPath)
	}
	return cert, signer, nil
}
