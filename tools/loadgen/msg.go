package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"sslmessager/internal/wire"
)

// msgParams describes a dm or group scenario.
type msgParams struct {
	Group    bool
	Clients  int     // dm: clients in pairs i <-> i^1; group: members
	Senders  int     // group: members 0..Senders-1 send; dm: every client
	Messages int     // per sender
	Size     int     // bytes per text
	Rate     float64 // total messages per second; 0 floods
}

func (p msgParams) validate() error {
	switch {
	case p.Clients < 2 || p.Clients > maxClients:
		return fmt.Errorf("need 2 to %d clients, not %d", maxClients, p.Clients)
	case !p.Group && p.Clients%2 != 0:
		return fmt.Errorf("dm pairs clients i and i^1: --clients must be even, not %d", p.Clients)
	case p.Group && (p.Senders < 1 || p.Senders > p.Clients):
		return fmt.Errorf("--senders must be 1 to --members (%d), not %d", p.Clients, p.Senders)
	case p.Messages < 1:
		return fmt.Errorf("--messages must be at least 1")
	case p.Size < 1 || p.Size > wire.MaxTextRunes:
		return fmt.Errorf("--size must be 1 to %d bytes (the protocol's text limit)", wire.MaxTextRunes)
	case p.Rate < 0:
		return fmt.Errorf("--rate must not be negative")
	}
	return nil
}

func (p msgParams) label() string {
	pace := "flooded"
	if p.Rate > 0 {
		pace = fmt.Sprintf("paced at %.0f msgs/s total", p.Rate)
	}
	if p.Group {
		return fmt.Sprintf("group: %d members, %d senders x %d msgs x %d B, %s", p.Clients, p.Senders, p.Messages, p.Size, pace)
	}
	return fmt.Sprintf("dm: %d clients in pairs x %d msgs x %d B, %s", p.Clients, p.Messages, p.Size, pace)
}

// runMessages runs dm or group: connect and log in every client, (group)
// switch every member to group mode, then let the senders send while every
// client reads, until every expected message has arrived, the timeout
// passes, or nothing arrives for stallGrace after the last send.
//
// Server CPU is measured from the first send to the last delivery (log-ins
// excluded); server RSS is sampled from before the first connect to the
// end, and per connection is (peak - before) / clients.
func runMessages(ctx context.Context, e *env, p msgParams) (*Result, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	kind, tag := "dm", byte('d')
	if p.Group {
		kind, tag = "group", 'g'
	} else {
		p.Senders = p.Clients
	}
	res := &Result{Scenario: kind, Kind: kind, Label: p.label()}
	ctx, cancel := context.WithTimeout(ctx, e.timeoutOr(defaultMsgTimeout))
	defer cancel()

	sampler, err := e.watchServer()
	if err != nil {
		return nil, err
	}
	defer sampler.finish()

	// Receivers and what each expects.
	var (
		progress  atomic.Int64
		remaining atomic.Int64
		allIn     = make(chan struct{})
		once      sync.Once
	)
	onNew := func() {
		if remaining.Add(-1) == 0 {
			once.Do(func() { close(allIn) })
		}
	}
	rxs := make([]*receiver, p.Clients)
	joined := make([]chan struct{}, p.Clients)
	var expected int64
	for r := range p.Clients {
		rx := newReceiver(&progress, onNew)
		if p.Group {
			for s := range p.Senders {
				if s != r {
					rx.expect(s, p.Messages)
					expected += int64(p.Messages)
				}
			}
		} else {
			rx.expect(r^1, p.Messages)
			expected += int64(p.Messages)
		}
		rxs[r] = rx
		joined[r] = make(chan struct{}, 1)
	}
	remaining.Store(expected)

	t0 := time.Now()
	clients, _, err := connectAll(ctx, e, p.Clients, tag, signUpOrLogIn, msgReadBuffer, msgWriteBuffer,
		func(i int, c *client) {
			rx, join := rxs[i], joined[i]
			barrier := p.Group // the first CNT answers joinGroup's barrier
			c.run(func(q wire.Query, at time.Time) error {
				switch q := q.(type) {
				case wire.Relay:
					rx.record(q.Text, at)
				case wire.RelayGroup:
					rx.record(q.Text, at)
				case wire.NotOnline:
					if barrier {
						barrier = false
						join <- struct{}{}
					} else {
						rx.notOnline++
					}
				default:
					rx.other++
				}
				return nil
			})
		})
	if err != nil {
		return nil, fmt.Errorf("%s: connect %d clients: %w", kind, p.Clients, err)
	}
	connectTime := time.Since(t0)

	if p.Group {
		if err := joinGroup(ctx, clients, joined, e.name('z', 0)); err != nil {
			closeAll(clients)
			return nil, fmt.Errorf("group: %w", err)
		}
	}

	cpu0 := e.serverCPU()

	// Senders.
	sendCtx, stopSending := context.WithCancel(ctx)
	defer stopSending()
	var (
		swg       sync.WaitGroup
		sent      = make([]int64, p.Senders)
		firstSend = make([]int64, p.Senders)
		sendErrs  = make([]error, p.Senders)
	)
	var interval time.Duration
	if p.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(p.Senders) / p.Rate)
	}
	start := time.Now().Add(10 * time.Millisecond)
	for s := range p.Senders {
		target := ""
		if !p.Group {
			target = clients[s^1].name
		}
		offset := time.Duration(int64(interval) * int64(s) / int64(p.Senders))
		swg.Add(1)
		go func() {
			defer swg.Done()
			sent[s], firstSend[s], sendErrs[s] = sendStream(sendCtx, clients[s], s, target, p, start.Add(offset), interval, nil)
		}()
	}
	sendersDone := make(chan struct{})
	go func() { swg.Wait(); close(sendersDone) }()

	// Wait for every delivery, the timeout, or a stall.
	if expected == 0 {
		once.Do(func() { close(allIn) })
	}
	tick := time.NewTicker(100 * time.Millisecond)
	lastCount, lastChange := int64(-1), time.Now()
wait:
	for {
		select {
		case <-allIn:
			break wait
		case <-ctx.Done():
			res.TimedOut = true
			break wait
		case now := <-tick.C:
			if n := progress.Load(); n != lastCount {
				lastCount, lastChange = n, now
			}
			select {
			case <-sendersDone:
				if now.Sub(lastChange) > stallGrace {
					res.Stalled = true
					break wait
				}
			default:
			}
		}
	}
	tick.Stop()
	var cpu1 time.Duration
	if e.pid > 0 {
		cpu1, _ = cpuTime(e.pid)
	}

	if !res.TimedOut && !res.Stalled {
		time.Sleep(settleDelay)
		stopSending()
		<-sendersDone
		quitAll(clients)
	} else {
		stopSending()
		closeAll(clients)
		<-sendersDone
	}

	// Merge what every reader saw.
	m := &MsgStats{Clients: p.Clients, Senders: p.Senders, MessagesPerSender: p.Messages, Size: p.Size, RateTarget: p.Rate,
		ConnectSec: connectTime.Seconds()}
	var lat []int64
	var last int64
	for i, rx := range rxs {
		for _, st := range rx.streams {
			m.addStream(st)
		}
		if rx.other > 0 {
			res.addError("%s got %d unexpected server lines", clients[i].name, rx.other)
		}
		m.Foreign += int64(rx.foreign)
		m.NotOnline += int64(rx.notOnline)
		lat = append(lat, rx.lat...)
		last = max(last, rx.last)
		c := clients[i]
		if c.droppedReason() != "" {
			m.Dropped++
		}
		c.problems(res)
	}
	first := int64(0)
	for s := range p.Senders {
		m.Sent += sent[s]
		if firstSend[s] != 0 && (first == 0 || firstSend[s] < first) {
			first = firstSend[s]
		}
		if err := sendErrs[s]; err != nil && !res.TimedOut && !res.Stalled {
			res.addError("sender %s: %v", clients[s].name, err)
		}
	}
	if first > 0 && last > first {
		m.DurationSec = time.Duration(last - first).Seconds()
		m.DeliveredPerSec = float64(m.Delivered) / m.DurationSec
	}
	m.Latency = summarize(lat)
	res.Msg = m

	if sampler != nil {
		before, peak := sampler.finish()
		res.Server = &ServerStats{
			PID:          e.pid,
			CPUSec:       (cpu1 - cpu0).Seconds(),
			RSSBeforeKB:  before >> 10,
			RSSPeakKB:    peak >> 10,
			RSSGrowthKB:  (peak - before) >> 10,
			RSSPerConnKB: float64(peak-before) / 1024 / float64(p.Clients),
		}
		if m.Delivered > 0 {
			res.Server.CPUPerOpUs = float64((cpu1 - cpu0).Microseconds()) / float64(m.Delivered)
		}
	}
	return res, nil
}

// joinGroup switches every client to group mode. CMD <group> has no
// reply, so each client then sends a barrier whose answer comes after the
// toggle took effect (the server handles one session's queries in order):
// a MSG to nobody, a user who is never online, answered CNT <user not
// online>. (CMD <online> would be the natural barrier, but wire.ParseServer
// refuses an online list over 256 bytes, about 25 names; see the report.)
func joinGroup(ctx context.Context, clients []*client, joined []chan struct{}, nobody string) error {
	for _, c := range clients {
		if err := c.write(wire.Group{Token: c.token}, false); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		if err := c.write(wire.Msg{Target: nobody, Sender: c.name, Text: "barrier", Token: c.token}, true); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	for i, c := range clients {
		select {
		case <-joined[i]:
		case <-c.done:
			return fmt.Errorf("%s: connection ended while joining the group (%v)", c.name, c.readErr)
		case <-ctx.Done():
			return fmt.Errorf("joining the group: %w", ctx.Err())
		}
	}
	return nil
}

// softStop ends a paced stream before p.Messages: after a batch, once
// Done is closed and at least AtLeast texts were sent.
type softStop struct {
	Done    <-chan struct{}
	AtLeast int
}

// sendStream sends p.Messages texts from client c (sender index s), to
// target (dm) or the group. Flooding, lines are coalesced in the write
// buffer and each text is stamped when it is formatted. Paced, message j
// is due at start + j*interval and is stamped with that due time, so that
// a late send counts against latency (no coordinated omission); a
// non-nil soft may end it earlier. It returns how many were written, when
// the first went out (UnixNano) and the write error that stopped it, if
// any.
func sendStream(ctx context.Context, c *client, s int, target string, p msgParams, start time.Time, interval time.Duration,
	soft *softStop) (int64, int64, error) {
	var (
		buf   []byte
		n     int64
		first int64
	)
	send := func(seq int, ts int64) error {
		buf = appendPayload(buf[:0], s, seq, ts, p.Size)
		var q wire.Query
		if p.Group {
			q = wire.GroupMsg{Sender: c.name, Text: string(buf), Token: c.token}
		} else {
			q = wire.Msg{Target: target, Sender: c.name, Text: string(buf), Token: c.token}
		}
		if err := c.write(q, false); err != nil {
			return err
		}
		if first == 0 {
			first = time.Now().UnixNano()
		}
		n++
		return nil
	}
	if interval == 0 {
		for seq := range p.Messages {
			if ctx.Err() != nil {
				return n, first, nil
			}
			if err := send(seq, time.Now().UnixNano()); err != nil {
				return n, first, err
			}
		}
		return n, first, c.flush()
	}
	timer := time.NewTimer(time.Until(start))
	defer timer.Stop()
	for seq := 0; seq < p.Messages; {
		select {
		case <-ctx.Done():
			return n, first, nil
		case <-timer.C:
		}
		now := time.Now()
		for ; seq < p.Messages; seq++ {
			due := start.Add(time.Duration(seq) * interval)
			if due.After(now) {
				break
			}
			if err := send(seq, due.UnixNano()); err != nil {
				return n, first, err
			}
		}
		if err := c.flush(); err != nil {
			return n, first, err
		}
		if soft != nil && seq >= soft.AtLeast {
			select {
			case <-soft.Done:
				return n, first, nil
			default:
			}
		}
		timer.Reset(time.Until(start.Add(time.Duration(seq) * interval)))
	}
	return n, first, nil
}

// errFaults is returned by a scenario command whose result shows loss,
// duplicates, reordering, drops, a timeout or errors.
var errFaults = errors.New("the scenario did not deliver everything cleanly (see the table)")
