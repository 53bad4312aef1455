package metrics_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"sslmessager/internal/metrics"
	"sslmessager/internal/relay"
	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

// scrape fetches url and returns every sample as "name{labels}" -> value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s, %q\n%s", url, resp.Status, resp.Header.Get("Content-Type"), b)
	}
	out := make(map[string]float64)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestEndpointCountsWhatHappens serves the metrics over real HTTP on
// 127.0.0.1:0 next to a real server, and checks that log-ins, a refused
// log-in, messages of each kind and a file move the counters and gauges
// by exactly what happened.
func TestEndpointCountsWhatHappens(t *testing.T) {
	m := metrics.New()
	srv := relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) { c.Events = m }})
	m.Watch(srv.Server, srv.Spool)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	url := "http://" + l.Addr().String() + "/metrics"

	before := scrape(t, url)
	for _, name := range []string{`sslm_logins_total{method="signup"}`, `sslm_messages_relayed_total{kind="dm"}`,
		`sslm_login_refusals_total{reason="bad_credentials"}`, "sslm_sessions", "sslm_spool_files", "go_goroutines"} {
		if _, ok := before[name]; !ok {
			t.Errorf("%s missing before anything happened", name)
		}
	}

	alice, bob := srv.Dial(t), srv.Dial(t)
	alice.SignUp("alice")
	bob.SignUp("bob")
	alice2 := srv.DialExt(t)
	alice2.LogIn("alice")
	alice2.Send(wire.Carbons{Token: alice2.Token})
	wrong := srv.Dial(t)
	wrong.Send(wire.Auth{User: "bob", Pass: "not-bobs-password"})
	if _, ok := wrong.MustNext().(wire.End); !ok {
		t.Fatal("a wrong password was not answered with END")
	}
	alice.Msg("bob", "hello bob")
	bob.Expect(wire.Relay{Target: "bob", Sender: "alice", Text: "hello bob"})
	alice2.Expect(wire.Carbon{Target: "bob", Sender: "alice", Text: "hello bob"})
	bob.Upload("alice", "a.txt", []byte("twelve bytes"))

	want := map[string]float64{
		`sslm_logins_total{method="signup"}`:                  2,
		`sslm_logins_total{method="auth"}`:                    1,
		`sslm_login_refusals_total{reason="bad_credentials"}`: 1,
		`sslm_messages_relayed_total{kind="dm"}`:              1,
		`sslm_messages_relayed_total{kind="carbon"}`:          1,
		`sslm_messages_relayed_total{kind="group"}`:           0,
		"sslm_uploads_total":                                  1,
		"sslm_upload_bytes_total":                             12,
		"sslm_connections_accepted_total":                     4,
	}
	relaytest.CheckFor(t, 10*time.Second, func() error {
		after := scrape(t, url)
		for name, d := range want {
			if got := after[name] - before[name]; got != d {
				return fmt.Errorf("%s moved by %v, want %v", name, got, d)
			}
		}
		for name, v := range map[string]float64{"sslm_sessions": 3, "sslm_users_online": 2, "sslm_spool_files": 1, "sslm_spool_bytes": 12} {
			if after[name] != v {
				return fmt.Errorf("%s = %v, want %v", name, after[name], v)
			}
		}
		return nil
	})

	files := alice.Download(true)
	if len(files) != 1 {
		t.Fatalf("downloaded %d files", len(files))
	}
	relaytest.CheckFor(t, 10*time.Second, func() error {
		after := scrape(t, url)
		if after["sslm_downloads_total"]-before["sslm_downloads_total"] != 1 || after["sslm_download_bytes_total"]-before["sslm_download_bytes_total"] != 12 || after["sslm_spool_files"] != 0 {
			return fmt.Errorf("after the download: downloads %v, bytes %v, spool files %v",
				after["sslm_downloads_total"], after["sslm_download_bytes_total"], after["sslm_spool_files"])
		}
		return nil
	})
}
