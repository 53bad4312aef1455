package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"sslmessager/internal/cliflags"
	"sslmessager/internal/pki"
	"sslmessager/internal/relay"
)

const suiteDescription = `Builds nothing: give it the directory holding the server binary. For every
scenario it starts DIR/server on a free loopback port with fresh accounts
and spool under --dir (certificates in --dir/certs, made once), --hash-cost 4
and --log-level warn (log in --dir/server.log), measures it through its PID,
and stops it with SIGTERM afterwards, so CPU and memory belong to that
scenario alone.

The standard suite (--quick: the small version, seconds in total):
   dm 100x2000 flood        100 clients in pairs, 2000 msgs of 100 B each, flooded
                            (quick: 20 x 200)
   dm 100x500 @10000/s      the same paced at 10 000 msgs/s total (quick: 20 x 50 @1000/s)
   dm 1000x200              1000 clients, 200 msgs each, flooded (quick: 100 x 20)
   group 200x2000           200 members; 2000 messages sent in total by 10
                            senders x 200 (quick: 20 members, 5 x 40)
   group 1000x500           1000 members; 500 sent by 10 senders x 50
                            (quick: 50 members, 5 x 10)
                            Group sizes name the total sent; senders are always
                            10 (quick: 5), each sending total/senders.
   idle 10000               10 000 connections held 5 s (quick: 200 for 1 s)
   login 50 (cost 10)       server restarted with the default --hash-cost 10
                            (quick: 10)
   file 1GiB                upload, downloads and both ceilings (quick: 16 MiB)
   group 20x500 @100/s while a member downloads 1GiB
                            20 members, 10 senders x 50 texts paced at 100/s in
                            total, first with no download, then while the last
                            member downloads 1 GiB (CMD <get ack>, into a file,
                            fsync, ACKF); the others' p99 in both and the ratio
                            (quick: 10 members, 5 x 20, 32 MiB)

The whole default suite takes a few minutes on 2 cores; each scenario is
bounded by its timeout. It exits non-zero if any scenario failed, lost,
duplicated or reordered messages.`

func suiteCommand() *cli.Command {
	return &cli.Command{
		Name:        "suite",
		Usage:       "start the server for each scenario and run the standard suite",
		UsageText:   "loadgen [--json] [--timeout D] suite --bin DIR --dir DIR [--quick] [--only NAME,...]",
		Description: suiteDescription,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "bin", Usage: "`DIR` holding the server binary (server)"},
			&cli.StringFlag{Name: "dir", Usage: "scratch `DIR` for accounts, spool, certificates, downloads and the server log"},
			&cli.BoolFlag{Name: "quick", Usage: "run a much smaller version of every scenario (seconds; for tests and CI)"},
			&cli.StringSliceFlag{Name: "only", Usage: "run only the scenarios whose kind is listed (dm, group, idle, login, file, groupdl)"},
			&cli.StringFlag{Name: "file-size", Usage: "file scenario size (default 1GiB, quick 16MiB)"},
			&cli.StringFlag{Name: "download-size", Usage: "groupdl scenario's file size (default 1GiB, quick 32MiB)"},
		},
		Action: runSuite,
	}
}

// step is one scenario of the suite.
type step struct {
	name     string
	kind     string
	conns    int   // connections open at once at most
	hashCost int   // the server's --hash-cost
	maxFile  int64 // the server's --max-file-size, 0: its default
	run      func(ctx context.Context, e *env) (*Result, error)
}

// suiteHashCost keeps sign-ups cheap outside the login scenario.
const suiteHashCost = 4

// loginHashCost is the server's default cost, used for the login scenario.
const loginHashCost = 10

// suiteSteps lists the standard suite. Group scenarios are named by the
// total of messages sent; that total is split evenly over groupSenders.
func suiteSteps(quick bool, fileSize, dlSize int64, tmpDir, cert, key string) []step {
	type dmCase struct {
		clients, msgs int
		rate          float64
	}
	type groupCase struct{ members, total int }
	dms := []dmCase{{100, 2000, 0}, {100, 500, 10000}, {1000, 200, 0}}
	groups := []groupCase{{200, 2000}, {1000, 500}}
	groupSenders, idleN, hold, loginN := 10, 10000, 5*time.Second, 50
	if quick {
		dms = []dmCase{{20, 200, 0}, {20, 50, 1000}, {100, 20, 0}}
		groups = []groupCase{{20, 200}, {50, 50}}
		groupSenders, idleN, hold, loginN = 5, 200, time.Second, 10
	}
	const size = 100
	var steps []step
	for _, d := range dms {
		name := fmt.Sprintf("dm %dx%d flood", d.clients, d.msgs)
		if d.rate > 0 {
			name = fmt.Sprintf("dm %dx%d @%.0f/s", d.clients, d.msgs, d.rate)
		}
		p := msgParams{Clients: d.clients, Messages: d.msgs, Size: size, Rate: d.rate}
		steps = append(steps, step{name: name, kind: "dm", conns: d.clients, hashCost: suiteHashCost,
			run: func(ctx context.Context, e *env) (*Result, error) { return runMessages(ctx, e, p) }})
	}
	for _, g := range groups {
		p := msgParams{Group: true, Clients: g.members, Senders: groupSenders, Messages: g.total / groupSenders, Size: size}
		steps = append(steps, step{name: fmt.Sprintf("group %dx%d", g.members, g.total), kind: "group", conns: g.members,
			hashCost: suiteHashCost,
			run:      func(ctx context.Context, e *env) (*Result, error) { return runMessages(ctx, e, p) }})
	}
	steps = append(steps, step{name: fmt.Sprintf("idle %d", idleN), kind: "idle", conns: idleN, hashCost: suiteHashCost,
		run: func(ctx context.Context, e *env) (*Result, error) {
			return runIdle(ctx, e, idleParams{Clients: idleN, Hold: hold})
		}})
	steps = append(steps, step{name: fmt.Sprintf("login %d (cost %d)", loginN, loginHashCost), kind: "login",
		conns: min(loginN, defaultConcurrency), hashCost: loginHashCost,
		run: func(ctx context.Context, e *env) (*Result, error) { return runLogin(ctx, e, loginN) }})
	fp := fileParams{Size: fileSize, Cert: cert, Key: key, TmpDir: tmpDir}
	steps = append(steps, step{name: "file " + sizeName(fileSize), kind: "file", conns: 2, hashCost: suiteHashCost,
		maxFile: fileSize,
		run:     func(ctx context.Context, e *env) (*Result, error) { return runFile(ctx, e, fp) }})
	gp := groupdlParams{Members: 20, Senders: 10, Messages: 50, Size: size, Rate: 100, FileSize: dlSize, TmpDir: tmpDir}
	if quick {
		gp.Members, gp.Senders, gp.Messages = 10, 5, 20
	}
	steps = append(steps, step{
		name: fmt.Sprintf("group %dx%d @%.0f/s while a member downloads %s", gp.Members, gp.Senders*gp.Messages, gp.Rate, sizeName(dlSize)),
		kind: "groupdl", conns: gp.Members + 1, hashCost: suiteHashCost, maxFile: dlSize,
		run: func(ctx context.Context, e *env) (*Result, error) { return runGroupDL(ctx, e, gp) }})
	return steps
}

func sizeName(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dB", n)
}

func runSuite(cc *cli.Context) error {
	if err := cliflags.NoArgs(cc); err != nil {
		return err
	}
	if cc.String("bin") == "" || cc.String("dir") == "" {
		return errors.New("suite needs --bin (where the server binary is) and --dir (scratch data)")
	}
	bin, err := filepath.Abs(filepath.Join(cc.String("bin"), "server"))
	if err != nil {
		return err
	}
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("--bin: no executable server at %s (go build -o DIR/ ./server)", bin)
	}
	dir, err := filepath.Abs(cc.String("dir"))
	if err != nil {
		return err
	}
	e, err := envFromFlags(cc)
	if err != nil {
		return err
	}
	quick := cc.Bool("quick")
	fileSize := int64(1 << 30)
	if quick {
		fileSize = 16 << 20
	}
	if s := cc.String("file-size"); s != "" {
		if fileSize, err = parseBytes(s); err != nil {
			return fmt.Errorf("--file-size: %w", err)
		}
	}
	dlSize := int64(1 << 30)
	if quick {
		dlSize = 32 << 20
	}
	if s := cc.String("download-size"); s != "" {
		if dlSize, err = parseBytes(s); err != nil || dlSize < 1 {
			return fmt.Errorf("--download-size: %w", cmp.Or(err, errors.New("must be at least 1 byte")))
		}
	}
	only := cc.StringSlice("only")
	for _, k := range only {
		if !slices.Contains([]string{"dm", "group", "idle", "login", "file", "groupdl"}, k) {
			return fmt.Errorf("--only %q: want dm, group, idle, login, file or groupdl", k)
		}
	}

	certDir, tmpDir := filepath.Join(dir, "certs"), filepath.Join(dir, "tmp")
	for _, d := range []string{dir, tmpDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if err := ensureCerts(certDir); err != nil {
		return err
	}
	cert, key := filepath.Join(certDir, pki.ServerCertFile), filepath.Join(certDir, pki.ServerKeyFile)
	var steps []step
	for _, st := range suiteSteps(quick, fileSize, dlSize, tmpDir, cert, key) {
		if len(only) == 0 || slices.Contains(only, st.kind) {
			steps = append(steps, st)
		}
	}

	need := 0
	for _, st := range steps {
		need = max(need, st.conns)
	}
	soft, hard, err := raiseFileLimit()
	if err != nil {
		fmt.Fprintln(cc.App.ErrWriter, "warning: cannot raise the open file limit:", err)
	}
	if margin := uint64(need + 256); hard < margin || soft < margin {
		fmt.Fprintf(cc.App.ErrWriter, "warning: open file limit %d (hard %d) is below the %d needed for %d connections; raise it (ulimit -Hn) or expect connect errors\n",
			soft, hard, margin, need)
	}

	logPath := filepath.Join(dir, "server.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()

	fmt.Fprintf(e.out, "suite: %d scenarios, server %s, data in %s, server log %s\n", len(steps), bin, dir, logPath)
	ctx := cc.Context
	var rows []summary
	failed := 0
	for _, st := range steps {
		if ctx.Err() != nil {
			break
		}
		t0 := time.Now()
		res, err := runStep(ctx, e, st, bin, dir, certDir, logf)
		if err != nil {
			failed++
			fmt.Fprintf(e.out, "\n== %s: FAILED: %v\n", st.name, err)
			rows = append(rows, summary{scenario: st.name, rate: "FAILED", p50: "-", p99: "-", faults: "-", cpu: "-", rss: "-"})
			continue
		}
		res.Scenario = st.name
		res.print(e.out, e.json)
		fmt.Fprintf(e.out, "  (%.1f s with server start and stop)\n", time.Since(t0).Seconds())
		rows = append(rows, res.summary())
		if res.faults() {
			failed++
		}
	}
	printSummary(e.out, rows)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("suite interrupted: %w", err)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d scenarios failed or did not deliver cleanly (server log: %s)", failed, len(steps), logPath)
	}
	return nil
}

// runStep starts a fresh server, runs one scenario against it and stops it.
func runStep(ctx context.Context, base *env, st step, bin, dir, certDir string, logf *os.File) (*Result, error) {
	fmt.Fprintf(logf, "=== %s (%s)\n", st.name, time.Now().Format(time.RFC3339))
	srv, err := startServer(ctx, bin, dir, certDir, st, logf)
	if err != nil {
		return nil, err
	}
	tc, err := pki.ClientTLSConfig(filepath.Join(certDir, pki.CAFile), srv.addr)
	if err != nil {
		srv.stop()
		return nil, err
	}
	e := *base
	e.addr, e.tls, e.pid = srv.addr, tc, srv.cmd.Process.Pid
	res, err := st.run(ctx, &e)
	if serr := srv.stop(); serr != nil {
		if err != nil {
			return nil, err
		}
		res.addError("server: %v", serr)
	}
	return res, err
}

// ensureCerts creates the CA and server certificate in dir unless all four
// files are there.
func ensureCerts(dir string) error {
	have := 0
	for _, f := range []string{pki.CAFile, pki.CAKeyFile, pki.ServerCertFile, pki.ServerKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			have++
		}
	}
	if have == 4 {
		return nil
	}
	if _, err := pki.Generate(pki.GenerateOptions{Dir: dir, Hosts: []string{"127.0.0.1", "localhost"}}); err != nil {
		return fmt.Errorf("certificates in %s: %w", dir, err)
	}
	return nil
}

// serverProc is a running server binary.
type serverProc struct {
	cmd    *exec.Cmd
	addr   string
	exited chan struct{}
	err    error // Wait's result; read after exited
}

// startServer starts the server binary with fresh accounts and spool and
// waits until it has written its address.
func startServer(ctx context.Context, bin, dir, certDir string, st step, logf *os.File) (*serverProc, error) {
	users, spoolDir, addrFile := filepath.Join(dir, "users.csv"), filepath.Join(dir, "spool"), filepath.Join(dir, "server.addr")
	for _, p := range []string{users, addrFile} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	if err := os.RemoveAll(spoolDir); err != nil {
		return nil, err
	}
	args := []string{
		"--listen", "127.0.0.1:0", "--addr-file", addrFile,
		"--users", users, "--spool", spoolDir,
		"--cert", filepath.Join(certDir, pki.ServerCertFile), "--key", filepath.Join(certDir, pki.ServerKeyFile),
		"--hash-cost", strconv.Itoa(st.hashCost), "--log-level", "warn",
		// Every load client comes from 127.0.0.1: no per-address limits.
		"--max-conns-per-ip", "0", "--max-handshakes-per-ip", "0", "--max-signups-per-ip", "0",
	}
	// The server refuses connections past its open-file limit; say so in
	// --max-conns rather than have it warn about the default at each start.
	if _, hard, err := raiseFileLimit(); err == nil && hard < relay.DefaultMaxConns+256 {
		args = append(args, "--max-conns", strconv.FormatUint(max(hard, 512)-256, 10))
	}
	if st.maxFile > 0 {
		args = append(args, "--max-file-size", strconv.FormatInt(max(st.maxFile, 1<<30), 10),
			"--quota", strconv.FormatInt(max(4*st.maxFile, 10<<30), 10))
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	p := &serverProc{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case <-p.exited:
			return nil, fmt.Errorf("server exited at start (%v); see %s", p.err, logf.Name())
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-deadline.C:
			p.stop()
			return nil, fmt.Errorf("server wrote no address to %s within 15 s", addrFile)
		case <-poll.C:
			data, err := os.ReadFile(addrFile)
			if err == nil && bytes.HasSuffix(data, []byte("\n")) {
				p.addr = strings.TrimSpace(string(data))
				if err := checkLoopback(p.addr); err != nil {
					p.stop()
					return nil, fmt.Errorf("server address: %w", err)
				}
				return p, nil
			}
		}
	}
}

// stop sends SIGTERM and waits for the server to exit (it drains for up
// to 10 s); after 20 s it is killed.
func (p *serverProc) stop() error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
		return errors.New("did not stop within 20 s of SIGTERM; killed")
	}
}
