package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"sslmessager/internal/pki"
	"sslmessager/internal/relay/relaytest"
)

// testServer is the real relay server, in-process on 127.0.0.1:0, with
// accounts at bcrypt's minimum cost and a spool, all in a temp dir.
type testServer struct{ *relaytest.Server }

func (s *testServer) ca() string   { return s.CAFile }
func (s *testServer) cert() string { return filepath.Join(s.Dir, pki.ServerCertFile) }
func (s *testServer) key() string  { return filepath.Join(s.Dir, pki.ServerKeyFile) }

func startRelay(t *testing.T) *testServer {
	t.Helper()
	return &testServer{relaytest.Start(t, relaytest.Options{})}
}

// run runs the app with args against s and returns its output.
func (s *testServer) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runApp(t, append([]string{"--server", s.Addr, "--ca", s.ca()}, args...)...)
}

func runApp(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &out
	err := app.Run(append([]string{"loadgen"}, args...))
	t.Log("\n" + out.String())
	return out.String(), err
}

// results decodes every JSON line of out.
func results(t *testing.T, out string) []Result {
	t.Helper()
	var rs []Result
	for line := range strings.Lines(out) {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var r Result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("JSON line %q: %v", line, err)
		}
		rs = append(rs, r)
	}
	return rs
}

func oneResult(t *testing.T, out string) Result {
	t.Helper()
	rs := results(t, out)
	if len(rs) != 1 {
		t.Fatalf("want 1 JSON line, got %d", len(rs))
	}
	return rs[0]
}

// checkClean fails unless every expected message arrived once, in order.
func checkClean(t *testing.T, m *MsgStats, want int64) {
	t.Helper()
	if m == nil {
		t.Fatal("no message statistics")
	}
	if m.Delivered != want || m.Expected != want || m.Lost != 0 || m.Dup != 0 || m.Reordered != 0 || m.Dropped != 0 {
		t.Errorf("delivered %d of %d (want %d), lost %d dup %d reordered %d dropped %d",
			m.Delivered, m.Expected, want, m.Lost, m.Dup, m.Reordered, m.Dropped)
	}
	if m.Latency.Count != int(want) || m.Latency.P50 <= 0 || m.Latency.Max < m.Latency.P99 || m.Latency.P99 < m.Latency.P50 {
		t.Errorf("latency summary %+v", m.Latency)
	}
}

// waitGoroutines waits until no more goroutines run than before.
func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDM(t *testing.T) {
	s := startRelay(t)
	before := runtime.NumGoroutine()
	out, err := s.run(t, "--json", "--server-pid", strconv.Itoa(os.Getpid()), "dm", "--clients", "6", "--messages", "50", "--size", "64")
	if err != nil {
		t.Fatal(err)
	}
	r := oneResult(t, out)
	checkClean(t, r.Msg, 6*50)
	if r.Msg.Sent != 6*50 || r.Msg.DeliveredPerSec <= 0 {
		t.Errorf("sent %d, %.0f msgs/s", r.Msg.Sent, r.Msg.DeliveredPerSec)
	}
	if r.Server == nil || r.Server.RSSPeakKB <= 0 || r.Server.PID != os.Getpid() {
		t.Errorf("server stats %+v", r.Server)
	}
	for _, want := range []string{"delivered", "300 of 300", "lost/dup/reordered", "0 / 0 / 0", "p99", "µs/msg"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	waitGoroutines(t, before)
	if n := len(s.Online()); n != 0 {
		t.Errorf("%d users still online", n)
	}
}

func TestDMPaced(t *testing.T) {
	s := startRelay(t)
	t0 := time.Now()
	out, err := s.run(t, "--json", "dm", "--clients", "4", "--messages", "25", "--size", "200", "--rate", "400")
	if err != nil {
		t.Fatal(err)
	}
	r := oneResult(t, out)
	checkClean(t, r.Msg, 4*25)
	// 100 messages at 400/s take about 0.25 s.
	if took := time.Since(t0); took < 200*time.Millisecond {
		t.Errorf("paced run took only %s", took)
	}
}

func TestGroup(t *testing.T) {
	s := startRelay(t)
	out, err := s.run(t, "--json", "group", "--members", "5", "--senders", "2", "--messages", "20", "--size", "50")
	if err != nil {
		t.Fatal(err)
	}
	r := oneResult(t, out)
	checkClean(t, r.Msg, 2*20*(5-1))
	if r.Msg.Sent != 2*20 {
		t.Errorf("sent %d, want 40", r.Msg.Sent)
	}
}

func TestIdle(t *testing.T) {
	s := startRelay(t)
	out, err := s.run(t, "--json", "--server-pid", strconv.Itoa(os.Getpid()), "idle", "--clients", "12", "--hold", "200ms")
	if err != nil {
		t.Fatal(err)
	}
	r := oneResult(t, out)
	if r.Idle == nil || r.Idle.Alive != 12 || r.Idle.Connect.Count != 12 {
		t.Fatalf("idle %+v", r.Idle)
	}
	if r.Server == nil || r.Server.RSSConnectedKB <= 0 {
		t.Errorf("server stats %+v", r.Server)
	}
}

func TestLogin(t *testing.T) {
	s := startRelay(t)
	out, err := s.run(t, "--json", "--prefix", "lgt", "login", "--count", "5")
	if err != nil {
		t.Fatal(err)
	}
	r := oneResult(t, out)
	if l := r.Login; l == nil || l.SignUps != 5 || l.LogIns != 5 || l.LogInPerSec <= 0 {
		t.Fatalf("login %+v", r.Login)
	}
	// The same prefix again: the sign-ups are refused as taken.
	out, err = s.run(t, "--json", "--prefix", "lgt", "login", "--count", "2")
	if !errors.Is(err, errFaults) || !strings.Contains(out, "taken") {
		t.Errorf("rerun with the same prefix: %v", err)
	}
}

func TestFile(t *testing.T) {
	s := startRelay(t)
	tmp := t.TempDir()
	out, err := s.run(t, "--json", "--server-pid", strconv.Itoa(os.Getpid()), "file", "--size", "300001",
		"--cert", s.cert(), "--key", s.key(), "--tmp", tmp)
	if err != nil {
		t.Fatal(err)
	}
	f := oneResult(t, out).File
	if f == nil || !f.Verified || f.Size != 300001 {
		t.Fatalf("file %+v", f)
	}
	for name, v := range map[string]float64{"upload": f.UploadMBps, "download": f.DownloadMBps, "file": f.DownloadFileMBps,
		"e2e": f.EndToEndMBps, "ceiling1": f.CeilingTLSMBps, "ceiling2": f.CeilingFileMBps, "ceiling3": f.CeilingFromFileMBps,
		"ratio": f.UploadRatio, "e2e ratio": f.EndToEndRatio, "encrypted upload": f.UploadE2EMBps,
		"encrypted upload ratio": f.UploadE2ERatio} {
		if v <= 0 {
			t.Errorf("%s is %v", name, v)
		}
	}
	// The streaming row holds a figure: a real sslm/2 recipient got the
	// file streamed, checked its hash and confirmed it, and the server's
	// memory was sampled (its PID here is the test's own).
	if f.StreamNote != "" || f.StreamMBps <= 0 || f.StreamRatio <= 0 || f.StreamSmallSize != 300001/16 || !f.StreamRSSKnown || f.StreamRSSPeakKB <= 0 {
		t.Errorf("streaming: note %q, %v MB/s, ratio %v, small %d, memory known %v",
			f.StreamNote, f.StreamMBps, f.StreamRatio, f.StreamSmallSize, f.StreamRSSKnown)
	}
	if !regexp.MustCompile(`(?m)^  end to end, streaming +[0-9.]+ MB/s \([0-9.]+ s\), [0-9]+% of the TLS\+file ceiling$`).MatchString(out) ||
		!strings.Contains(out, "server memory, streaming") {
		t.Error("the table lacks the streaming figure or the server's memory")
	}
	// Every streamed file was confirmed: nothing is left queued for B.
	if n := s.Spool.TotalBytes(); n != 0 {
		t.Errorf("%d bytes still queued after the streams were confirmed", n)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
}

// A scenario that cannot finish in time reports loss and returns.
func TestTimeoutReportsLoss(t *testing.T) {
	s := startRelay(t)
	t0 := time.Now()
	out, err := s.run(t, "--json", "--timeout", "700ms", "dm", "--clients", "2", "--messages", "100000", "--rate", "20")
	if !errors.Is(err, errFaults) {
		t.Fatalf("err %v, want errFaults", err)
	}
	if took := time.Since(t0); took > 5*time.Second {
		t.Errorf("took %s", took)
	}
	r := oneResult(t, out)
	if !r.TimedOut || r.Msg.Lost == 0 || r.Msg.Lost+r.Msg.Delivered != 200000 {
		t.Errorf("timed out %v, lost %d, delivered %d", r.TimedOut, r.Msg.Lost, r.Msg.Delivered)
	}
	if !strings.Contains(out, "TIMED OUT") {
		t.Error("table does not say TIMED OUT")
	}
}

func TestBadFlags(t *testing.T) {
	s := startRelay(t)
	cases := [][]string{
		{"dm", "--clients", "3"},
		{"dm", "--size", "4001"},
		{"group", "--members", "3", "--senders", "4"},
		{"--prefix", "has space", "dm"},
		{"--concurrency", "0", "dm"},
		{"file", "--size", "lots"},
		{"file", "--cert", "x"},
		{"groupdl", "--members", "2", "--senders", "1"},
		{"groupdl", "--members", "4", "--senders", "4"},
		{"groupdl", "--rate", "0"},
		{"groupdl", "--file-size", "0"},
		{"groupdl", "--file-size", "lots"},
		{"groupdl", "--rate", "1e9", "--members", "1000"},
	}
	for _, c := range cases {
		if _, err := s.run(t, c...); err == nil || errors.Is(err, errFaults) {
			t.Errorf("%v: err %v, want a usage error", c, err)
		}
	}
	if _, err := runApp(t, "--server", "192.0.2.1:18443", "--ca", s.ca(), "dm"); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("remote server: %v", err)
	}
}

// The suite starts the real server binary, and the floor relay from the
// real loadgen binary; this runs a trimmed quick suite.
func TestSuiteQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server and loadgen binaries")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "sslmessager/server", "sslmessager/tools/loadgen")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	out, err := runApp(t, "--json", "suite", "--bin", bin, "--dir", dir, "--quick", "--only", "dm", "--only", "file", "--file-size", "1MiB",
		"--only", "groupdl", "--only", "floor")
	if err != nil {
		t.Fatal(err)
	}
	rs := results(t, out)
	want := []string{"floor: dm 20x200 flood", "dm 20x200 flood", "floor: dm 20x50 @1000/s", "dm 20x50 @1000/s", "dm 100x20 flood",
		"floor: group 20x100 @100/s", "group 20x100 @100/s", "file 1MiB", "group 10x100 @100/s while a member downloads 32MiB"}
	if len(rs) != len(want) {
		t.Fatalf("%d results, want %d", len(rs), len(want))
	}
	for i, r := range rs {
		if r.Scenario != want[i] {
			t.Errorf("result %d is %q, want %q", i, r.Scenario, want[i])
		}
	}
	// The quick groupdl row: the suite's server takes a 32 MiB file.
	if g := rs[8].GroupDL; g == nil || !g.Verified || !g.Acked || g.FileSize != 32<<20 || g.Baseline.Sent != 100 || g.During.Count == 0 {
		t.Errorf("groupdl row %q: %+v", rs[8].Scenario, rs[8].GroupDL)
	}
	for _, r := range rs {
		if r.Server == nil || r.Server.PID == 0 || r.Server.RSSPeakKB == 0 {
			t.Errorf("%s: server stats %+v", r.Scenario, r.Server)
		}
	}
	// Floor and server runs were different processes.
	if rs[0].Server.PID == rs[1].Server.PID {
		t.Errorf("floor and server share PID %d", rs[0].Server.PID)
	}
	for _, re := range []string{
		`loss/dup/reorder`,
		`(?m)^dm 20x50 @1000/s +[0-9.]+ +[0-9.]+ +[0-9.]+x +≤1\.10x +(pass|MISS) +`,
		`(?m)^group 20x100 @100/s +[0-9.]+ +[0-9.]+ +[0-9.]+x +≤1\.10x +(pass|MISS) +`,
		`(?m)^file 1MiB: each leg against the TLS-into-file ceiling`,
		`(?m)^end to end, streaming +[0-9.]+ +[0-9]+% +≥80% +(pass|MISS)$`,
		`(?m)^  server memory, streaming +peak RSS \+-?[0-9]+ KiB streaming [0-9.]+ MB, \+-?[0-9]+ KiB streaming 1\.0 MB \(peak [0-9]+ KiB\): flat `,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output lacks %s", re)
		}
	}
	if strings.Contains(out, "not measured") || strings.Contains(out, streamFailed) {
		t.Error("the streaming row is not measured")
	}
	if f := rs[7].File; f == nil || f.StreamMBps <= 0 || f.StreamNote != "" || !f.StreamMemoryFlat() {
		t.Errorf("file row streaming: %+v", f)
	}
}

// A transfer that cannot finish in time is cut off and reported.
func TestFileTimeout(t *testing.T) {
	s := startRelay(t)
	t0 := time.Now()
	out, err := s.run(t, "--json", "--timeout", "500ms", "file", "--size", "1GiB", "--tmp", t.TempDir())
	if !errors.Is(err, errFaults) {
		t.Fatalf("err %v, want errFaults", err)
	}
	if took := time.Since(t0); took > 10*time.Second {
		t.Errorf("took %s", took)
	}
	r := oneResult(t, out)
	if !r.TimedOut || r.File == nil || r.File.Verified {
		t.Errorf("timed out %v, file %+v", r.TimedOut, r.File)
	}
}
