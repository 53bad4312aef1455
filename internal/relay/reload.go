package relay

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"

	"sslmessager/internal/pki"
)

// applyReloadable copies the settings Reload may change from src into dst.
// It is the one list of them; every other Config field is fixed for the
// server's life (a restart changes it):
//
//   - the certificate and key (TLSConfig.Certificates[0]): new connections
//     get the new certificate, established ones keep theirs
//   - MaxConns, MaxConnsPerIP, MaxHandshakesPerIP: new connections; no
//     open connection is closed when a cap goes down
//   - FirstByteTimeout, WriteTimeout: new connections
//   - LoginTimeout, MaxFailedLogins, FailedLoginWindow, LoginBackoffMax,
//     MaxSignUpsPerIP, SignUpWindow, SignUpClosed: log-ins from now on (the
//     throttles keep what they have counted)
//   - MaxSessionsPerUser: log-ins from now on; no session is ended when it
//     goes down
//   - MaxQueueBytes: the queues of new sessions
//   - UploadIdleTimeout, StallWait: from their next use
//   - AllowExpiredCert: the check of a reloaded certificate
func applyReloadable(dst *Config, src Config) {
	dst.TLSConfig = src.TLSConfig
	dst.MaxConns = src.MaxConns
	dst.MaxConnsPerIP = src.MaxConnsPerIP
	dst.MaxHandshakesPerIP = src.MaxHandshakesPerIP
	dst.FirstByteTimeout = src.FirstByteTimeout
	dst.WriteTimeout = src.WriteTimeout
	dst.LoginTimeout = src.LoginTimeout
	dst.MaxFailedLogins = src.MaxFailedLogins
	dst.FailedLoginWindow = src.FailedLoginWindow
	dst.LoginBackoffMax = src.LoginBackoffMax
	dst.MaxSignUpsPerIP = src.MaxSignUpsPerIP
	dst.SignUpWindow = src.SignUpWindow
	dst.SignUpClosed = src.SignUpClosed
	dst.MaxSessionsPerUser = src.MaxSessionsPerUser
	dst.MaxQueueBytes = src.MaxQueueBytes
	dst.UploadIdleTimeout = src.UploadIdleTimeout
	dst.StallWait = src.StallWait
	dst.AllowExpiredCert = src.AllowExpiredCert
}

// conf is the configuration in force now: read the reloadable settings
// (see applyReloadable) from it, never from s.cfg. The value it points to
// is never changed; Reload swaps in a new one.
func (s *Server) conf() *Config { return s.live.Load() }

// Reload applies the run-time settings of cfg (see applyReloadable for
// which; the other fields are ignored, and Accounts, Spool, Logger and
// Events may be left nil) to the running server. Zero fields take the
// defaults, as in New. If cfg.TLSConfig holds a certificate it becomes the
// one new connections get; it must be valid now unless
// cfg.AllowExpiredCert. A server created with a TLSConfig that only has
// GetCertificate keeps it.
//
// Reload checks everything before it changes anything: on error the
// running configuration is untouched. Concurrent Reloads are applied one
// after the other.
func (s *Server) Reload(cfg Config) error {
	cfg.Accounts, cfg.Spool, cfg.Logger, cfg.Events = s.cfg.Accounts, s.cfg.Spool, s.cfg.Logger, s.cfg.Events
	if err := cfg.setDefaults(); err != nil {
		return err
	}
	var cert *tls.Certificate
	if s.cert.Load() != nil && len(cfg.TLSConfig.Certificates) > 0 {
		c := cfg.TLSConfig.Certificates[0]
		leaf, err := certLeaf(&c)
		if err != nil {
			return fmt.Errorf("relay: %w", err)
		}
		if err := pki.CheckValidity(leaf, time.Now()); err != nil && !cfg.AllowExpiredCert {
			return fmt.Errorf("relay: %w", err)
		}
		c.Leaf = leaf
		cert = &c
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	next := *s.conf()
	admins := next.SignUpClosed
	applyReloadable(&next, cfg)
	// Sign-up opened or closed at run time (the admin's signup command)
	// stays so until the configured value itself changes.
	if cfg.SignUpClosed == s.signUpConfigured {
		next.SignUpClosed = admins
	}
	s.signUpConfigured = cfg.SignUpClosed
	s.applyLimits(&next)
	if cert != nil {
		s.cert.Store(cert)
	}
	return nil
}

// SetSignUpClosed opens (false) or closes (true) sign-up on the running
// server, as Config.SignUpClosed, until a restart or a Reload whose
// Config.SignUpClosed differs from the one configured before.
func (s *Server) SetSignUpClosed(closed bool) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	next := *s.conf()
	next.SignUpClosed = closed
	s.live.Store(&next)
}

// SignUpClosed reports whether sign-up is closed now.
func (s *Server) SignUpClosed() bool { return s.conf().SignUpClosed }

// applyLimits hands next's limits to the throttles and makes next the
// configuration in force. Must hold s.reloadMu.
func (s *Server) applyLimits(next *Config) {
	s.connsPerPeer.setMax(next.MaxConnsPerIP)
	s.hsPerPeer.setMax(next.MaxHandshakesPerIP)
	s.loginRate.set(next.MaxFailedLogins, next.FailedLoginWindow)
	s.signUps.set(next.MaxSignUpsPerIP, next.SignUpWindow)
	s.backoff.setMax(next.LoginBackoffMax)
	s.live.Store(next)
}

// Certificate returns the leaf of the certificate new connections get, or
// nil if the server was given only a GetCertificate function.
func (s *Server) Certificate() *x509.Certificate {
	c := s.cert.Load()
	if c == nil {
		return nil
	}
	return c.Leaf
}

// certLeaf returns c's parsed leaf certificate.
func certLeaf(c *tls.Certificate) (*x509.Certificate, error) {
	leaf, err := pki.Leaf(&tls.Config{Certificates: []tls.Certificate{*c}})
	if err == nil && leaf == nil {
		err = fmt.Errorf("no server certificate")
	}
	return leaf, err
}
