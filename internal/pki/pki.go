// Package pki creates the private certificate authority and server
// certificate that SSL-Messager uses, and builds the TLS configurations for
// both ends of a connection.
//
// The model is deliberately small: one local CA (ca.pem and ca.key) signs one
// server certificate (server.pem and server.key). The server presents
// server.pem; clients trust exactly ca.pem and nothing else, so no public CA
// and no InsecureSkipVerify is ever involved. Generate writes the files (this
// is what tools/gencert runs), ServerTLSConfig and ClientTLSConfig load them,
// and DescribeVerifyError turns a failed handshake into a sentence a user can
// act on.
package pki

import (
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"strings"
)

// DefaultHosts is the comma-separated host list a server certificate covers
// when the user names none: the loopback names for local testing.
const DefaultHosts = "localhost,127.0.0.1,::1"

// File names inside a certificate directory.
const (
	// CAFile is the CA certificate; clients are given this file.
	CAFile = "ca.pem"
	// CAKeyFile is the CA private key; it must stay private and is only
	// needed to issue new server certificates.
	CAKeyFile = "ca.key"
	// ServerCertFile is the server certificate presented to clients.
	ServerCertFile = "server.pem"
	// ServerKeyFile is the server private key.
	ServerKeyFile = "server.key"
)

// Default validity periods, used when GenerateOptions leaves them at zero.
const (
	// DefaultCADays is the default CA validity in days (about ten years).
	DefaultCADays = 3650
	// DefaultServerDays is the default server certificate validity in days.
	DefaultServerDays = 825
)

// Fingerprint returns the SHA-256 fingerprint of the DER encoding of cert,
// formatted as "SHA256:" followed by upper-case hex byte pairs joined by
// colons, e.g. "SHA256:AB:CD:...". It returns "" for a nil certificate.
func Fingerprint(cert *x509.Certificate) string {
	if cert == nil {
		return ""
	}
	sum := sha256.Sum256(cert.Raw)
	var b strings.Builder
	b.Grow(len("SHA256:") + 3*len(sum))
	b.WriteString("SHA256:")
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}
