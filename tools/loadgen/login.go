package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"sslmessager/internal/wire"
)

// runLogin measures sign-ups and then log-ins per second, each on a new
// connection (connect, TLS handshake, PUT or AUTH, ACCEPT, then END <user
// command> and the server's answer), --concurrency at a time. Both are
// dominated by the server's bcrypt cost. Latency is connect to ACCEPT;
// server CPU is per operation over both phases. Connections come from 200
// loopback addresses (loopbackSource), as users do from many.
func runLogin(ctx context.Context, e *env, count int) (*Result, error) {
	if count < 1 || count > maxClients {
		return nil, fmt.Errorf("login: --count must be 1 to %d", maxClients)
	}
	res := &Result{Scenario: "login", Kind: "login",
		Label: fmt.Sprintf("login: %d sign-ups, then %d log-ins, new connections, %d at a time", count, count, min(count, e.concurrency))}
	ctx, cancel := context.WithTimeout(ctx, e.timeoutOr(defaultLoginTimeout))
	defer cancel()

	sampler, err := e.watchServer()
	if err != nil {
		return nil, err
	}
	defer sampler.finish()
	cpu0 := e.serverCPU()
	l := &LoginStats{Count: count}
	var signLat, logLat []time.Duration
	var took time.Duration
	l.SignUps, signLat, took = loginPhase(ctx, e, count, signUpOnly, res)
	if took > 0 {
		l.SignUpPerSec = float64(l.SignUps) / took.Seconds()
	}
	l.LogIns, logLat, took = loginPhase(ctx, e, count, logInOnly, res)
	if took > 0 {
		l.LogInPerSec = float64(l.LogIns) / took.Seconds()
	}
	l.SignUpLatency, l.LogInLatency = summarize(durations(signLat)), summarize(durations(logLat))
	res.Login = l
	if ctx.Err() != nil {
		res.TimedOut = true
	}
	if sampler != nil {
		cpu1, _ := cpuTime(e.pid)
		before, peak := sampler.finish()
		res.Server = &ServerStats{PID: e.pid, CPUSec: (cpu1 - cpu0).Seconds(),
			RSSBeforeKB: before >> 10, RSSPeakKB: peak >> 10, RSSGrowthKB: (peak - before) >> 10}
		if n := l.SignUps + l.LogIns; n > 0 {
			res.Server.CPUPerOpUs = float64((cpu1 - cpu0).Microseconds()) / float64(n)
		}
	}
	return res, nil
}

// loginPhase runs count sign-ups or log-ins and returns how many succeeded,
// their latencies and the phase's wall time.
func loginPhase(ctx context.Context, e *env, count int, mode loginMode, res *Result) (int, []time.Duration, time.Duration) {
	var (
		mu   sync.Mutex
		ok   int
		lat  = make([]time.Duration, count)
		wg   sync.WaitGroup
		next = make(chan int)
	)
	what := "sign-up"
	if mode == logInOnly {
		what = "log-in"
	}
	t0 := time.Now()
	for range min(e.concurrency, count) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				s := time.Now()
				c, err := dialFrom(ctx, e, e.name('l', i), mode, smallReadBuffer, smallWriteBuf, loopbackSource(e.addr, i))
				if err == nil {
					lat[i] = time.Since(s)
					err = c.quitInline()
				}
				mu.Lock()
				if err != nil {
					res.addError("%s %d: %v", what, i, err)
				} else {
					ok++
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for i := range count {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return ok, lat, time.Since(t0)
}

// quitInline ends a session whose reader never started: END <user
// command>, read up to the server's END, close. The server takes the user
// off line before it answers, so a log-in right after cannot find the
// user still online.
func (c *client) quitInline() error {
	defer c.conn.Close()
	c.conn.SetDeadline(time.Now().Add(quitWait))
	if err := c.write(wire.Quit{Token: c.token}, true); err != nil {
		return err
	}
	for {
		q, err := c.next()
		if err != nil {
			return fmt.Errorf("waiting for END: %w", err)
		}
		if end, ok := q.(wire.End); ok {
			if end.Reason != wire.ReasonEndAccepted {
				return fmt.Errorf("server ended the session: %s", end.Reason)
			}
			return nil
		}
	}
}
