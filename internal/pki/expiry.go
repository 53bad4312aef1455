package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// ExpiryWarning is how long before its end a certificate counts as
// expiring soon: a server warns of it at start and once a day.
const ExpiryWarning = 30 * 24 * time.Hour

// Validity errors of CheckValidity, wrapped with the certificate's
// fingerprint and dates.
var (
	ErrCertExpired     = errors.New("certificate has expired")
	ErrCertNotYetValid = errors.New("certificate is not yet valid")
)

// Leaf returns the first certificate of c's first certificate chain,
// parsed, or nil if c has none (it may pick certificates with
// GetCertificate). An unparsable certificate is an error.
func Leaf(c *tls.Config) (*x509.Certificate, error) {
	if c == nil || len(c.Certificates) == 0 || len(c.Certificates[0].Certificate) == 0 {
		return nil, nil
	}
	if leaf := c.Certificates[0].Leaf; leaf != nil {
		return leaf, nil
	}
	leaf, err := x509.ParseCertificate(c.Certificates[0].Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("parse server certificate: %w", err)
	}
	return leaf, nil
}

// CheckValidity returns nil if cert is valid at now; otherwise an error
// wrapping ErrCertExpired or ErrCertNotYetValid that names the
// certificate's fingerprint and the date that failed, in UTC.
func CheckValidity(cert *x509.Certificate, now time.Time) error {
	switch {
	case now.After(cert.NotAfter):
		return fmt.Errorf("server certificate %s expired on %s: %w (run gencert again to renew it)",
			Fingerprint(cert), cert.NotAfter.UTC().Format(time.RFC3339), ErrCertExpired)
	case now.Before(cert.NotBefore):
		return fmt.Errorf("server certificate %s is not valid until %s: %w (check the clock)",
			Fingerprint(cert), cert.NotBefore.UTC().Format(time.RFC3339), ErrCertNotYetValid)
	}
	return nil
}

// ExpiresSoon reports whether cert, valid at now, ends within
// ExpiryWarning, and how long it has left.
func ExpiresSoon(cert *x509.Certificate, now time.Time) (time.Duration, bool) {
	left := cert.NotAfter.Sub(now)
	return left, left >= 0 && left <= ExpiryWarning
}
