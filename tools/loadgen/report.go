package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is what one scenario measured. It prints as a table and, with
// --json, as one JSON line.
type Result struct {
	Scenario string   `json:"scenario"`
	Kind     string   `json:"kind"`
	Label    string   `json:"label"`
	TimedOut bool     `json:"timed_out,omitempty"`
	Stalled  bool     `json:"stalled,omitempty"`
	Errors   []string `json:"errors,omitempty"`
	Notes    []string `json:"notes,omitempty"`

	Msg     *MsgStats     `json:"messages,omitempty"`
	Idle    *IdleStats    `json:"idle,omitempty"`
	Login   *LoginStats   `json:"login,omitempty"`
	File    *FileStats    `json:"file,omitempty"`
	GroupDL *GroupDLStats `json:"groupdl,omitempty"`
	Server  *ServerStats  `json:"server,omitempty"`
}

// MsgStats is the outcome of dm and group.
type MsgStats struct {
	Clients           int     `json:"clients"`
	Senders           int     `json:"senders"`
	MessagesPerSender int     `json:"messages_per_sender"`
	Size              int     `json:"size"`
	RateTarget        float64 `json:"rate_target,omitempty"`
	Sent              int64   `json:"sent"`
	delivery
	Foreign         int64   `json:"foreign,omitempty"`
	NotOnline       int64   `json:"not_online,omitempty"`
	Dropped         int     `json:"dropped_conns"`
	ConnectSec      float64 `json:"connect_sec"`
	DurationSec     float64 `json:"duration_sec"`
	DeliveredPerSec float64 `json:"delivered_per_sec"`
	Latency         latency `json:"latency"`
}

// IdleStats is the outcome of idle.
type IdleStats struct {
	Clients       int     `json:"clients"`
	Alive         int     `json:"alive"`
	ConnectSec    float64 `json:"connect_sec"`
	ConnectPerSec float64 `json:"connect_per_sec"`
	Connect       latency `json:"connect_latency"`
	HoldSec       float64 `json:"hold_sec"`
}

// LoginStats is the outcome of login.
type LoginStats struct {
	Count         int     `json:"count"`
	SignUps       int     `json:"signups"`
	LogIns        int     `json:"logins"`
	SignUpPerSec  float64 `json:"signups_per_sec"`
	LogInPerSec   float64 `json:"logins_per_sec"`
	SignUpLatency latency `json:"signup_latency"`
	LogInLatency  latency `json:"login_latency"`
}

// FileStats is the outcome of file. Every rate is in MB/s (1e6 bytes).
type FileStats struct {
	Size             int64   `json:"size"`
	UploadSec        float64 `json:"upload_sec"`
	UploadMBps       float64 `json:"upload_mbps"`
	DownloadSec      float64 `json:"download_discard_sec"`
	DownloadMBps     float64 `json:"download_discard_mbps"`
	Upload2Sec       float64 `json:"upload2_sec"`
	DownloadFileSec  float64 `json:"download_file_sec"`
	DownloadFileMBps float64 `json:"download_file_mbps"`
	EndToEndMBps     float64 `json:"end_to_end_mbps"`
	CeilingTLSMBps   float64 `json:"ceiling_tls_mbps,omitempty"`
	CeilingFileMBps  float64 `json:"ceiling_tls_file_mbps,omitempty"`
	UploadRatio      float64 `json:"upload_ratio,omitempty"`
	DownloadRatio    float64 `json:"download_ratio,omitempty"`
	// DownloadFileRatio is the download into a file against the TLS+file ceiling.
	DownloadFileRatio float64 `json:"download_file_ratio,omitempty"`
	// EndToEndRatio is store-and-forward end to end against the TLS+file ceiling.
	EndToEndRatio float64 `json:"end_to_end_ratio,omitempty"`
	// CeilingFromFileMBps is ceiling 3: TLS from a file (in the page
	// cache) into a file with fsync, both ends on disk as in a real leg.
	CeilingFromFileMBps float64 `json:"ceiling_tls_from_file_mbps,omitempty"`
	// StreamMBps is end-to-end streaming (streamEndToEnd), StreamRatio
	// against the TLS+file ceiling; StreamNote says why it is missing.
	StreamMBps  float64 `json:"stream_mbps,omitempty"`
	StreamSec   float64 `json:"stream_sec,omitempty"`
	StreamRatio float64 `json:"stream_ratio,omitempty"`
	StreamNote  string  `json:"stream_note,omitempty"`
	// UploadE2E* is the end-to-end encrypted upload (filee2e.go), its
	// rate in plaintext bytes, and its ratio to the better plaintext
	// upload.
	UploadE2ESec   float64 `json:"upload_e2e_sec,omitempty"`
	UploadE2EMBps  float64 `json:"upload_e2e_mbps,omitempty"`
	UploadE2ERatio float64 `json:"upload_e2e_ratio,omitempty"`
	// Server memory while streaming: a small file (StreamSmallSize
	// bytes) is streamed first, then the full one; each *RSSGrowthKB is
	// the server's peak resident memory during that transfer less its
	// resident memory before it (0 without the server's PID, which
	// StreamRSSKnown says).
	StreamSmallSize        int64 `json:"stream_small_size,omitempty"`
	StreamSmallRSSGrowthKB int64 `json:"stream_small_rss_growth_kb"`
	StreamRSSGrowthKB      int64 `json:"stream_rss_growth_kb"`
	StreamRSSPeakKB        int64 `json:"stream_rss_peak_kb"` // the peak during the full stream
	StreamRSSKnown         bool  `json:"stream_rss_known"`
	Verified               bool  `json:"verified"`
}

// GroupDLStats is the outcome of groupdl. "Others" are the members that
// are not downloading; latencies are in microseconds, rates in MB/s.
type GroupDLStats struct {
	Members    int     `json:"members"`
	Senders    int     `json:"senders"`
	Size       int     `json:"size"`
	RateTarget float64 `json:"rate_target"`
	FileSize   int64   `json:"file_size"`
	// Baseline is the traffic with no download, Download the same
	// traffic while the last member downloads.
	Baseline GroupPhase `json:"baseline"`
	Download GroupPhase `json:"with_download"`
	// During is the others' latency of the texts sent while the file
	// streamed (from CMD <get ack> to its end marker); DuringSent counts
	// those texts (each reaches Members-1 members).
	During     latency `json:"during_latency"`
	DuringSent int64   `json:"during_sent"`
	// P99Ratio is During.P99 over Baseline.Others.P99.
	P99Ratio     float64 `json:"p99_ratio"`
	UploadSec    float64 `json:"upload_sec"`
	UploadMBps   float64 `json:"upload_mbps"`
	DownloadSec  float64 `json:"download_sec"` // CMD <get ack> to the end marker
	DownloadMBps float64 `json:"download_mbps"`
	SyncSec      float64 `json:"download_fsync_sec"`
	// Verified: the bytes read, the server's hash, the generated data and
	// the file on disk agree. Acked: ACKF was sent and a second
	// CMD <get ack> found the queue empty.
	Verified bool `json:"verified"`
	Acked    bool `json:"acked"`
	Dropped  int  `json:"dropped_conns"`
}

// GroupPhase is one phase of groupdl.
type GroupPhase struct {
	Sent              int64    `json:"sent"`
	All               delivery `json:"all"` // every member, the downloader included
	Downloader        delivery `json:"downloader"`
	Others            latency  `json:"others_latency"`
	DownloaderLatency latency  `json:"downloader_latency"`
	DurationSec       float64  `json:"duration_sec"` // first send to last delivery
}

// faulty reports whether a phase lost, duplicated or reordered a text for
// any member, measured nothing, a member was dropped, the file was not
// byte-exact or stayed queued after its ACKF.
func (g *GroupDLStats) faulty() bool {
	for _, ph := range []GroupPhase{g.Baseline, g.Download} {
		d := ph.All
		if d.Lost+d.Dup+d.Reordered+d.Invalid > 0 || d.Expected == 0 || ph.Downloader.Expected == 0 {
			return true
		}
	}
	return g.Dropped > 0 || !g.Verified || !g.Acked || g.During.Count == 0
}

// ServerStats is the server's cost, read from /proc with --server-pid.
type ServerStats struct {
	PID          int     `json:"pid"`
	CPUSec       float64 `json:"cpu_sec"`
	CPUPerOpUs   float64 `json:"cpu_per_op_us,omitempty"`
	CPUPct       float64 `json:"cpu_pct,omitempty"`
	RSSBeforeKB  int64   `json:"rss_before_kb"`
	RSSPeakKB    int64   `json:"rss_peak_kb"`
	RSSGrowthKB  int64   `json:"rss_growth_kb"`
	RSSPerConnKB float64 `json:"rss_per_conn_kb,omitempty"`
	// RSSConnectedKB is idle's RSS with every client connected.
	RSSConnectedKB int64 `json:"rss_connected_kb,omitempty"`
}

// faults reports whether the result shows lost, duplicated, reordered or
// dropped traffic, a timeout or an error.
func (r *Result) faults() bool {
	if r.TimedOut || r.Stalled || len(r.Errors) > 0 {
		return true
	}
	if m := r.Msg; m != nil {
		return m.Lost+m.Dup+m.Reordered+m.Invalid+m.Foreign+m.NotOnline > 0 || m.Dropped > 0
	}
	if i := r.Idle; i != nil {
		return i.Alive != i.Clients
	}
	if l := r.Login; l != nil {
		return l.SignUps != l.Count || l.LogIns != l.Count
	}
	if f := r.File; f != nil {
		return !f.Verified
	}
	if g := r.GroupDL; g != nil {
		return g.faulty()
	}
	return false
}

func (r *Result) addError(format string, args ...any) {
	const maxErrors = 10
	if len(r.Errors) < maxErrors {
		r.Errors = append(r.Errors, fmt.Sprintf(format, args...))
	}
}

// print writes the human-readable table, then the JSON line if asked.
func (r *Result) print(w io.Writer, asJSON bool) {
	fmt.Fprintf(w, "\n== %s: %s\n", r.Scenario, r.Label)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "  %s\t%s\n", k, fmt.Sprintf(format, args...)) }
	if m := r.Msg; m != nil {
		row("sent", "%d", m.Sent)
		row("delivered", "%d of %d", m.Delivered, m.Expected)
		row("lost/dup/reordered", "%d / %d / %d", m.Lost, m.Dup, m.Reordered)
		if m.Invalid+m.Foreign+m.NotOnline > 0 {
			row("invalid/foreign/not-online", "%d / %d / %d", m.Invalid, m.Foreign, m.NotOnline)
		}
		row("dropped connections", "%d", m.Dropped)
		row("connect+log-in", "%.2f s", m.ConnectSec)
		row("first send to last delivery", "%.3f s", m.DurationSec)
		row("delivered msgs/s", "%.0f", m.DeliveredPerSec)
		row("latency", "p50 %s  p90 %s  p99 %s  max %s", us(m.Latency.P50), us(m.Latency.P90), us(m.Latency.P99), us(m.Latency.Max))
	}
	if i := r.Idle; i != nil {
		row("connected", "%d (alive after hold: %d)", i.Clients, i.Alive)
		row("connect+log-in", "%.2f s, %.0f conns/s", i.ConnectSec, i.ConnectPerSec)
		row("connect latency", "p50 %s  p99 %s  max %s", us(i.Connect.P50), us(i.Connect.P99), us(i.Connect.Max))
		row("hold", "%.1f s", i.HoldSec)
	}
	if l := r.Login; l != nil {
		row("sign-ups", "%d of %d, %.1f/s, p50 %s p99 %s", l.SignUps, l.Count, l.SignUpPerSec, us(l.SignUpLatency.P50), us(l.SignUpLatency.P99))
		row("log-ins", "%d of %d, %.1f/s, p50 %s p99 %s", l.LogIns, l.Count, l.LogInPerSec, us(l.LogInLatency.P50), us(l.LogInLatency.P99))
	}
	if f := r.File; f != nil {
		row("size", "%d bytes (%.1f MB)", f.Size, float64(f.Size)/megabyte)
		row("upload", "%.1f MB/s (%.2f s)%s", f.UploadMBps, f.UploadSec, ratio(f.UploadRatio, "TLS+file ceiling"))
		row("download, discard", "%.1f MB/s (%.2f s)%s", f.DownloadMBps, f.DownloadSec, ratio(f.DownloadRatio, "TLS ceiling"))
		row("download into file+fsync", "%.1f MB/s (%.2f s; its upload %.2f s)%s", f.DownloadFileMBps, f.DownloadFileSec, f.Upload2Sec, ratio(f.DownloadFileRatio, "TLS+file ceiling"))
		row("end to end, store-and-forward", "%.1f MB/s%s", f.EndToEndMBps, ratio(f.EndToEndRatio, "TLS+file ceiling"))
		if f.UploadE2EMBps > 0 {
			row("upload, end-to-end encrypted", "%.1f MB/s of plaintext (%.2f s)%s", f.UploadE2EMBps, f.UploadE2ESec, ratio(f.UploadE2ERatio, "plaintext upload"))
		}
		if f.StreamNote != "" {
			row("end to end, streaming", "%s", f.StreamNote)
		} else {
			row("end to end, streaming", "%.1f MB/s (%.2f s)%s", f.StreamMBps, f.StreamSec, ratio(f.StreamRatio, "TLS+file ceiling"))
		}
		if f.StreamRSSKnown {
			row("server memory, streaming", "%s", f.streamMemory())
		}
		if f.CeilingTLSMBps > 0 {
			row("ceiling 1: TLS stream", "%.1f MB/s", f.CeilingTLSMBps)
			row("ceiling 2: TLS into file+fsync", "%.1f MB/s", f.CeilingFileMBps)
			row("ceiling 3: TLS from file into file+fsync", "%.1f MB/s", f.CeilingFromFileMBps)
		}
		row("data verified", "%v", f.Verified)
	}
	if g := r.GroupDL; g != nil {
		lat := func(l latency) string {
			return fmt.Sprintf("p50 %s  p90 %s  p99 %s  max %s", us(l.P50), us(l.P90), us(l.P99), us(l.Max))
		}
		row("upload before the traffic", "%.1f MB/s (%.2f s)", g.UploadMBps, g.UploadSec)
		for _, ph := range []struct {
			name string
			ph   GroupPhase
		}{{"without download", g.Baseline}, {"with download", g.Download}} {
			d, dd := ph.ph.All, ph.ph.Downloader
			row(ph.name, "sent %d, delivered %d of %d, lost/dup/reordered %d / %d / %d, %.2f s",
				ph.ph.Sent, d.Delivered, d.Expected, d.Lost, d.Dup, d.Reordered, ph.ph.DurationSec)
			row("  latency, other members", "%s", lat(ph.ph.Others))
			row("  latency, downloader", "%s (%d of %d, lost/dup/reordered %d / %d / %d)",
				lat(ph.ph.DownloaderLatency), dd.Delivered, dd.Expected, dd.Lost, dd.Dup, dd.Reordered)
		}
		row("sent while the file streamed", "%d of %d", g.DuringSent, g.Download.Sent)
		row("  latency, other members", "%s", lat(g.During))
		row("  p99 against no download", "%.2fx", g.P99Ratio)
		row("download", "%.1f MB/s (%.2f s from CMD <get ack> to the end marker), then fsync %.2f s",
			g.DownloadMBps, g.DownloadSec, g.SyncSec)
		row("ACKF, then queue empty", "%v", g.Acked)
		row("data verified", "%v", g.Verified)
		row("dropped connections", "%d", g.Dropped)
	}
	if s := r.Server; s != nil {
		switch {
		case r.Msg != nil:
			row("server CPU", "%.1f µs/msg (%.2f s)", s.CPUPerOpUs, s.CPUSec)
		case r.Login != nil:
			row("server CPU", "%.0f µs per sign-up or log-in (%.2f s)", s.CPUPerOpUs, s.CPUSec)
		case r.Idle != nil:
			row("server CPU during hold", "%.2f%% of a core", s.CPUPct)
		default:
			row("server CPU", "%.2f s", s.CPUSec)
		}
		switch {
		case r.Idle != nil:
			row("server RSS", "%s before, %s connected at the end of the hold: %.1f KB/conn (peak %s: %.1f KB/conn)",
				kb(s.RSSBeforeKB), kb(s.RSSConnectedKB), s.RSSPerConnKB, kb(s.RSSPeakKB), float64(s.RSSGrowthKB)/float64(r.Idle.Clients))
		case s.RSSPerConnKB > 0:
			row("server RSS", "peak %s (+%s over %s before), %.1f KB/conn", kb(s.RSSPeakKB), kb(s.RSSGrowthKB), kb(s.RSSBeforeKB), s.RSSPerConnKB)
		default:
			row("server RSS", "peak %s (+%s over %s before)", kb(s.RSSPeakKB), kb(s.RSSGrowthKB), kb(s.RSSBeforeKB))
		}
	}
	if r.TimedOut {
		row("TIMED OUT", "the scenario hit its timeout; what did not arrive counts as lost")
	}
	if r.Stalled {
		row("STALLED", "nothing arrived for %s after the last send; the rest counts as lost", stallGrace)
	}
	for _, e := range r.Errors {
		row("error", "%s", e)
	}
	for _, n := range r.Notes {
		row("note", "%s", n)
	}
	tw.Flush()
	if asJSON {
		b, err := json.Marshal(r)
		if err == nil {
			fmt.Fprintf(w, "%s\n", b)
		}
	}
}

func ratio(r float64, of string) string {
	if r == 0 {
		return ""
	}
	return fmt.Sprintf(", %.0f%% of the %s", 100*r, of)
}

// us formats microseconds with a unit that keeps 3 significant digits.
func us(v float64) string {
	d := time.Duration(v * 1e3)
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", v)
	case d < time.Second:
		return fmt.Sprintf("%.2fms", v/1e3)
	default:
		return fmt.Sprintf("%.2fs", v/1e6)
	}
}

func kb(v int64) string {
	if v >= 10<<10 {
		return fmt.Sprintf("%.1f MB", float64(v)/1024)
	}
	return fmt.Sprintf("%d KB", v)
}

// summary is one row of the suite's final table.
type summary struct {
	scenario, rate, p50, p99, faults, cpu, rss string
}

func (r *Result) summary() summary {
	s := summary{scenario: r.Scenario, rate: "-", p50: "-", p99: "-", faults: "-", cpu: "-", rss: "-"}
	if m := r.Msg; m != nil {
		s.rate = fmt.Sprintf("%.0f msg/s", m.DeliveredPerSec)
		s.p50, s.p99 = us(m.Latency.P50), us(m.Latency.P99)
		s.faults = fmt.Sprintf("%d/%d/%d", m.Lost, m.Dup, m.Reordered)
		if m.Dropped > 0 {
			s.faults += fmt.Sprintf(" (%d dropped)", m.Dropped)
		}
	}
	if i := r.Idle; i != nil {
		s.rate = fmt.Sprintf("%.0f conn/s", i.ConnectPerSec)
		s.p50, s.p99 = us(i.Connect.P50), us(i.Connect.P99)
		s.faults = fmt.Sprintf("%d closed", i.Clients-i.Alive)
	}
	if l := r.Login; l != nil {
		s.rate = fmt.Sprintf("%.1f signup/s %.1f login/s", l.SignUpPerSec, l.LogInPerSec)
		s.p50, s.p99 = us(l.LogInLatency.P50), us(l.LogInLatency.P99)
		s.faults = fmt.Sprintf("%d failed", 2*l.Count-l.SignUps-l.LogIns)
	}
	if f := r.File; f != nil {
		s.rate = fmt.Sprintf("%.0f MB/s e2e (up %.0f%%, down %.0f%%)", f.EndToEndMBps, 100*f.UploadRatio, 100*f.DownloadRatio)
		if f.Verified {
			s.faults = "verified"
		} else {
			s.faults = "NOT verified"
		}
	}
	if g := r.GroupDL; g != nil {
		s.rate = fmt.Sprintf("download %.0f MB/s; p99 %.2fx of %s without", g.DownloadMBps, g.P99Ratio, us(g.Baseline.Others.P99))
		s.p50, s.p99 = us(g.During.P50), us(g.During.P99)
		var lost, dup, reord int64
		for _, ph := range []GroupPhase{g.Baseline, g.Download} {
			lost, dup, reord = lost+ph.All.Lost, dup+ph.All.Dup, reord+ph.All.Reordered
		}
		s.faults = fmt.Sprintf("%d/%d/%d", lost, dup, reord)
		if g.Dropped > 0 {
			s.faults += fmt.Sprintf(" (%d dropped)", g.Dropped)
		}
		if !g.Verified || !g.Acked {
			s.faults += " FILE NOT VERIFIED"
		}
	}
	if v := r.Server; v != nil {
		switch {
		case r.Msg != nil:
			s.cpu = fmt.Sprintf("%.1f", v.CPUPerOpUs)
		case r.Login != nil:
			s.cpu = fmt.Sprintf("%.0f/op", v.CPUPerOpUs)
		case r.Idle != nil:
			s.cpu = fmt.Sprintf("%.1f%% idle", v.CPUPct)
		default:
			s.cpu = fmt.Sprintf("%.2f s", v.CPUSec)
		}
		switch {
		case r.Idle != nil:
			s.rss = fmt.Sprintf("%s, %.1f KB/conn (peak %.1f)", kb(v.RSSConnectedKB), v.RSSPerConnKB, float64(v.RSSGrowthKB)/float64(r.Idle.Clients))
		case r.File != nil || r.GroupDL != nil:
			s.rss = fmt.Sprintf("%s, +%s in transfer", kb(v.RSSPeakKB), kb(v.RSSGrowthKB))
		case v.RSSPerConnKB > 0:
			s.rss = fmt.Sprintf("%s, %.1f KB/conn", kb(v.RSSPeakKB), v.RSSPerConnKB)
		default:
			s.rss = "peak " + kb(v.RSSPeakKB)
		}
	}
	if r.TimedOut {
		s.faults += " TIMEOUT"
	}
	if r.Stalled {
		s.faults += " STALLED"
	}
	if len(r.Errors) > 0 {
		s.faults += " ERROR"
	}
	return s
}

// printSummary writes the suite's final table.
func printSummary(w io.Writer, rows []summary) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tdelivered/s\tp50\tp99\tloss/dup/reorder\tserver µs CPU/msg\tserver RSS")
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join([]string{r.scenario, r.rate, r.p50, r.p99, r.faults, r.cpu, r.rss}, "\t"))
	}
	tw.Flush()
}
