package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// The suite's last two tables hold this run's figures against the targets
// of issue 10: the compared chat scenarios side by side (floor relay and
// our server) and the file legs against the TLS-into-file ceiling. The
// marks judge one run on a shared machine; they never fail the suite.

// Marks in the target tables.
const (
	markPass     = "pass"
	markMiss     = "MISS"
	markNoTarget = "-" // the row has no target
	markUnknown  = "?" // a figure it needs is missing
)

// ratioSlack absorbs floating-point error, so that a figure exactly at its
// target passes (16.5 µs against a 15 µs floor is 1.1x).
const ratioSlack = 1e-9

// chatFigures are what the comparison takes from one run of a chat
// scenario.
type chatFigures struct {
	CPUUs float64 // server CPU per delivered message, µs; 0: not measured
	P99Us float64 // p99 latency, µs; 0: nothing delivered
}

// chatFiguresOf takes the figures from a run; nil for a failed run or one
// that did not deliver cleanly (its figures would mislead).
func chatFiguresOf(r *Result) *chatFigures {
	if r == nil || r.Msg == nil || r.faults() {
		return nil
	}
	f := &chatFigures{P99Us: r.Msg.Latency.P99}
	if r.Server != nil {
		f.CPUUs = r.Server.CPUPerOpUs
	}
	return f
}

// chatRow is one compared chat scenario: its run against the floor relay
// and against our server.
type chatRow struct {
	Name        string
	Paced       bool         // the targets apply to paced scenarios only
	Floor, Ours *chatFigures // nil: that run failed or did not run
}

// chatVerdict is a chatRow's ratio, difference and marks.
type chatVerdict struct {
	CPURatio  float64 // ours / floor; 0: a figure is missing
	P99DiffUs float64 // ours - floor, µs; valid with HaveP99
	HaveP99   bool
	CPUMark   string
	P99Mark   string
}

// judgeChat compares a row against the targets: CPU per message at most
// targetCPURatio times the floor's, p99 at most the floor's plus
// targetP99SlackUs. Flooded rows have no target here (theirs is "no worse
// than before", which one run cannot judge).
func judgeChat(r chatRow) chatVerdict {
	v := chatVerdict{CPUMark: markNoTarget, P99Mark: markNoTarget}
	if r.Floor != nil && r.Ours != nil {
		if r.Floor.CPUUs > 0 && r.Ours.CPUUs > 0 {
			v.CPURatio = r.Ours.CPUUs / r.Floor.CPUUs
		}
		if r.Floor.P99Us > 0 && r.Ours.P99Us > 0 {
			v.P99DiffUs, v.HaveP99 = r.Ours.P99Us-r.Floor.P99Us, true
		}
	}
	if r.Paced {
		v.CPUMark = mark(v.CPURatio > 0, v.CPURatio <= targetCPURatio+ratioSlack)
		v.P99Mark = mark(v.HaveP99, v.P99DiffUs <= targetP99SlackUs+ratioSlack)
	}
	return v
}

// mark is pass or MISS, or markUnknown without the figure.
func mark(have, ok bool) string {
	switch {
	case !have:
		return markUnknown
	case ok:
		return markPass
	}
	return markMiss
}

// printChatTable writes the floor comparison.
func printChatTable(w io.Writer, rows []chatRow) {
	fmt.Fprintln(w, "\nfloor relay (loadgen floor: a LOWER BOUND for measurement, never a server) against our server,")
	fmt.Fprintln(w, "one run each; targets for the paced scenarios (issue 10):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tCPU µs/msg floor\tours\tours/floor\ttarget\tmark\tp99 floor\tours\tours-floor\ttarget\tmark")
	for _, r := range rows {
		v := judgeChat(r)
		cpuTarget, p99Target := "-", "-"
		if r.Paced {
			cpuTarget, p99Target = fmt.Sprintf("≤%.2fx", targetCPURatio), "≤+"+us(targetP99SlackUs)
		}
		cpu := func(f *chatFigures) string {
			if f == nil || f.CPUUs <= 0 {
				return "-"
			}
			return fmt.Sprintf("%.1f", f.CPUUs)
		}
		p99 := func(f *chatFigures) string {
			if f == nil || f.P99Us <= 0 {
				return "-"
			}
			return us(f.P99Us)
		}
		ratio, diff := "-", "-"
		if v.CPURatio > 0 {
			ratio = fmt.Sprintf("%.2fx", v.CPURatio)
		}
		if v.HaveP99 {
			diff = signedUs(v.P99DiffUs)
		}
		fmt.Fprintln(tw, strings.Join([]string{r.Name, cpu(r.Floor), cpu(r.Ours), ratio, cpuTarget, v.CPUMark,
			p99(r.Floor), p99(r.Ours), diff, p99Target, v.P99Mark}, "\t"))
	}
	tw.Flush()
}

// signedUs is us with a sign.
func signedUs(v float64) string {
	if v < 0 {
		return "-" + us(-v)
	}
	return "+" + us(v)
}

// fileRow is one row of the file table.
type fileRow struct {
	Name   string
	MBps   float64 // 0 with Note, or when not measured
	Note   string  // shown instead of a figure: why there is none (a failure)
	Ratio  float64 // against the TLS-into-file ceiling; 0: unknown
	Target float64 // the least Ratio; 0: no target
	Mark   string
}

// fileRows lists the ceilings and each leg of f against the TLS-into-file
// ceiling (ceiling 2): upload and download at least targetLegRatio, end to
// end streaming at least targetStreamRatio.
func fileRows(f *FileStats) []fileRow {
	rows := []fileRow{
		{Name: "ceiling: TLS into file+fsync", MBps: f.CeilingFileMBps},
		{Name: "ceiling: TLS from file into file+fsync", MBps: f.CeilingFromFileMBps},
		{Name: "upload leg (into the server's spool, fsync)", MBps: f.UploadMBps, Target: targetLegRatio},
		{Name: "download leg (into a file, fsync)", MBps: f.DownloadFileMBps, Target: targetLegRatio},
		{Name: "end to end, store-and-forward (upload, then download)", MBps: f.EndToEndMBps},
		{Name: "end to end, streaming", MBps: f.StreamMBps, Note: f.StreamNote, Target: targetStreamRatio},
	}
	for i := range rows {
		r := &rows[i]
		if f.CeilingFileMBps > 0 && r.MBps > 0 {
			r.Ratio = r.MBps / f.CeilingFileMBps
		}
		switch {
		case r.Target == 0:
			r.Mark = markNoTarget
		case r.Note != "":
			r.Mark = markMiss // the note says it failed
		default:
			r.Mark = mark(r.Ratio > 0, r.Ratio+ratioSlack >= r.Target)
		}
	}
	// The encrypted upload against the plaintext upload (issue 11), not
	// against the ceiling.
	e := fileRow{Name: "upload leg, end-to-end encrypted (of the plaintext upload leg)", MBps: f.UploadE2EMBps,
		Ratio: f.UploadE2ERatio, Target: targetE2EUploadRatio}
	e.Mark = mark(e.Ratio > 0, e.Ratio+ratioSlack >= e.Target)
	return append(rows, e)
}

// printFileTable writes the file table of one file scenario.
func printFileTable(w io.Writer, name string, f *FileStats) {
	fmt.Fprintf(w, "\n%s: each leg against the TLS-into-file ceiling (targets: issue 10):\n", name)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "leg\tMB/s\tof ceiling\ttarget\tmark")
	for _, r := range fileRows(f) {
		fig, ratio, target := "-", "-", "-"
		switch {
		case r.Note != "":
			fig = r.Note
		case r.MBps > 0:
			fig = fmt.Sprintf("%.1f", r.MBps)
		}
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.0f%%", 100*r.Ratio)
		}
		if r.Target > 0 {
			target = fmt.Sprintf("≥%.0f%%", 100*r.Target)
		}
		fmt.Fprintln(tw, strings.Join([]string{r.Name, fig, ratio, target, r.Mark}, "\t"))
	}
	tw.Flush()
}

// chatRows pairs the floor relay's run of each compared scenario with
// ours, in the order the suite ran them.
func chatRows(done []stepResult) []chatRow {
	var rows []chatRow
	index := map[string]int{}
	for _, d := range done {
		if d.st.compare == "" {
			continue
		}
		i, ok := index[d.st.compare]
		if !ok {
			i = len(rows)
			index[d.st.compare] = i
			rows = append(rows, chatRow{Name: d.st.compare, Paced: d.st.msg != nil && d.st.msg.Rate > 0})
		}
		if d.st.floor {
			rows[i].Floor = chatFiguresOf(d.res)
		} else {
			rows[i].Ours = chatFiguresOf(d.res)
		}
	}
	return rows
}

// printTargets writes the floor comparison and the file tables of what
// the suite ran, if it ran any of them.
func printTargets(w io.Writer, done []stepResult) {
	if rows := chatRows(done); len(rows) > 0 {
		printChatTable(w, rows)
	}
	for _, d := range done {
		if d.res != nil && d.res.File != nil {
			printFileTable(w, d.st.name, d.res.File)
		}
	}
}
