package relay_test

import (
	"crypto/tls"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sslmessager/internal/pki"
	"sslmessager/internal/relay"
	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

// served returns the SHA-256 fingerprint of the certificate a new
// connection to addr gets, verified against caFile; or the handshake
// error.
func served(t *testing.T, addr, caFile string) (string, error) {
	t.Helper()
	tc, err := pki.ClientTLSConfig(caFile, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, tc)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return pki.Fingerprint(conn.ConnectionState().PeerCertificates[0]), nil
}

// serverTLS loads the server certificate and key written into dir.
func serverTLS(t *testing.T, dir string) *tls.Config {
	t.Helper()
	tc, err := pki.ServerTLSConfig(filepath.Join(dir, pki.ServerCertFile), filepath.Join(dir, pki.ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return tc
}

// TestReloadCertificateAndLimits reloads a server with a certificate from
// another CA and sign-up closed: new connections get the new certificate
// (and fail against the old CA), a session from before goes on, PUT is
// refused. Then a reload with an expired certificate is refused and
// changes nothing, not even the settings that came with it.
func TestReloadCertificateAndLimits(t *testing.T) {
	srv := relaytest.Start(t, relaytest.Options{})
	alice := srv.Dial(t)
	alice.SignUp("alice")
	oldCA := srv.CAFile
	before, err := served(t, srv.Addr, oldCA)
	if err != nil {
		t.Fatal(err)
	}

	dir := relaytest.Certs(t)
	next := relay.Config{TLSConfig: serverTLS(t, dir), SignUpClosed: true,
		MaxConnsPerIP: relay.NoLimit, MaxHandshakesPerIP: relay.NoLimit, MaxSignUpsPerIP: relay.NoLimit}
	if err := srv.Reload(next); err != nil {
		t.Fatal(err)
	}
	srv.CAFile = filepath.Join(dir, pki.CAFile)
	after, err := served(t, srv.Addr, srv.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	if after == before || after != pki.Fingerprint(srv.Certificate()) {
		t.Errorf("after reload: served %s, before %s, Certificate() %s", after, before, pki.Fingerprint(srv.Certificate()))
	}
	if _, err := served(t, srv.Addr, oldCA); err == nil {
		t.Error("a client trusting only the old CA still connects")
	}
	alice.Send(wire.Online{Token: alice.Token})
	alice.Expect(wire.OnlineList{Users: []string{"alice"}})
	bob := srv.Dial(t)
	bob.Send(wire.SignUp{User: "bob", Pass: "password-bob"})
	bob.Expect(wire.Try{Reason: "sign-up is closed on this server"})

	expired := t.TempDir()
	past := time.Now().AddDate(0, 0, -40)
	if _, err := pki.Generate(pki.GenerateOptions{Dir: expired, Hosts: []string{"127.0.0.1"}, ServerDays: 10, Now: func() time.Time { return past }}); err != nil {
		t.Fatal(err)
	}
	bad := next
	bad.TLSConfig, bad.SignUpClosed = serverTLS(t, expired), false
	if err := srv.Reload(bad); err == nil || !strings.Contains(err.Error(), "expired on") {
		t.Fatalf("reload with an expired certificate: %v", err)
	}
	if fp, err := served(t, srv.Addr, srv.CAFile); err != nil || fp != after {
		t.Errorf("after the refused reload: served %s (%v), want %s", fp, err, after)
	}
	if !srv.SignUpClosed() {
		t.Error("the refused reload opened sign-up")
	}
	bad.AllowExpiredCert = true // the operator insists
	if err := srv.Reload(bad); err != nil {
		t.Fatal(err)
	}
	if srv.SignUpClosed() {
		t.Error("sign-up still closed")
	}
}

// TestReloadPerAddressLimit lowers the per-address connection cap on a
// running server: the connections open stay, a new one from that address
// is refused at accept, one from another address is not; raising it again
// lets the address in.
func TestReloadPerAddressLimit(t *testing.T) {
	srv := relaytest.Start(t, relaytest.Options{})
	base := relay.Config{TLSConfig: serverTLS(t, filepath.Dir(srv.CAFile)),
		MaxConnsPerIP: relay.NoLimit, MaxHandshakesPerIP: relay.NoLimit, MaxSignUpsPerIP: relay.NoLimit}
	a := srv.DialFrom(t, "127.0.0.1")
	a.SignUp("alice")

	capped := base
	capped.MaxConnsPerIP = 1
	if err := srv.Reload(capped); err != nil {
		t.Fatal(err)
	}
	// The admin's status shows what is in force now.
	if !slices.Contains(srv.Limits(), relay.Setting{Name: "max-conns-per-ip", Value: "1"}) {
		t.Errorf("status limits after the reload: %v", srv.Limits())
	}
	if _, err := srv.DialTLS(t, "127.0.0.1"); err == nil {
		t.Error("a second connection from 127.0.0.1 got through a cap of 1")
	}
	srv.DialFrom(t, "127.0.0.2").SignUp("bob")
	a.Send(wire.Online{Token: a.Token})
	a.Expect(wire.OnlineList{Users: []string{"alice", "bob"}})

	if err := srv.Reload(base); err != nil {
		t.Fatal(err)
	}
	srv.DialFrom(t, "127.0.0.1").LogIn("alice")
}
