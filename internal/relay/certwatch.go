package relay

import (
	"time"

	"sslmessager/internal/pki"
)

// checkCert logs the state of the server certificate in force at now: an
// error if it is not valid (and returns it), a warning if it expires
// within pki.ExpiryWarning. A configuration without a fixed certificate
// (GetCertificate) is not checked.
func (s *Server) checkCert(now time.Time) error {
	c := s.cert.Load()
	if c == nil {
		return nil
	}
	leaf, err := certLeaf(c)
	if err != nil {
		s.log.Error("server certificate unreadable", "err", err)
		return err
	}
	if err := pki.CheckValidity(leaf, now); err != nil {
		s.log.Error("server certificate not valid", "err", err)
		return err
	}
	if left, soon := pki.ExpiresSoon(leaf, now); soon {
		s.log.Warn("server certificate expires soon; run gencert again to renew it",
			"not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "days_left", int(left.Hours()/24),
			"fingerprint", pki.Fingerprint(leaf))
	}
	return nil
}

// certWatch checks the certificate every CertCheckInterval until the
// server closes.
func (s *Server) certWatch() {
	s.every(s.cfg.CertCheckInterval, func(now time.Time) { s.checkCert(now) }) // checkCert logs what it finds
}
