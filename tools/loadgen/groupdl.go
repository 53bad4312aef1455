package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"sslmessager/internal/wire"
)

// groupdlParams describes the groupdl scenario.
type groupdlParams struct {
	Members  int     // clients in group mode; the last one downloads
	Senders  int     // members 0..Senders-1 send; the downloader never does
	Messages int     // per sender in the baseline; the download phase sends at least as many
	Size     int     // bytes per text
	Rate     float64 // total messages per second in both phases; must be above 0
	FileSize int64   // bytes queued for the downloader
	TmpDir   string  // where the download is written; "" is os.TempDir()
	Seed     uint64  // of the file data; 0 picks one
}

func (p groupdlParams) validate() error {
	switch {
	case p.Members < 3 || p.Members > maxClients:
		return fmt.Errorf("need 3 to %d members, not %d", maxClients, p.Members)
	case p.Senders < 1 || p.Senders > p.Members-1:
		return fmt.Errorf("--senders must be 1 to --members - 1 (%d; the last member downloads), not %d", p.Members-1, p.Senders)
	case p.Messages < 1:
		return errors.New("--messages must be at least 1")
	case p.Size < 1 || p.Size > wire.MaxTextRunes:
		return fmt.Errorf("--size must be 1 to %d bytes (the protocol's text limit)", wire.MaxTextRunes)
	case !(p.Rate > 0) || math.IsInf(p.Rate, 0):
		return errors.New("--rate must be above 0: groupdl paces its traffic")
	case p.FileSize < 1:
		return errors.New("--file-size must be at least 1 byte")
	}
	return nil
}

func (p groupdlParams) label() string {
	return fmt.Sprintf("groupdl: %d members, %d senders x %d msgs x %d B paced at %.0f msgs/s total, "+
		"without and then with the last member downloading %d bytes (CMD <get ack>, into a file, fsync, ACKF)",
		p.Members, p.Senders, p.Messages, p.Size, p.Rate, p.FileSize)
}

// The two phases of groupdl. A phase's senders stamp their texts with
// sender index phase*Senders+s, so the receivers keep them apart.
const (
	phaseBaseline = 0
	phaseDownload = 1
)

// gdMember is one member of the groupdl group. Its reader records group
// texts by phase; the downloader's reader also reads the file into the
// sink it is given, hashing it, fsyncs it, sends ACKF if the hash
// matches, and passes what happened on as events.
type gdMember struct {
	*client
	senders int
	rx      [2]*receiver
	join    chan struct{}
	barrier bool // the first CNT answers joinGroup's barrier
	other   int  // unexpected lines

	// The downloader's only; nil for the others.
	events chan dlEvent
	sinks  chan *os.File
	quit   chan struct{}
}

// dlEvent is what the downloader's reader passes on: a BEGIN, a file or
// CMD <file send complete>.
type dlEvent struct {
	begin    int // BEGIN's count, or -1
	file     *dlFile
	complete bool
}

// dlFile is one downloaded file.
type dlFile struct {
	header   wire.FileHeader
	n        int64         // data bytes read
	sha      string        // hex SHA-256 of the bytes read
	end      time.Time     // when the end marker was read
	syncTook time.Duration // the fsync after it
	err      error         // writing or fsyncing the file
	acked    bool          // ACKF sent (the hash matched the header's and the file is on disk)
}

func (m *gdMember) handle(q wire.Query, at time.Time) error {
	switch q := q.(type) {
	case wire.RelayGroup:
		m.rxFor(q.Text).record(q.Text, at)
		return nil
	case wire.NotOnline:
		if m.barrier {
			m.barrier = false
			m.join <- struct{}{}
		} else {
			m.rx[phaseBaseline].notOnline++
		}
		return nil
	}
	if m.events == nil {
		m.other++
		return nil
	}
	ev := dlEvent{begin: -1}
	switch q := q.(type) {
	case wire.Begin:
		ev.begin = q.Count
	case wire.FileHeader:
		f, err := m.receive(q)
		if err != nil {
			return err
		}
		ev.file = f
	case wire.Notice:
		if q.Text != wire.NoticeSendComplete {
			m.other++
			return nil
		}
		ev.complete = true
	default:
		m.other++
		return nil
	}
	select {
	case m.events <- ev:
	case <-m.quit:
	}
	return nil
}

// rxFor is the receiver of the phase a text belongs to; a text that is
// not ours goes to the baseline's, which counts it as foreign.
func (m *gdMember) rxFor(text string) *receiver {
	if p, ok := parsePayload(text); ok && p.sender >= m.senders {
		return m.rx[phaseDownload]
	}
	return m.rx[phaseBaseline]
}

// receive reads the data and end marker of the file h announced, as our
// client does: into the sink while its SHA-256 is computed, then fsync,
// then ACKF if the hash matches the header's. An error means the stream
// is out of step.
func (m *gdMember) receive(h wire.FileHeader) (*dlFile, error) {
	var sink *os.File
	select {
	case sink = <-m.sinks:
	default:
	}
	hash := sha256.New()
	var w io.Writer = hash
	if sink != nil {
		w = io.MultiWriter(hash, sink)
	}
	f := &dlFile{header: h}
	n, werr, err := copyData(w, m.r, h.Size)
	if err != nil {
		return nil, fmt.Errorf("file data after %d bytes: %w", n, err)
	}
	end, err := m.next()
	if err != nil {
		return nil, err
	}
	if _, ok := end.(wire.FileEnd); !ok {
		return nil, fmt.Errorf("want ENDF ENDF ENDF after the file data, got %s", end.Verb())
	}
	f.n, f.end, f.err = n, time.Now(), werr
	f.sha = hex.EncodeToString(hash.Sum(nil))
	if sink == nil {
		f.err = errors.New("no file to write the download into")
	}
	if f.err == nil {
		t0 := time.Now()
		f.err = sink.Sync()
		f.syncTook = time.Since(t0)
	}
	if f.err == nil && strings.EqualFold(f.sha, h.SHA256) {
		if err := m.write(wire.AckFile{ID: h.ID, Token: m.token}, true); err != nil {
			return nil, err
		}
		f.acked = true
	}
	return f, nil
}

// wait returns the downloader's next event.
func (m *gdMember) wait(ctx context.Context) (dlEvent, error) {
	select {
	case ev := <-m.events:
		return ev, nil
	case <-m.done:
		select {
		case ev := <-m.events:
			return ev, nil
		default:
		}
		if m.end != nil {
			return dlEvent{}, fmt.Errorf("%s: server ended the session: %s", m.name, m.end.Reason)
		}
		return dlEvent{}, fmt.Errorf("%s: connection ended: %v", m.name, m.readErr)
	case <-ctx.Done():
		return dlEvent{}, ctx.Err()
	}
}

// traffic is one phase's senders.
type traffic struct {
	start    time.Time
	interval time.Duration // between two texts of one sender
	senders  int
	sent     []int64
	first    []int64 // UnixNano of each sender's first send
	errs     []error
	stop     context.CancelFunc
	done     chan struct{} // closed when every sender returned
}

// offset is when sender s sends its first text, after start.
func (t *traffic) offset(s int) time.Duration {
	return time.Duration(int64(t.interval) * int64(s) / int64(t.senders))
}

// total is how many texts were sent; read it after done.
func (t *traffic) total() int64 {
	var n int64
	for _, v := range t.sent {
		n += v
	}
	return n
}

// sentBy counts the texts sent that were due by the time at (each is
// stamped with its due time); read it after done.
func (t *traffic) sentBy(at time.Time) int64 {
	var n int64
	for s, sent := range t.sent {
		d := at.Sub(t.start.Add(t.offset(s)))
		if d < 0 {
			continue
		}
		n += min(sent, int64(d/t.interval)+1)
	}
	return n
}

// groupdl is the state of one groupdl run.
type groupdl struct {
	p        groupdlParams
	e        *env
	res      *Result
	st       *GroupDLStats
	members  []*gdMember
	clients  []*client
	dl       *gdMember // members[Members-1]
	progress atomic.Int64
	fresh    [2]atomic.Int64 // new messages by phase
	phases   [2]*traffic
	limit    int // texts per sender the download phase may send at most
	file     *dlFile
	tmp      *os.File
	tGet     time.Time
}

// defaultGroupDLTimeout bounds groupdl: connect, upload, both phases and
// the check of the file.
const defaultGroupDLTimeout = 5 * time.Minute

// maxStreamBits bounds the memory of groupdl's delivery tracking (one bit
// per text a sender may send per member): 32 MiB.
const maxStreamBits = 256 << 20

// runGroupDL measures what one member's download costs group chat. The
// last of p.Members members has a file of p.FileSize bytes queued (a
// separate client uploads it first). In the baseline phase, members
// 0..Senders-1 send p.Messages group texts each at p.Rate in total and
// nobody downloads. In the download phase the last member sends
// CMD <get ack> and reads the file at full speed as our client does (into
// a file in p.TmpDir while hashing it, fsync, ACKF), while the senders
// send at the same rate from the moment CMD <get ack> goes out until the
// file is on disk and at least about p.Messages each were sent. Each
// phase ends when every member has every text.
//
// It reports, per phase, the latency seen by the members that are not
// downloading and by the downloader (whose texts wait behind the file),
// the latency of the texts sent while the file streamed (CMD <get ack> to
// its end marker) and its p99 against the baseline's, and the download
// rate. Any lost, duplicated or reordered text for any member, the
// downloader included, a dropped member, a file that is not byte-exact or
// still queued after its ACKF is a fault.
func runGroupDL(ctx context.Context, e *env, p groupdlParams) (*Result, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	if p.TmpDir == "" {
		p.TmpDir = os.TempDir()
	}
	if p.Seed == 0 {
		p.Seed = uint64(time.Now().UnixNano())
	}
	res := &Result{Scenario: "groupdl", Kind: "groupdl", Label: p.label()}
	timeout := e.timeoutOr(defaultGroupDLTimeout)
	// The download phase's senders may go on until the timeout; its
	// streams are made that long and cut to what was sent afterwards.
	limit := float64(p.Messages) + math.Ceil(p.Rate/float64(p.Senders)*timeout.Seconds()) + 1
	if bits := limit * float64(p.Senders) * float64(p.Members); bits > maxStreamBits {
		return nil, fmt.Errorf("groupdl: --rate %.0f for up to %s with %d members needs %.0f MiB to track delivery; lower --rate, --members or --timeout",
			p.Rate, timeout, p.Members, bits/8/(1<<20))
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tmp, err := os.CreateTemp(p.TmpDir, "loadgen-groupdl-*.bin")
	if err != nil {
		return nil, fmt.Errorf("groupdl: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	sampler, err := e.watchServer()
	if err != nil {
		return nil, err
	}
	defer sampler.finish()
	cpu0 := e.serverCPU()

	g := &groupdl{p: p, e: e, res: res, tmp: tmp, limit: int(limit),
		st: &GroupDLStats{Members: p.Members, Senders: p.Senders, Size: p.Size, RateTarget: p.Rate, FileSize: p.FileSize}}
	res.GroupDL = g.st
	if err := g.connect(ctx); err != nil {
		return nil, fmt.Errorf("groupdl: %w", err)
	}
	// On timeout, closing the connections ends any write or read under way.
	stopClose := context.AfterFunc(ctx, func() {
		for _, c := range g.clients {
			c.conn.Close()
		}
	})
	defer stopClose()

	err = g.run(ctx)
	if err != nil {
		if ctx.Err() != nil {
			res.TimedOut = true
			err = fmt.Errorf("cut off at the timeout (%w)", err)
		}
		res.addError("%v", err)
	}
	for _, t := range g.phases {
		if t != nil {
			t.stop()
			<-t.done
		}
	}
	if err == nil && !res.TimedOut && !res.Stalled {
		time.Sleep(settleDelay) // late duplicates still count
		quitAll(g.clients)
	} else {
		closeAll(g.clients)
	}
	g.tally()
	if sampler != nil {
		cpu1, _ := cpuTime(e.pid)
		before, peak := sampler.finish()
		res.Server = &ServerStats{PID: e.pid, CPUSec: (cpu1 - cpu0).Seconds(),
			RSSBeforeKB: before >> 10, RSSPeakKB: peak >> 10, RSSGrowthKB: (peak - before) >> 10}
	}
	if err == nil && !res.TimedOut {
		g.verify(ctx)
	}
	return res, nil
}

// connect logs in the members and puts them in group mode.
func (g *groupdl) connect(ctx context.Context) error {
	p := g.p
	g.members = make([]*gdMember, p.Members)
	joined := make([]chan struct{}, p.Members)
	for i := range joined {
		joined[i] = make(chan struct{}, 1)
	}
	clients, _, err := connectAll(ctx, g.e, p.Members, 'w', signUpOrLogIn, fileReadBuffer, msgWriteBuffer, func(i int, c *client) {
		m := &gdMember{client: c, senders: p.Senders, join: joined[i], barrier: true}
		for ph, n := range []int{p.Messages, g.limit} {
			m.rx[ph] = newReceiver(&g.progress, func() { g.fresh[ph].Add(1) })
			for s := range p.Senders {
				if s != i {
					m.rx[ph].expect(ph*p.Senders+s, n)
				}
			}
		}
		m.rx[phaseDownload].keepSent = true
		if i == p.Members-1 {
			m.events, m.sinks, m.quit = make(chan dlEvent, 4), make(chan *os.File, 1), make(chan struct{})
		}
		g.members[i] = m
		c.run(m.handle)
	})
	if err != nil {
		return fmt.Errorf("connect %d members: %w", p.Members, err)
	}
	g.clients, g.dl = clients, g.members[p.Members-1]
	if err := joinGroup(ctx, clients, joined, g.e.name('z', 0)); err != nil {
		close(g.dl.quit)
		closeAll(clients)
		return err
	}
	return nil
}

// run uploads the file and runs both phases. The members are connected;
// the caller stops the senders and closes the members.
func (g *groupdl) run(ctx context.Context) error {
	p := g.p
	defer close(g.dl.quit)
	if err := g.upload(ctx); err != nil {
		return fmt.Errorf("upload: %w", err)
	}

	// Baseline: the traffic alone.
	base := g.startTraffic(ctx, phaseBaseline, p.Messages, nil)
	if !g.await(ctx, phaseBaseline, base) {
		return nil // timed out or stalled: reported as such
	}

	// The same traffic while the last member downloads.
	g.dl.sinks <- g.tmp
	g.tGet = time.Now()
	if err := g.dl.write(wire.Get{Ack: true, Token: g.dl.token}, true); err != nil {
		return fmt.Errorf("CMD <get ack>: %w", err)
	}
	fileDone := make(chan struct{})
	dl := g.startTraffic(ctx, phaseDownload, g.limit, &softStop{Done: fileDone, AtLeast: p.Messages})
	if err := g.download(ctx, 1); err != nil {
		return fmt.Errorf("download: %w", err)
	}
	close(fileDone)
	if !g.await(ctx, phaseDownload, dl) {
		return nil
	}

	// The ACKF was handled before this (one session's queries are handled
	// in order): the queue must be empty now.
	if err := g.dl.write(wire.Get{Ack: true, Token: g.dl.token}, true); err != nil {
		return fmt.Errorf("second CMD <get ack>: %w", err)
	}
	if err := g.download(ctx, 0); err != nil {
		return fmt.Errorf("second CMD <get ack> (after ACKF): %w", err)
	}
	g.st.Acked = g.file != nil && g.file.acked
	return nil
}

// upload queues the file for the downloader from a separate client that
// is not in group mode, then logs that client out.
func (g *groupdl) upload(ctx context.Context) error {
	var fc *fileClient
	cl, _, err := connectAll(ctx, g.e, 1, 'u', signUpOrLogIn, msgReadBuffer, msgWriteBuffer, func(_ int, c *client) {
		fc = &fileClient{client: c, events: make(chan fileEvent, 16), sinks: make(chan io.Writer, 1), quit: make(chan struct{})}
		c.run(fc.handle)
	})
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { fc.conn.Close() })
	defer stop()
	took, err := uploadFile(ctx, fc, g.dl.name, fileParams{Size: g.p.FileSize, Seed: g.p.Seed})
	close(fc.quit)
	quitAll(cl)
	fc.problems(g.res)
	if err != nil {
		return err
	}
	g.st.UploadSec, g.st.UploadMBps = took.Seconds(), float64(g.p.FileSize)/megabyte/took.Seconds()
	return nil
}

// download reads the downloader's events for one CMD <get ack> that must
// bring want files (0 or 1): BEGIN, the file, CMD <file send complete>.
func (g *groupdl) download(ctx context.Context, want int) error {
	ev, err := g.dl.wait(ctx)
	if err != nil {
		return err
	}
	if ev.begin != want {
		return fmt.Errorf("want BEGIN %d, got %+v", want, ev)
	}
	if want == 1 {
		if ev, err = g.dl.wait(ctx); err != nil {
			return err
		}
		f := ev.file
		if f == nil {
			return fmt.Errorf("want a file, got %+v", ev)
		}
		g.file = f
		took := f.end.Sub(g.tGet)
		g.st.DownloadSec, g.st.DownloadMBps = took.Seconds(), float64(f.n)/megabyte/took.Seconds()
		g.st.SyncSec = f.syncTook.Seconds()
		if f.err != nil {
			return fmt.Errorf("write the download: %w", f.err)
		}
	}
	if ev, err = g.dl.wait(ctx); err != nil {
		return err
	}
	if !ev.complete {
		return fmt.Errorf("want CMD <%s>, got %+v", wire.NoticeSendComplete, ev)
	}
	return nil
}

// startTraffic starts the senders of a phase, each sending up to
// perSender texts at p.Rate in total from 10 ms on, or fewer as soft
// says.
func (g *groupdl) startTraffic(ctx context.Context, phase, perSender int, soft *softStop) *traffic {
	p := g.p
	ctx, stop := context.WithCancel(ctx)
	t := &traffic{
		start:    time.Now().Add(10 * time.Millisecond),
		interval: time.Duration(float64(time.Second) * float64(p.Senders) / p.Rate),
		senders:  p.Senders,
		sent:     make([]int64, p.Senders),
		first:    make([]int64, p.Senders),
		errs:     make([]error, p.Senders),
		stop:     stop,
		done:     make(chan struct{}),
	}
	g.phases[phase] = t
	mp := msgParams{Group: true, Messages: perSender, Size: p.Size}
	var wg sync.WaitGroup
	for s := range p.Senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.sent[s], t.first[s], t.errs[s] = sendStream(ctx, g.members[s].client, phase*p.Senders+s, "", mp, t.start.Add(t.offset(s)), t.interval, soft)
		}()
	}
	go func() { wg.Wait(); close(t.done) }()
	return t
}

// await waits until every member has every text of the phase (counted
// once its senders are done), the context ends (timed out) or nothing
// arrived for stallGrace after the senders were done (stalled). It
// reports whether everything arrived.
func (g *groupdl) await(ctx context.Context, phase int, t *traffic) bool {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	want := int64(-1)
	lastCount, lastChange := int64(-1), time.Now()
	for {
		select {
		case <-ctx.Done():
			g.res.TimedOut = true
			return false
		case now := <-tick.C:
			if n := g.progress.Load(); n != lastCount {
				lastCount, lastChange = n, now
			}
			if want < 0 {
				select {
				case <-t.done:
					want = int64(g.p.Members-1) * t.total()
				default:
					continue
				}
			}
			if g.fresh[phase].Load() >= want {
				return true
			}
			if now.Sub(lastChange) > stallGrace {
				g.res.Stalled = true
				return false
			}
		}
	}
}

// tally totals what the readers saw; they have stopped.
func (g *groupdl) tally() {
	p, st := g.p, g.st
	if t := g.phases[phaseDownload]; t != nil {
		for _, m := range g.members {
			for s := range p.Senders {
				if str := m.rx[phaseDownload].streams[p.Senders+s]; str != nil {
					str.truncate(int(t.sent[s]))
				}
			}
		}
	}
	rxs := func(ph int) []*receiver {
		out := make([]*receiver, len(g.members))
		for i, m := range g.members {
			out[i] = m.rx[ph]
		}
		return out
	}
	downloader := p.Members - 1
	for ph, out := range []*GroupPhase{&st.Baseline, &st.Download} {
		t := g.phases[ph]
		if t == nil {
			break
		}
		*out = tallyPhase(rxs(ph), downloader, t.first)
		out.Sent = t.total()
		for s, err := range t.errs {
			if err != nil && !g.res.TimedOut && !g.res.Stalled {
				g.res.addError("sender %s: %v", g.members[s].name, err)
			}
		}
	}
	if g.file != nil {
		st.During = duringLatency(rxs(phaseDownload), downloader, g.tGet.UnixNano(), g.file.end.UnixNano())
		if t := g.phases[phaseDownload]; t != nil {
			st.DuringSent = t.sentBy(g.file.end)
		}
		if st.During.Count == 0 {
			g.res.addError("no group text was sent while the file streamed (%.3f s): use a larger file", st.DownloadSec)
		}
		if st.Baseline.Others.P99 > 0 {
			st.P99Ratio = st.During.P99 / st.Baseline.Others.P99
		}
	}
	for _, m := range g.members {
		if m.other > 0 {
			g.res.addError("%s got %d unexpected server lines", m.name, m.other)
		}
		for ph, rx := range m.rx {
			if rx.foreign+rx.notOnline > 0 {
				g.res.addError("%s, phase %d: %d foreign texts, %d CNT <user not online>", m.name, ph, rx.foreign, rx.notOnline)
			}
		}
		if m.droppedReason() != "" {
			st.Dropped++
		}
		m.problems(g.res)
	}
}

// tallyPhase totals one phase: the deliveries of every member (the
// downloader's included) and of the downloader alone, the latencies seen
// by the other members and by the downloader, and the time from the first
// send (UnixNano per sender, 0 for none) to the last delivery.
func tallyPhase(rxs []*receiver, downloader int, first []int64) GroupPhase {
	var ph GroupPhase
	var others, mine []int64
	var last int64
	for i, rx := range rxs {
		for _, s := range rx.streams {
			ph.All.addStream(s)
			if i == downloader {
				ph.Downloader.addStream(s)
			}
		}
		if i == downloader {
			mine = append(mine, rx.lat...)
		} else {
			others = append(others, rx.lat...)
		}
		last = max(last, rx.last)
	}
	var start int64
	for _, f := range first {
		if f != 0 && (start == 0 || f < start) {
			start = f
		}
	}
	if start > 0 && last > start {
		ph.DurationSec = time.Duration(last - start).Seconds()
	}
	ph.Others, ph.DownloaderLatency = summarize(others), summarize(mine)
	return ph
}

// duringLatency summarizes the latencies the members other than the
// downloader saw for texts stamped from..to (UnixNano).
func duringLatency(rxs []*receiver, downloader int, from, to int64) latency {
	var lat []int64
	for i, rx := range rxs {
		if i == downloader {
			continue
		}
		for k, ts := range rx.sent {
			if ts >= from && ts <= to {
				lat = append(lat, rx.lat[k])
			}
		}
	}
	return summarize(lat)
}

// verify checks the download off the clock: the bytes read, the server's
// hash, the data stream's hash and the file on disk must all agree.
func (g *groupdl) verify(ctx context.Context) {
	f := g.file
	if f == nil {
		g.res.addError("no file was downloaded")
		return
	}
	want, err := streamSHA(ctx, g.p.Seed, g.p.FileSize)
	if err != nil {
		g.res.addError("hash the data: %v", err)
		return
	}
	onDisk, err := fileSHA(g.tmp)
	if err != nil {
		g.res.addError("hash the downloaded file: %v", err)
		return
	}
	g.st.Verified = true
	for _, c := range []struct {
		what, sha string
		n         int64
	}{{"bytes read", f.sha, f.n}, {"server's BEGINF", f.header.SHA256, f.header.Size}, {"file on disk", onDisk, f.n}} {
		if c.n != g.p.FileSize || !strings.EqualFold(c.sha, want) {
			g.st.Verified = false
			g.res.addError("%s: %d bytes with SHA-256 %s, want %d bytes with %s", c.what, c.n, c.sha, g.p.FileSize, want)
		}
	}
}
