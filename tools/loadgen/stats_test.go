package main

import (
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestStreamDuplicateReorderLoss(t *testing.T) {
	s := newStream(6)
	// 5 never arrives, 2 comes after 3 (reordered) and then again (dup),
	// 9 is out of range.
	fresh := []bool{}
	for _, seq := range []int{0, 1, 3, 2, 2, 4, 9} {
		fresh = append(fresh, s.add(seq))
	}
	want := []bool{true, true, true, true, false, true, false}
	for i := range want {
		if fresh[i] != want[i] {
			t.Errorf("add #%d fresh %v, want %v", i, fresh[i], want[i])
		}
	}
	if s.unique != 5 || s.dup != 1 || s.reordered != 1 || s.invalid != 1 || s.lost() != 1 {
		t.Errorf("unique %d dup %d reordered %d invalid %d lost %d; want 5 1 1 1 1",
			s.unique, s.dup, s.reordered, s.invalid, s.lost())
	}
	var d delivery
	d.addStream(s)
	d.addStream(newStream(3)) // nothing arrived
	if d.Expected != 9 || d.Delivered != 5 || d.Lost != 4 || d.Dup != 1 || d.Reordered != 1 {
		t.Errorf("totals %+v", d)
	}
}

func TestStreamInOrderAcrossWords(t *testing.T) {
	s := newStream(200)
	for i := range 200 {
		if !s.add(i) {
			t.Fatalf("seq %d not fresh", i)
		}
	}
	if s.lost() != 0 || s.dup != 0 || s.reordered != 0 {
		t.Errorf("%+v", s)
	}
	if s.add(64) || s.dup != 1 {
		t.Error("seq 64 again is not a duplicate")
	}
}

func TestPercentile(t *testing.T) {
	vals := []int64{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}
	for _, c := range []struct {
		p    float64
		want int64
	}{{50, 50}, {90, 90}, {99, 100}, {100, 100}, {1, 10}, {0, 10}, {55, 60}} {
		if got := percentile(vals, c.p); got != c.want {
			t.Errorf("p%v = %d, want %d", c.p, got, c.want)
		}
	}
	if percentile(nil, 50) != 0 || percentile([]int64{7}, 99) != 7 {
		t.Error("empty or single")
	}
	l := summarize([]int64{5000, 1000, 3000, 2000, 4000}) // unsorted, ns
	if l.Count != 5 || l.P50 != 3 || l.P90 != 5 || l.P99 != 5 || l.Max != 5 {
		t.Errorf("summary %+v", l)
	}
}

func TestReceiverRecord(t *testing.T) {
	var progress atomic.Int64
	news := 0
	rx := newReceiver(&progress, func() { news++ })
	rx.expect(3, 4)
	at := time.Unix(0, 1_000_000)
	text := func(sender, seq int) string {
		return string(appendPayload(nil, sender, seq, 400_000, 80))
	}
	for _, s := range []string{text(3, 0), text(3, 2), text(3, 1), text(3, 1), text(7, 0), "hello"} {
		rx.record(s, at)
	}
	st := rx.streams[3]
	if news != 3 || progress.Load() != 6 || rx.foreign != 2 || st.dup != 1 || st.reordered != 1 || st.lost() != 1 {
		t.Errorf("news %d progress %d foreign %d stream %+v", news, progress.Load(), rx.foreign, st)
	}
	if len(rx.lat) != 3 || rx.lat[0] != 600_000 || rx.last != 1_000_000 {
		t.Errorf("latencies %v last %d", rx.lat, rx.last)
	}
}

func TestPayload(t *testing.T) {
	for _, size := range []int{1, 20, 21, 22, 100, 4000} {
		b := appendPayload([]byte("junk"), 12, 345, 1712345678901234567, size)[4:]
		header := len("lg 12 345 1712345678901234567")
		if want := max(size, header); len(b) != want {
			t.Errorf("size %d: got %d bytes, want %d", size, len(b), want)
		}
		p, ok := parsePayload(string(b))
		if !ok || p != (payload{12, 345, 1712345678901234567}) {
			t.Errorf("size %d: parsed %+v %v from %q", size, p, ok, b)
		}
		if strings.ContainsAny(string(b), "\r\n") {
			t.Errorf("size %d: text holds CR or LF", size)
		}
	}
	for _, bad := range []string{"", "lg", "lg 1 2", "lg a 2 3", "xx 1 2 3", "lg -1 2 3 x", "lg 1 2 3x"} {
		if p, ok := parsePayload(bad); ok {
			t.Errorf("%q parsed as %+v", bad, p)
		}
	}
}

func TestDataGenIndependentOfCuts(t *testing.T) {
	a, b := make([]byte, 1000), make([]byte, 1000)
	newDataGen(7).fill(a)
	g := newDataGen(7)
	g.fill(b[:512])
	g.fill(b[512:])
	if string(a) != string(b) {
		t.Error("stream differs when cut at a multiple of 8")
	}
	c := make([]byte, 1000)
	newDataGen(8).fill(c)
	if string(a) == string(c) {
		t.Error("seeds 7 and 8 give the same data")
	}
}

func TestProcOwnProcess(t *testing.T) {
	pid := os.Getpid()
	cpu0, err := cpuTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	// Burn some CPU so the clock-tick counter moves.
	deadline := time.Now().Add(50 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	cpu1, err := cpuTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	if cpu1 < cpu0 || cpu1 == 0 {
		t.Errorf("cpu %s then %s", cpu0, cpu1)
	}
	v, err := rss(pid)
	if err != nil || v < 1<<20 {
		t.Errorf("rss %d, %v", v, err)
	}
	s, err := startRSS(pid)
	if err != nil {
		t.Fatal(err)
	}
	ballast := make([]byte, 32<<20)
	for i := range ballast {
		ballast[i] = byte(i)
	}
	time.Sleep(3 * rssEvery)
	before, peak := s.finish()
	if before <= 0 || peak < before+16<<20 {
		t.Errorf("before %d, peak %d after touching 32 MiB", before, peak)
	}
	if b2, p2 := s.finish(); b2 != before || p2 != peak {
		t.Error("second finish differs")
	}
	_ = ballast[len(ballast)-1]
}

func TestParseProc(t *testing.T) {
	stat := []byte("1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 8 0 100 1000 200\n")
	if v, err := parseStatCPU(stat); err != nil || v != 287 {
		t.Errorf("parseStatCPU = %d, %v; want 287", v, err)
	}
	if _, err := parseStatCPU([]byte("1234 (x) S 1 2")); err == nil {
		t.Error("short stat accepted")
	}
	status := []byte("Name:\tserver\nVmHWM:\t  9000 kB\nVmRSS:\t    8192 kB\nThreads:\t5\n")
	if v, err := parseStatusKB(status, "VmRSS"); err != nil || v != 8192<<10 {
		t.Errorf("VmRSS = %d, %v", v, err)
	}
	if _, err := parseStatusKB(status, "VmSwap"); err == nil {
		t.Error("missing key found")
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1024": 1024, "1GiB": 1 << 30, "16MiB": 16 << 20, "4KiB": 4096,
		"100MB": 100e6, "2GB": 2e9, "7B": 7, " 3 MiB": 3 << 20} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "-1", "1TiB", "1.5GB", "2000000000GiB"} {
		if _, err := parseBytes(bad); err == nil {
			t.Errorf("parseBytes(%q) accepted", bad)
		}
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:1", "[::1]:18443", "localhost:5", "127.8.9.10:7"} {
		if err := checkLoopback(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "10.0.0.1:1", "example.org:443", "127.0.0.1"} {
		if err := checkLoopback(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestUserNames(t *testing.T) {
	n := userName("abcdefghi", 'd', 99999)
	if len(n) > 15 || n != "abcdefghid99999" {
		t.Errorf("name %q", n)
	}
	if p := password("x"); len(p) < 8 {
		t.Errorf("password %q too short", p)
	}
	if p := randomPrefix(); !prefixRE.MatchString(p) || len(p) != 3 {
		t.Errorf("random prefix %q", p)
	}
}
