package main

import (
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// stream tracks one (sender, target) flow of messages numbered 0 to
// expected-1. It is used by one goroutine only (the target's reader).
type stream struct {
	expected  int
	seen      []uint64 // bit set of the sequence numbers received
	unique    int      // distinct sequence numbers received
	dup       int      // sequence numbers received again
	reordered int      // new sequence numbers lower than one already seen
	invalid   int      // sequence numbers outside 0..expected-1
	maxSeq    int      // highest sequence number seen, -1 at first
}

func newStream(expected int) *stream {
	return &stream{expected: expected, seen: make([]uint64, (expected+63)/64), maxSeq: -1}
}

// add records the arrival of seq and reports whether it is new.
func (s *stream) add(seq int) bool {
	if seq < 0 || seq >= s.expected {
		s.invalid++
		return false
	}
	word, bit := seq/64, uint64(1)<<(seq%64)
	if s.seen[word]&bit != 0 {
		s.dup++
		return false
	}
	s.seen[word] |= bit
	s.unique++
	if seq < s.maxSeq {
		s.reordered++
	} else {
		s.maxSeq = seq
	}
	return true
}

// lost is how many expected messages never arrived.
func (s *stream) lost() int { return s.expected - s.unique }

// truncate sets the expected count to n, no more than the count the
// stream was made with, once the sender has said how many it sent: any
// sequence number from n on that arrived was never sent and counts as
// invalid. Use it only after the stream's reader has stopped.
func (s *stream) truncate(n int) {
	n = min(max(n, 0), s.expected)
	for seq := n; seq <= s.maxSeq && seq < s.expected; seq++ {
		word, bit := seq/64, uint64(1)<<(seq%64)
		if s.seen[word]&bit != 0 {
			s.seen[word] &^= bit
			s.unique--
			s.invalid++
		}
	}
	s.expected = n
}

// delivery totals the streams of a scenario.
type delivery struct {
	Expected  int64 `json:"expected"`
	Delivered int64 `json:"delivered"`
	Lost      int64 `json:"lost"`
	Dup       int64 `json:"dup"`
	Reordered int64 `json:"reordered"`
	Invalid   int64 `json:"invalid,omitempty"`
}

func (d *delivery) addStream(s *stream) {
	d.Expected += int64(s.expected)
	d.Delivered += int64(s.unique)
	d.Lost += int64(s.lost())
	d.Dup += int64(s.dup)
	d.Reordered += int64(s.reordered)
	d.Invalid += int64(s.invalid)
}

// receiver is the state of one receiving client: its expected streams by
// sender index, the latencies of new messages and the time of the last
// arrival. Only the client's reader goroutine touches it until the reader
// has exited.
type receiver struct {
	streams   map[int]*stream
	lat       []int64 // nanoseconds, receive time minus send stamp
	last      int64   // UnixNano of the last message received
	foreign   int     // texts that are not ours or from an unexpected sender
	notOnline int     // CNT <user not online> answers
	other     int     // any other unexpected line

	keepSent bool    // keep the send stamps too
	sent     []int64 // with keepSent: the send stamp (UnixNano) of each lat

	progress *atomic.Int64 // every relayed line, for stall detection
	onNew    func()        // called for each new message
}

func newReceiver(progress *atomic.Int64, onNew func()) *receiver {
	return &receiver{streams: make(map[int]*stream), progress: progress, onNew: onNew}
}

// expect adds a stream of n messages from sender.
func (rx *receiver) expect(sender, n int) { rx.streams[sender] = newStream(n) }

// record handles one relayed text that arrived at.
func (rx *receiver) record(text string, at time.Time) {
	rx.progress.Add(1)
	now := at.UnixNano()
	rx.last = max(rx.last, now)
	p, ok := parsePayload(text)
	if !ok {
		rx.foreign++
		return
	}
	st := rx.streams[p.sender]
	if st == nil {
		rx.foreign++
		return
	}
	if st.add(p.seq) {
		rx.lat = append(rx.lat, max(0, now-p.ts))
		if rx.keepSent {
			rx.sent = append(rx.sent, p.ts)
		}
		rx.onNew()
	}
}

// latency is a summary of latencies in microseconds.
type latency struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_us"`
	P90   float64 `json:"p90_us"`
	P99   float64 `json:"p99_us"`
	Max   float64 `json:"max_us"`
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest value with at least p% of the values
// at or below it. It returns 0 for no values.
func percentile(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// summarize sorts ns (nanoseconds) in place and summarizes it.
func summarize(ns []int64) latency {
	slices.Sort(ns)
	us := func(v int64) float64 { return float64(v) / 1e3 }
	l := latency{Count: len(ns)}
	if len(ns) > 0 {
		l.P50, l.P90, l.P99 = us(percentile(ns, 50)), us(percentile(ns, 90)), us(percentile(ns, 99))
		l.Max = us(ns[len(ns)-1])
	}
	return l
}

// durations converts a list of durations for summarize.
func durations(ds []time.Duration) []int64 {
	out := make([]int64, 0, len(ds))
	for _, d := range ds {
		if d > 0 {
			out = append(out, int64(d))
		}
	}
	return out
}
