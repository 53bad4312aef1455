package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// DescribeVerifyError explains a failed TLS certificate verification in one
// line that includes the Fingerprint of the certificate the server offered,
// for example
//
//	server certificate SHA256:AB:CD:... is not signed by the trusted CA
//
// It recognises *tls.CertificateVerificationError and the x509 errors
// UnknownAuthorityError, HostnameError and CertificateInvalidError, wrapped
// or not. For any other error it returns err.Error(); for nil it returns "".
func DescribeVerifyError(err error) string {
	if err == nil {
		return ""
	}
	var leaf *x509.Certificate
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) && len(cve.UnverifiedCertificates) > 0 {
		leaf = cve.UnverifiedCertificates[0]
	}
	subject := func(fallback *x509.Certificate) string {
		c := leaf
		if c == nil {
			c = fallback
		}
		if c == nil {
			return "server certificate"
		}
		return "server certificate " + Fingerprint(c)
	}

	var hostErr x509.HostnameError
	var authErr x509.UnknownAuthorityError
	var invErr x509.CertificateInvalidError
	switch {
	case errors.As(err, &hostErr):
		msg := fmt.Sprintf("%s is not valid for host %q", subject(hostErr.Certificate), hostErr.Host)
		if names := certNames(hostErr.Certificate); names != "" {
			msg += " (it covers " + names + "; reissue it with gencert --host)"
		}
		return msg
	case errors.As(err, &authErr):
		return subject(authErr.Cert) + " is not signed by the trusted CA (the client needs the ca.pem that signed the server's certificate)"
	case errors.As(err, &invErr):
		c := invErr.Cert
		if invErr.Reason == x509.Expired && c != nil {
			what := subject(c)
			if leaf != nil && !c.Equal(leaf) {
				what = fmt.Sprintf("the CA certificate %s for %s", Fingerprint(c), subject(nil))
			}
			now := time.Now()
			if now.Before(c.NotBefore) {
				return fmt.Sprintf("%s is not valid until %s (check the clock)", what, c.NotBefore.UTC().Format(time.RFC3339))
			}
			return fmt.Sprintf("%s expired on %s (run gencert again to renew it)", what, c.NotAfter.UTC().Format(time.RFC3339))
		}
		return fmt.Sprintf("%s is invalid: %v", subject(c), invErr)
	case cve != nil:
		return fmt.Sprintf("%s could not be verified: %v", subject(nil), cve.Err)
	}
	return err.Error()
}

// certNames lists the DNS names and IP addresses a certificate covers.
func certNames(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	var names []string
	for _, n := range c.DNSNames {
		names = append(names, fmt.Sprintf("%q", n))
	}
	for _, ip := range c.IPAddresses {
		names = append(names, fmt.Sprintf("%q", ip.String()))
	}
	return strings.Join(names, ", ")
}
