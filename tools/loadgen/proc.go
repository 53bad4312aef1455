package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// The server's cost is read from /proc: CPU time from /proc/PID/stat and
// resident memory from /proc/PID/status. VmHWM is a lifetime peak, so the
// peak during a scenario comes from sampling VmRSS.

// parseStatCPU returns utime+stime (in clock ticks) from the contents of
// /proc/PID/stat. The command name in parentheses may hold spaces and
// parentheses, so fields are counted after the last ')'.
func parseStatCPU(data []byte) (int64, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, errors.New("stat: no ')' after the command name")
	}
	f := bytes.Fields(data[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(f))
	}
	u, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	s, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("stat: bad utime %q or stime %q", f[11], f[12])
	}
	return u + s, nil
}

// parseStatusKB returns the value of a "Key:   123 kB" line of
// /proc/PID/status, in bytes.
func parseStatusKB(data []byte, key string) (int64, error) {
	for line := range bytes.Lines(data) {
		rest, ok := bytes.CutPrefix(line, []byte(key+":"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("status: bad %s line %q", key, bytes.TrimSpace(line))
		}
		v, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("status: bad %s value: %w", key, err)
		}
		return v << 10, nil
	}
	return 0, fmt.Errorf("status: no %s line", key)
}

// cpuTime returns the CPU time (user plus system) process pid has used.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	ticks, err := parseStatCPU(data)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/%w", pid, err)
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// rss returns the resident set size of process pid in bytes.
func rss(pid int) (int64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	v, err := parseStatusKB(data, "VmRSS")
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/%w", pid, err)
	}
	return v, nil
}

// rssSampler reads a process's VmRSS every rssEvery and keeps the peak.
type rssSampler struct {
	pid  int
	stop chan struct{}
	done chan struct{}

	mu     sync.Mutex
	before int64 // guarded by mu
	peak   int64 // guarded by mu
	err    error // guarded by mu; the first read error
}

// startRSS takes a first sample (the baseline) and starts sampling.
func startRSS(pid int) (*rssSampler, error) {
	v, err := rss(pid)
	if err != nil {
		return nil, err
	}
	s := &rssSampler{pid: pid, before: v, peak: v, stop: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s, nil
}

func (s *rssSampler) loop() {
	defer close(s.done)
	t := time.NewTicker(rssEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sample()
		}
	}
}

func (s *rssSampler) sample() {
	v, err := rss(s.pid)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if s.err == nil {
			s.err = err
		}
		return
	}
	s.peak = max(s.peak, v)
}

// finish takes a last sample, stops sampling and returns the baseline and
// the peak in bytes. Calling it again returns the same values; on a nil
// sampler (no server PID) it returns zeros.
func (s *rssSampler) finish() (before, peak int64) {
	if s == nil {
		return 0, 0
	}
	select {
	case <-s.stop:
	default:
		close(s.stop)
		<-s.done
		s.sample()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.before, s.peak
}

// raiseFileLimit raises the soft RLIMIT_NOFILE to the hard limit and
// returns both.
func raiseFileLimit() (soft, hard uint64, err error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, 0, err
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return 0, l.Max, err
		}
	}
	return l.Cur, l.Max, nil
}

// watchServer starts sampling the server's resident memory when its PID is
// known, and returns nil without an error when it is not.
func (e *env) watchServer() (*rssSampler, error) {
	if e.pid <= 0 {
		return nil, nil
	}
	s, err := startRSS(e.pid)
	if err != nil {
		return nil, fmt.Errorf("--server-pid %d: %w", e.pid, err)
	}
	return s, nil
}

// serverCPU is the server's CPU time so far, or 0 without its PID.
func (e *env) serverCPU() time.Duration {
	if e.pid <= 0 {
		return 0
	}
	d, _ := cpuTime(e.pid)
	return d
}
