package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"sslmessager/internal/pki"
	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

// fingerprint is the SHA-256 fingerprint of the certificate a new
// connection to p gets, verified against st's CA.
func (p *serverProc) fingerprint(t *testing.T, st *serverState) string {
	t.Helper()
	c := dial(t, st, p.addr)
	defer c.conn.Close()
	return pki.Fingerprint(c.conn.ConnectionState().PeerCertificates[0])
}

// hup sends SIGHUP and waits until the server logged the end of the
// reload (the n-th since it started).
func (p *serverProc) hup(t *testing.T, n int) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	relaytest.CheckFor(t, waitLimit, func() error {
		if got := strings.Count(p.stderr.String(), `msg="reload done"`); got < n {
			return fmt.Errorf("%d reloads done, want %d\n%s", got, n, p.stderr.String())
		}
		return nil
	})
}

// renewCert replaces the server certificate and key in st with a new pair
// from the same CA, as running gencert again does.
func (st *serverState) renewCert(t *testing.T) {
	t.Helper()
	for _, f := range []string{pki.ServerCertFile, pki.ServerKeyFile} {
		if err := os.Remove(filepath.Join(st.certs, f)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pki.Generate(pki.GenerateOptions{Dir: st.certs, Hosts: []string{"127.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
}

// editUsers rewrites users.csv by hand: rows whose name is in drop go,
// the rows in add (name and password) are appended.
func (st *serverState) editUsers(t *testing.T, drop []string, add map[string]string) {
	t.Helper()
	data, err := os.ReadFile(st.users)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		keep := true
		for _, d := range drop {
			if strings.HasPrefix(l, d+",") {
				keep = false
			}
		}
		if keep {
			out = append(out, l)
		}
	}
	for name, pw := range add {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, name+","+string(h)+",2025-01-02T03:04:05Z,user")
	}
	if err := os.WriteFile(st.users, []byte(strings.Join(out, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// metricsAddr reads the metrics address from the server's log.
func (p *serverProc) metricsAddr(t *testing.T) string {
	t.Helper()
	re := regexp.MustCompile(`msg="metrics listening" addr=(\S+)`)
	var addr string
	relaytest.CheckFor(t, waitLimit, func() error {
		m := re.FindStringSubmatch(p.stderr.String())
		if m == nil {
			return fmt.Errorf("no metrics address logged\n%s", p.stderr.String())
		}
		addr = m[1]
		return nil
	})
	return addr
}

func getMetrics(t *testing.T, addr string) string {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s %v", resp.Status, err)
	}
	return string(b)
}

// TestSIGHUPReloads runs the real server binary with a configuration file,
// then renews the certificate, edits users.csv by hand (bob removed, carol
// added) and closes sign-up in the configuration file, and sends SIGHUP:
// a new connection gets the new certificate, bob's open session is ended
// with the reason, carol logs in, a sign-up is refused, alice's session
// from before goes on, and the reload is counted in the metrics.
func TestSIGHUPReloads(t *testing.T) {
	st := newState(t)
	conf := filepath.Join(st.dir, "server.yaml")
	if err := os.WriteFile(conf, []byte("signup: open\nmax-sessions-per-user: 4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := st.start(t, "--config", conf, "--log-level", "info", "--metrics", "127.0.0.1:0")
	mAddr := srv.metricsAddr(t)
	alice := dial(t, st, srv.addr)
	alice.login(wire.SignUp{User: "alice", Pass: "alice-password"})
	bob := dial(t, st, srv.addr)
	bob.login(wire.SignUp{User: "bob", Pass: "bob-password"})
	before := srv.fingerprint(t, st)

	st.renewCert(t)
	st.editUsers(t, []string{"bob"}, map[string]string{"carol": "carol-password"})
	if err := os.WriteFile(conf, []byte("signup: closed\nmax-sessions-per-user: 4\nquota: 1000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv.hup(t, 1)

	if after := srv.fingerprint(t, st); after == before {
		t.Errorf("a new connection still gets the old certificate %s", before)
	}
	if q := bob.next(); q != (wire.End{Fatal: true, Reason: "account removed"}) {
		t.Errorf("bob's session got %#v, want END * <account removed>", q)
	}
	dial(t, st, srv.addr).login(wire.Auth{User: "carol", Pass: "carol-password"})
	d := dial(t, st, srv.addr)
	d.send(wire.SignUp{User: "dave", Pass: "dave-password"})
	if q := d.next(); q != (wire.Try{Reason: "sign-up is closed on this server"}) {
		t.Errorf("sign-up after the reload: %#v", q)
	}
	alice.send(wire.Online{Token: alice.token})
	if q, ok := alice.next().(wire.OnlineList); !ok || strings.Join(q.Users, ",") != "alice,carol" {
		t.Errorf("alice's online list: %#v", q)
	}
	log := srv.stderr.String()
	for _, want := range []string{`msg="certificate changed: new connections get it"`, `msg="setting changed" setting=signup old=open new=closed`,
		`msg="setting changed but needs a restart: not applied" setting=quota`, `msg="account removed from users.csv" user=bob sessions_ended=1`,
		`msg="account added from users.csv" user=carol`, `msg="reload done" ok=true`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	m := getMetrics(t, mAddr)
	for _, want := range []string{`sslm_reloads_total{result="ok"} 1`, `sslm_logins_total{method="signup"} 2`,
		`sslm_logins_total{method="auth"} 1`, `sslm_login_refusals_total{reason="signup_closed"} 1`, "sslm_sessions 2"} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestSIGHUPInvalidFilesChangeNothing sends SIGHUP with, in turn, a
// broken configuration file, a broken certificate and a broken users.csv:
// each reload is refused and logged, the old certificate is still served,
// the old accounts still log in, and the server goes on.
func TestSIGHUPInvalidFilesChangeNothing(t *testing.T) {
	st := newState(t)
	conf := filepath.Join(st.dir, "server.toml")
	if err := os.WriteFile(conf, []byte("signup = \"open\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := st.start(t, "--config", conf, "--log-level", "info")
	dial(t, st, srv.addr).login(wire.SignUp{User: "alice", Pass: "alice-password"})
	before := srv.fingerprint(t, st)
	signUps := 0
	stillTheSame := func(step string) {
		t.Helper()
		signUps++
		if fp := srv.fingerprint(t, st); fp != before {
			t.Errorf("%s: a new connection gets %s, want the old %s", step, fp, before)
		}
		dial(t, st, srv.addr).login(wire.Auth{User: "alice", Pass: "alice-password"})
		d := dial(t, st, srv.addr)
		d.send(wire.SignUp{User: fmt.Sprint("zed", signUps), Pass: "zed-password"})
		if _, ok := d.next().(wire.Accept); !ok {
			t.Errorf("%s: sign-up no longer open", step)
		}
	}
	certPEM, keyPEM := filepath.Join(st.certs, pki.ServerCertFile), filepath.Join(st.certs, pki.ServerKeyFile)
	goodCert, err := os.ReadFile(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	goodKey, err := os.ReadFile(keyPEM)
	if err != nil {
		t.Fatal(err)
	}

	// 1. A broken configuration file (and a renewed certificate that it
	// would have loaded).
	st.renewCert(t)
	os.WriteFile(conf, []byte("signup = \"closed\"\nmax-conns = = 3\n"), 0o600)
	srv.hup(t, 1)
	stillTheSame("broken config")
	if !strings.Contains(srv.stderr.String(), `msg="reload failed: the running configuration is unchanged" err="--config `+conf+": toml:") {
		t.Errorf("broken config not logged:\n%s", srv.stderr.String())
	}

	// 2. A valid configuration, a broken certificate.
	os.WriteFile(conf, []byte("signup = \"closed\"\n"), 0o600)
	os.WriteFile(certPEM, goodCert[:len(goodCert)/2], 0o600)
	srv.hup(t, 2)
	os.WriteFile(conf, []byte("signup = \"open\"\n"), 0o600) // so that stillTheSame may sign up
	stillTheSame("broken certificate")
	if !strings.Contains(srv.stderr.String(), `err="load server certificate `+certPEM) {
		t.Errorf("broken certificate not logged:\n%s", srv.stderr.String())
	}

	// 3. The first certificate and key back, and a broken users.csv: a
	// row that is not four CSV fields, and alice gone.
	data, err := os.ReadFile(st.users)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	broken := lines[0] + "\n" + "mallory,not-a-hash\n"
	os.WriteFile(st.users, []byte(broken), 0o600)
	os.WriteFile(certPEM, goodCert, 0o600)
	os.WriteFile(keyPEM, goodKey, 0o600)
	srv.hup(t, 3)
	stillTheSame("broken users.csv")
	if !strings.Contains(srv.stderr.String(), `msg="reload failed: the running accounts is unchanged" err="accounts: `+st.users+":2:") {
		t.Errorf("broken users.csv not logged:\n%s", srv.stderr.String())
	}
	if n := strings.Count(srv.stderr.String(), `msg="reload done" ok=false`); n != 3 {
		t.Errorf("%d failed reloads logged, want 3", n)
	}
	if n := strings.Count(srv.stderr.String(), `msg="reload failed`); n != 3 {
		t.Errorf("%d reload failures logged, want 3 (one per broken file)", n)
	}
	select {
	case err := <-srv.done:
		t.Fatalf("the server exited: %v", err)
	default:
	}
}
