package main

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A stream made long and cut to the count sent: what arrived beyond it
// was never sent and is invalid; what is missing below it is lost.
func TestStreamTruncate(t *testing.T) {
	s := newStream(100)
	for _, seq := range []int{0, 1, 3, 4, 70} {
		s.add(seq)
	}
	s.truncate(5)
	if s.expected != 5 || s.unique != 4 || s.invalid != 1 || s.lost() != 1 {
		t.Errorf("after truncate(5): expected %d unique %d invalid %d lost %d; want 5 4 1 1", s.expected, s.unique, s.invalid, s.lost())
	}
	if s.add(5) || s.invalid != 2 {
		t.Error("seq 5 accepted after truncate(5)")
	}
	c := newStream(10)
	c.add(0)
	c.truncate(50) // never longer than made
	if c.expected != 10 || c.lost() != 9 {
		t.Errorf("truncate(50) of 10: %+v", c)
	}
}

// gdTexts feeds receivers as group members' readers would: member i gets
// seqs[i] from sender 0 (stamped at 1 ms, arriving at 3 ms) and all of
// sender 1's n texts except its own.
func gdReceivers(t *testing.T, n int, seqs [][]int) []*receiver {
	t.Helper()
	var progress atomic.Int64
	rxs := make([]*receiver, len(seqs))
	for i := range seqs {
		rx := newReceiver(&progress, func() {})
		rx.keepSent = true
		for s := range 2 {
			if s != i {
				rx.expect(s, n)
			}
		}
		for _, seq := range seqs[i] {
			if i != 0 {
				rx.record(string(appendPayload(nil, 0, seq, int64(seq+1)*1e6, 60)), time.Unix(0, int64(seq+3)*1e6))
			}
		}
		if i != 1 {
			for seq := range n {
				rx.record(string(appendPayload(nil, 1, seq, int64(seq+1)*1e6, 60)), time.Unix(0, int64(seq+3)*1e6))
			}
		}
		rxs[i] = rx
	}
	return rxs
}

func cleanGroupDL(base, dl GroupPhase) *GroupDLStats {
	return &GroupDLStats{Baseline: base, Download: dl, During: latency{Count: 3, P50: 1, P99: 2, Max: 2},
		Verified: true, Acked: true}
}

// The checker: every member's streams count, the downloader's included,
// and a lost, duplicated or reordered text anywhere fails the result, as
// do a dropped member, an unverified or unacknowledged file and a phase
// that measured nothing.
func TestGroupDLChecker(t *testing.T) {
	const n, downloader = 4, 3
	all := []int{0, 1, 2, 3}
	clean := tallyPhase(gdReceivers(t, n, [][]int{nil, all, all, all}), downloader, []int64{1e6, 1e6})
	// Members 0..3; 0 and 1 send: 3 receivers of each sender's 4 texts.
	if clean.All.Expected != 24 || clean.All.Delivered != 24 || clean.Downloader.Expected != 8 || clean.Downloader.Delivered != 8 {
		t.Fatalf("clean tally %+v", clean)
	}
	if clean.Others.Count != 16 || clean.DownloaderLatency.Count != 8 || clean.Others.P50 != 2000 || clean.DurationSec <= 0 {
		t.Errorf("clean latencies %+v / %+v, %.3f s", clean.Others, clean.DownloaderLatency, clean.DurationSec)
	}
	if g := cleanGroupDL(clean, clean); g.faulty() || (&Result{GroupDL: g}).faults() {
		t.Fatal("a clean result is faulty")
	}

	for name, c := range map[string]struct {
		seqs [][]int
		want func(GroupPhase) bool
	}{
		"downloader lost one":  {[][]int{nil, all, all, {0, 1, 3}}, func(p GroupPhase) bool { return p.Downloader.Lost == 1 && p.All.Lost == 1 }},
		"downloader reordered": {[][]int{nil, all, all, {0, 2, 1, 3}}, func(p GroupPhase) bool { return p.Downloader.Reordered == 1 }},
		"other duplicated":     {[][]int{nil, all, {0, 1, 1, 2, 3}, all}, func(p GroupPhase) bool { return p.All.Dup == 1 && p.Downloader.Dup == 0 }},
		"other lost all":       {[][]int{nil, all, nil, all}, func(p GroupPhase) bool { return p.All.Lost == 4 }},
	} {
		ph := tallyPhase(gdReceivers(t, n, c.seqs), downloader, []int64{1e6, 1e6})
		if !c.want(ph) {
			t.Errorf("%s: tally %+v", name, ph)
		}
		for which, g := range map[string]*GroupDLStats{"baseline": cleanGroupDL(ph, clean), "download": cleanGroupDL(clean, ph)} {
			if !g.faulty() {
				t.Errorf("%s in the %s phase: not faulty", name, which)
			}
		}
	}
	for name, spoil := range map[string]func(*GroupDLStats){
		"dropped":        func(g *GroupDLStats) { g.Dropped = 1 },
		"not verified":   func(g *GroupDLStats) { g.Verified = false },
		"not acked":      func(g *GroupDLStats) { g.Acked = false },
		"nothing during": func(g *GroupDLStats) { g.During = latency{} },
		"no download":    func(g *GroupDLStats) { g.Download = GroupPhase{} },
		"invalid":        func(g *GroupDLStats) { g.Baseline.All.Invalid = 1 },
	} {
		g := cleanGroupDL(clean, clean)
		spoil(g)
		if !g.faulty() || !(&Result{GroupDL: g}).faults() {
			t.Errorf("%s: not faulty", name)
		}
	}
}

// Only the other members' texts stamped inside the window count.
func TestDuringLatency(t *testing.T) {
	all := []int{0, 1, 2, 3}
	rxs := gdReceivers(t, 4, [][]int{nil, all, all, all})
	// Stamps are 1..4 ms, latency 2 ms each; the window 2..3 ms holds
	// seqs 1 and 2 of each stream the members 0..2 got (4 streams).
	l := duringLatency(rxs, 3, 2e6, 3e6)
	if l.Count != 8 || l.P99 != 2000 {
		t.Errorf("during %+v, want 8 texts of 2 ms", l)
	}
	if l := duringLatency(rxs, 3, 10e6, 20e6); l.Count != 0 {
		t.Errorf("empty window: %+v", l)
	}
}

func TestTrafficSentBy(t *testing.T) {
	start := time.Unix(100, 0)
	tr := &traffic{start: start, interval: 100 * time.Millisecond, senders: 2, sent: []int64{5, 3}}
	// Sender 0 sends at 0, 100, ... ms; sender 1 at 50, 150, 250 ms.
	for _, c := range []struct {
		at   time.Duration
		want int64
	}{{-time.Millisecond, 0}, {0, 1}, {50 * time.Millisecond, 2}, {220 * time.Millisecond, 5}, {time.Hour, 8}} {
		if got := tr.sentBy(start.Add(c.at)); got != c.want {
			t.Errorf("sentBy(+%s) = %d, want %d", c.at, got, c.want)
		}
	}
}

// groupdl against the real server: both phases deliver everything to
// every member, the file arrives byte-exact and leaves the queue, and
// every figure is there.
func TestGroupDL(t *testing.T) {
	s := startRelay(t)
	tmp := t.TempDir()
	out, err := s.run(t, "--json", "--prefix", "gdt", "--server-pid", strconv.Itoa(os.Getpid()), "groupdl",
		"--members", "4", "--senders", "2", "--messages", "10", "--rate", "200", "--size", "80",
		"--file-size", "16MiB", "--tmp", tmp)
	if err != nil {
		t.Fatal(err)
	}
	r := oneResult(t, out)
	g := r.GroupDL
	if g == nil {
		t.Fatal("no groupdl statistics")
	}
	check := func(name string, ph GroupPhase, sent int64) {
		t.Helper()
		d := ph.All
		if ph.Sent != sent || d.Expected != 3*sent || d.Delivered != d.Expected || d.Lost+d.Dup+d.Reordered+d.Invalid != 0 {
			t.Errorf("%s: sent %d (want %d), delivery %+v", name, ph.Sent, sent, d)
		}
		if ph.Downloader.Expected != sent || ph.Downloader.Delivered != sent {
			t.Errorf("%s: downloader %+v, want %d", name, ph.Downloader, sent)
		}
		for who, l := range map[string]latency{"others": ph.Others, "downloader": ph.DownloaderLatency} {
			if l.P50 <= 0 || l.P99 < l.P50 || l.Max < l.P99 {
				t.Errorf("%s: %s latency %+v", name, who, l)
			}
		}
		if ph.Others.Count != int(2*sent) {
			t.Errorf("%s: %d latencies for the others, want %d", name, ph.Others.Count, 2*sent)
		}
	}
	check("baseline", g.Baseline, 20)
	// The download phase sends until the file is in, at least as many.
	if g.Download.Sent < 20 {
		t.Errorf("download phase sent %d", g.Download.Sent)
	}
	check("with download", g.Download, g.Download.Sent)
	if g.During.Count == 0 || g.DuringSent == 0 || g.DuringSent > g.Download.Sent || g.P99Ratio <= 0 {
		t.Errorf("during %+v, %d sent, ratio %v", g.During, g.DuringSent, g.P99Ratio)
	}
	if !g.Verified || !g.Acked || g.Dropped != 0 || g.FileSize != 16<<20 || g.DownloadMBps <= 0 || g.UploadMBps <= 0 || g.SyncSec <= 0 {
		t.Errorf("file: %+v", g)
	}
	if r.Server == nil || r.Server.RSSPeakKB <= 0 {
		t.Errorf("server stats %+v", r.Server)
	}
	if left, _ := s.Spool.List("gdtw00003", 0); len(left) != 0 {
		t.Errorf("%d files still queued for the downloader", len(left))
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
	for _, want := range []string{"without download", "with download", "sent while the file streamed", "p99 against no download", "data verified"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q", want)
		}
	}
}

// A groupdl that cannot finish in time reports loss and returns.
func TestGroupDLTimeout(t *testing.T) {
	s := startRelay(t)
	t0 := time.Now()
	out, err := s.run(t, "--json", "--timeout", "1500ms", "groupdl", "--members", "3", "--senders", "1",
		"--messages", "1000", "--rate", "100", "--file-size", "1MiB", "--tmp", t.TempDir())
	if !errors.Is(err, errFaults) {
		t.Fatalf("err %v, want errFaults", err)
	}
	if took := time.Since(t0); took > 10*time.Second {
		t.Errorf("took %s", took)
	}
	r := oneResult(t, out)
	if !r.TimedOut || r.GroupDL == nil || r.GroupDL.Baseline.All.Lost == 0 {
		t.Errorf("timed out %v, groupdl %+v", r.TimedOut, r.GroupDL)
	}
}
