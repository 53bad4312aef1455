package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

func TestJudgeChat(t *testing.T) {
	fig := func(cpu, p99 float64) *chatFigures { return &chatFigures{CPUUs: cpu, P99Us: p99} }
	for _, c := range []struct {
		name     string
		row      chatRow
		ratio    float64
		diff     float64
		cpu, p99 string
	}{
		{"at both targets", chatRow{Paced: true, Floor: fig(15, 1000), Ours: fig(16.5, 1200)}, 1.1, 200, markPass, markPass},
		{"the issue's figures", chatRow{Paced: true, Floor: fig(15, 900), Ours: fig(19.5, 1101)}, 1.3, 201, markMiss, markMiss},
		{"faster than the floor", chatRow{Paced: true, Floor: fig(6.3, 2000), Ours: fig(5, 1500)}, 5 / 6.3, -500, markPass, markPass},
		{"flood: no target here", chatRow{Floor: fig(10, 5000), Ours: fig(5, 9000)}, 0.5, 4000, markNoTarget, markNoTarget},
		{"floor run failed", chatRow{Paced: true, Ours: fig(5, 900)}, 0, 0, markUnknown, markUnknown},
		{"CPU not measured", chatRow{Paced: true, Floor: fig(0, 900), Ours: fig(5, 900)}, 0, 0, markUnknown, markPass},
	} {
		v := judgeChat(c.row)
		if diff := v.CPURatio - c.ratio; diff > 1e-9 || diff < -1e-9 || v.CPUMark != c.cpu || v.P99Mark != c.p99 {
			t.Errorf("%s: %+v, want ratio %v, marks %s %s", c.name, v, c.ratio, c.cpu, c.p99)
		}
		if c.p99 != markUnknown && (!v.HaveP99 || v.P99DiffUs-c.diff > 1e-9 || c.diff-v.P99DiffUs > 1e-9) {
			t.Errorf("%s: p99 difference %v (%v), want %v", c.name, v.P99DiffUs, v.HaveP99, c.diff)
		}
	}
}

func TestFileRows(t *testing.T) {
	f := &FileStats{CeilingFileMBps: 1000, CeilingFromFileMBps: 950, UploadMBps: 900, DownloadFileMBps: 899,
		EndToEndMBps: 450, StreamNote: streamFailed, UploadE2EMBps: 765, UploadE2ERatio: 0.85}
	want := []struct {
		ratio float64
		mark  string
	}{{1, markNoTarget}, {0.95, markNoTarget}, {0.9, markPass}, {0.899, markMiss}, {0.45, markNoTarget}, {0, markMiss}, {0.85, markPass}}
	rows := fileRows(f)
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for i, r := range rows {
		if d := r.Ratio - want[i].ratio; d > 1e-9 || d < -1e-9 || r.Mark != want[i].mark {
			t.Errorf("%s: ratio %v mark %s, want %v %s", r.Name, r.Ratio, r.Mark, want[i].ratio, want[i].mark)
		}
	}
	// A measured stream is judged against 80%; without the ceilings
	// nothing can be judged.
	f.StreamNote, f.StreamMBps = "", 800
	if r := fileRows(f)[5]; r.Mark != markPass || r.Target != targetStreamRatio {
		t.Errorf("stream at 80%%: %+v", r)
	}
	f.StreamMBps = 799
	if r := fileRows(f)[5]; r.Mark != markMiss {
		t.Errorf("stream at 79.9%%: %+v", r)
	}
	// The encrypted upload is judged against the plaintext upload: 85%.
	f.UploadE2ERatio = 0.849
	if r := fileRows(f)[6]; r.Mark != markMiss || r.Target != targetE2EUploadRatio {
		t.Errorf("encrypted upload at 84.9%%: %+v", r)
	}
	f.CeilingFileMBps = 0
	if r := fileRows(f)[2]; r.Mark != markUnknown || r.Ratio != 0 {
		t.Errorf("upload without a ceiling: %+v", r)
	}
}

// chatResult is a clean dm or group result with the given figures.
func chatResult(cpu, p99 float64) *Result {
	return &Result{Msg: &MsgStats{delivery: delivery{Expected: 10, Delivered: 10}, Latency: latency{Count: 10, P99: p99}},
		Server: &ServerStats{CPUPerOpUs: cpu}}
}

// The suite's target tables: the floor and our runs paired by scenario,
// ratios and marks from the figures, streaming measured.
func TestPrintTargets(t *testing.T) {
	flood := msgParams{Clients: 100, Messages: 2000}
	paced := msgParams{Clients: 100, Messages: 500, Rate: 10000}
	group := msgParams{Group: true, Clients: 100, Senders: 10, Messages: 50, Rate: 100}
	lossy := chatResult(1, 1)
	lossy.Msg.Lost = 1
	done := []stepResult{
		{step{name: "floor: dm flood", floor: true, compare: "dm flood", msg: &flood}, chatResult(10, 50000)},
		{step{name: "dm flood", compare: "dm flood", msg: &flood}, chatResult(5, 40000)},
		{step{name: "floor: dm paced", floor: true, compare: "dm paced", msg: &paced}, chatResult(15, 900)},
		{step{name: "dm paced", compare: "dm paced", msg: &paced}, chatResult(19.5, 1500)},
		{step{name: "dm 1000x200 flood", msg: &flood}, chatResult(3, 1)},
		{step{name: "floor: group paced", floor: true, compare: "group paced", msg: &group}, lossy},
		{step{name: "group paced", compare: "group paced", msg: &group}, chatResult(8.7, 700)},
		{step{name: "file 1GiB", kind: "file"}, &Result{File: &FileStats{CeilingFileMBps: 1000, CeilingFromFileMBps: 900,
			UploadMBps: 950, DownloadFileMBps: 500, EndToEndMBps: 320, StreamMBps: 850, Verified: true}}},
	}
	rows := chatRows(done)
	if len(rows) != 3 || rows[0].Name != "dm flood" || rows[0].Paced || !rows[1].Paced || !rows[2].Paced ||
		rows[2].Floor != nil || rows[2].Ours == nil || rows[1].Floor.CPUUs != 15 || rows[1].Ours.CPUUs != 19.5 {
		t.Fatalf("chat rows %+v", rows)
	}
	var b bytes.Buffer
	printTargets(&b, done)
	out := b.String()
	t.Log("\n" + out)
	for _, re := range []string{
		`LOWER BOUND`,
		`(?m)^dm flood +10\.0 +5\.0 +0\.50x +- +- +50\.00ms +40\.00ms +-10\.00ms +- +-$`,
		`(?m)^dm paced +15\.0 +19\.5 +1\.30x +≤1\.10x +MISS +900µs +1\.50ms +\+600µs +≤\+200µs +MISS$`,
		`(?m)^group paced +- +8\.7 +- +≤1\.10x +\? +- +700µs +- +≤\+200µs +\?$`,
		`(?m)^file 1GiB: each leg against the TLS-into-file ceiling`,
		`(?m)^ceiling: TLS into file\+fsync +1000\.0 +100% +- +-$`,
		`(?m)^upload leg \(into the server's spool, fsync\) +950\.0 +95% +≥90% +pass$`,
		`(?m)^download leg \(into a file, fsync\) +500\.0 +50% +≥90% +MISS$`,
		`(?m)^end to end, store-and-forward \(upload, then download\) +320\.0 +32% +- +-$`,
		`(?m)^end to end, streaming +850\.0 +85% +≥80% +pass$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output lacks %s", re)
		}
	}
	if strings.Contains(out, "dm 1000x200") {
		t.Error("a step that is not compared is in the comparison")
	}
	// Nothing compared, no file: nothing printed.
	b.Reset()
	printTargets(&b, done[4:5])
	if b.Len() != 0 {
		t.Errorf("printed %q", b.String())
	}
}
