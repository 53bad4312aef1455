package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
)

// ServerTLSConfig loads the server certificate and key (server.pem and
// server.key as written by Generate) and returns a configuration for a TLS
// listener. It requires TLS 1.2 or newer and disables dynamic record sizing
// so that each line the server writes goes out as a single TLS record.
// Errors name the file that could not be used.
func ServerTLSConfig(certFile, keyFile string) (*tls.Config, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fileError("load server certificate", certFile, err, "")
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fileError("load server key", keyFile, err, "")
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load server certificate %s with key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{
		Certificates:                []tls.Certificate{pair},
		MinVersion:                  tls.VersionTLS12,
		DynamicRecordSizingDisabled: true,
	}, nil
}

// ClientTLSConfig returns a client configuration that trusts only the CA
// certificates in caFile (normally ca.pem from gencert), never the system
// roots, and verifies the server against serverName. A "host:port" or
// bracketed IPv6 serverName is reduced to the host. If serverName is empty,
// crypto/tls.Dial fills it in from the dialed address.
//
// A missing or unreadable caFile, or one without any CA certificate, is an
// error naming the file and telling the user to get ca.pem from the
// server's operator (never to make a CA of their own: it could not verify
// the server).
func ClientTLSConfig(caFile, serverName string) (*tls.Config, error) {
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fileError("load CA certificate", caFile, err, caHint)
	}
	pool := x509.NewCertPool()
	var certs, cas int
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("load CA certificate %s: %w", caFile, err)
		}
		certs++
		if cert.IsCA {
			cas++
		}
		pool.AddCert(cert)
	}
	switch {
	case certs == 0:
		return nil, fmt.Errorf("load CA certificate %s: no PEM certificate found (%s)", caFile, caHint)
	case cas == 0:
		return nil, fmt.Errorf("load CA certificate %s: not a CA certificate (%s; not server.pem)", caFile, caHint)
	}
	if host, _, err := net.SplitHostPort(serverName); err == nil {
		serverName = host
	}
	serverName = strings.TrimSuffix(strings.TrimPrefix(serverName, "["), "]")
	return &tls.Config{
		RootCAs:    pool,
		ServerName: serverName,
		MinVersion: tls.VersionTLS12,
	}, nil
}

// caHint is where a client user gets the CA certificate.
const caHint = "get ca.pem from the server's operator and pass it with --ca"

// fileError reports a read failure as "<what> <path>: <reason>", without
// repeating the path the os error already carries, with "(hint)" when the
// file does not exist and hint is not "". The error wraps the os error's
// cause (fs.ErrNotExist, ...).
func fileError(what, path string, err error, hint string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if errors.Is(err, fs.ErrNotExist) && hint != "" {
		return fmt.Errorf("%s %s: %w (%s)", what, path, err, hint)
	}
	return fmt.Errorf("%s %s: %w", what, path, err)
}
