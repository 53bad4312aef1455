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
// Each description ends with one hint, written for the client's user.
func DescribeVerifyError(err error) string { return DescribeVerifyErrorWith(err, nil) }

// DescribeVerifyErrorWith is DescribeVerifyError with the CA certificates
// the client trusts: for a host-name mismatch it then checks the chain too
// (the host name is checked first, so the handshake's error says nothing
// about the CA) and says the CA is fine when the chain verifies, or
// describes the chain's failure instead.
func DescribeVerifyErrorWith(err error, roots *x509.CertPool) string {
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
		c := hostErr.Certificate
		if c == nil {
			c = leaf
		}
		msg := fmt.Sprintf("%s is not valid for host %q", subject(c), hostErr.Host)
		if names := certNames(c); names != "" {
			msg += ": it covers " + names
		}
		hint := fmt.Sprintf("connect with a name it covers, or ask the server's operator for a certificate that covers %q", hostErr.Host)
		if roots != nil && c != nil {
			inter := x509.NewCertPool()
			if cve != nil && len(cve.UnverifiedCertificates) > 1 {
				for _, ic := range cve.UnverifiedCertificates[1:] {
					inter.AddCert(ic)
				}
			}
			_, verr := c.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			if verr != nil {
				// The CA is wrong as well: that is what to fix first.
				return DescribeVerifyErrorWith(&tls.CertificateVerificationError{UnverifiedCertificates: []*x509.Certificate{c}, Err: verr}, nil)
			}
			hint = "it is signed by your CA, so --ca is right; " + hint
		}
		return msg + " (" + hint + ")"
	case errors.As(err, &authErr):
		return subject(authErr.Cert) + " is not signed by the trusted CA (--ca must be the ca.pem of this server's CA: get it from the server's operator)"
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
			return fmt.Sprintf("%s expired on %s (the server's operator must renew it)", what, c.NotAfter.UTC().Format(time.RFC3339))
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
