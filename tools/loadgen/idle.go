package main

import (
	"context"
	"fmt"
	"time"

	"sslmessager/internal/wire"
)

// idleParams describes the idle scenario.
type idleParams struct {
	Clients int
	Hold    time.Duration
}

// runIdle logs in p.Clients connections that then only read (CHECK lines),
// holds them for p.Hold and reports the server's memory per connection:
// (VmRSS at the end of the hold - VmRSS before the first connect) /
// clients. The new accounts are part of that growth (a few hundred bytes
// each), and so is garbage the server's GC has not returned yet, which is
// why the peak (sampled every 50 ms from the first connect) is reported
// too. Server CPU is measured over the hold.
func runIdle(ctx context.Context, e *env, p idleParams) (*Result, error) {
	if p.Clients < 1 || p.Clients > maxClients {
		return nil, fmt.Errorf("idle: --clients must be 1 to %d", maxClients)
	}
	if p.Hold < 0 {
		return nil, fmt.Errorf("idle: --hold must not be negative")
	}
	res := &Result{Scenario: "idle", Kind: "idle",
		Label: fmt.Sprintf("idle: %d authenticated connections held %s", p.Clients, p.Hold)}
	ctx, cancel := context.WithTimeout(ctx, e.timeoutOr(defaultIdleTimeout)+p.Hold)
	defer cancel()

	sampler, err := e.watchServer()
	if err != nil {
		return nil, err
	}
	defer sampler.finish()
	t0 := time.Now()
	clients, lat, err := connectAll(ctx, e, p.Clients, 'i', signUpOrLogIn, smallReadBuffer, smallWriteBuf,
		func(_ int, c *client) {
			c.run(func(wire.Query, time.Time) error { return nil })
		})
	if err != nil {
		return nil, fmt.Errorf("idle: connect %d clients: %w", p.Clients, err)
	}
	connect := time.Since(t0)

	cpu0 := e.serverCPU()
	h0 := time.Now()
	select {
	case <-time.After(p.Hold):
	case <-ctx.Done():
		res.TimedOut = true
	}
	held := time.Since(h0)
	if e.pid > 0 {
		cpu1, _ := cpuTime(e.pid)
		connected, err := rss(e.pid)
		if err != nil {
			res.addError("read server RSS: %v", err)
		}
		before, peak := sampler.finish()
		res.Server = &ServerStats{
			PID:            e.pid,
			CPUSec:         (cpu1 - cpu0).Seconds(),
			RSSBeforeKB:    before >> 10,
			RSSConnectedKB: connected >> 10,
			RSSPeakKB:      peak >> 10,
			RSSGrowthKB:    (peak - before) >> 10,
			RSSPerConnKB:   float64(connected-before) / 1024 / float64(p.Clients),
		}
		if held > 0 {
			res.Server.CPUPct = 100 * (cpu1 - cpu0).Seconds() / held.Seconds()
		}
	}
	alive := 0
	for _, c := range clients {
		if c.alive() {
			alive++
		}
	}
	quitAll(clients)
	for _, c := range clients {
		c.problems(res)
	}
	res.Idle = &IdleStats{
		Clients:       p.Clients,
		Alive:         alive,
		ConnectSec:    connect.Seconds(),
		ConnectPerSec: float64(p.Clients) / connect.Seconds(),
		Connect:       summarize(durations(lat)),
		HoldSec:       held.Seconds(),
	}
	return res, nil
}
