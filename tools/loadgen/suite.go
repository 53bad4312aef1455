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
   floor: dm 100x2000 flood the next scenario against the floor relay
                            (bin/loadgen floor: a LOWER BOUND for measurement,
                            never a server to run)
   dm 100x2000 flood        100 clients in pairs, 2000 msgs of 100 B each, flooded
                            (quick: 20 x 200)
   floor: dm 100x500 @10000/s
   dm 100x500 @10000/s      the same paced at 10 000 msgs/s total (quick: 20 x 50 @1000/s)
   dm 1000x200              1000 clients, 200 msgs each, flooded (quick: 100 x 20)
   group 200x2000           200 members; 2000 messages sent in total by 10
                            senders x 200 (quick: 20 members, 5 x 40)
   group 1000x500           1000 members; 500 sent by 10 senders x 50
                            (quick: 50 members, 5 x 10)
                            Group sizes name the total sent; senders are always
                            10 (quick: 5), each sending total/senders.
   floor: group 100x500 @100/s
   group 100x500 @100/s     100 members; 10 senders x 50 paced at 100 msgs/s
                            in total (quick: 20 members, 5 x 20)
   idle 10000               10 000 connections held 5 s (quick: 200 for 1 s)
   login 50 (cost 10)       server restarted with the default --hash-cost 10
                            (quick: 10)
   file 1GiB                upload, downloads and the ceilings (quick: 16 MiB)
   group 20x500 @100/s while a member downloads 1GiB
                            20 members, 10 senders x 50 texts paced at 100/s in
                            total, first with no download, then while the last
                            member downloads 1 GiB (CMD <get ack>, into a file,
                            fsync, ACKF); the others' p99 in both and the ratio
                            (quick: 10 members, 5 x 20, 32 MiB)

After the summary come two tables with the targets of issue 10 and a
pass/MISS mark computed from this run's figures: the three compared chat
scenarios side by side (server CPU per delivered message and p99 latency,
the floor relay's against ours: CPU at most 1.1x the floor's and p99 at
most the floor's + 0.2 ms when paced), and the file legs against the
TLS-into-file ceiling (upload and download at least 90%, end-to-end
streaming at least 80%; the end-to-end encrypted upload at least 85% of
the plaintext upload). The floor relay is the loadgen binary in --bin
(bin/loadgen floor).

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
			&cli.StringFlag{Name: "bin", Usage: "`DIR` holding the server binary (server) and, for the floor relay, loadgen"},
			&cli.StringFlag{Name: "dir", Usage: "scratch `DIR` for accounts, spool, certificates, downloads and the server log"},
			&cli.BoolFlag{Name: "quick", Usage: "run a much smaller version of every scenario (seconds; for tests and CI)"},
			&cli.StringSliceFlag{Name: "only", Usage: "run only the scenarios whose kind is listed (dm, group, idle, login, file, groupdl; floor: the three compared with the floor relay, both runs of each)"},
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
	// floor runs the scenario against the floor relay (loadgen floor, a
	// lower bound) instead of the server.
	floor bool
	// compare names the row of the floor comparison this step fills (the
	// floor's run and ours share it); "" for steps not compared.
	compare string
	msg     *msgParams // dm and group: the scenario's parameters
	run     func(ctx context.Context, e *env) (*Result, error)
}

// suiteHashCost keeps sign-ups cheap outside the login scenario.
const suiteHashCost = 4

// loginHashCost is the server's default cost, used for the login scenario.
const loginHashCost = 10

// suiteSteps lists the standard suite. Group scenarios are named by the
// total of messages sent; that total is split evenly over their senders.
// The compared chat scenarios run first against the floor relay, then
// against our server.
func suiteSteps(quick bool, fileSize, dlSize int64, tmpDir, cert, key string) []step {
	type chatCase struct {
		group            bool
		clients, senders int
		msgs             int // per sender
		rate             float64
		compare          bool
	}
	dmFlood := chatCase{clients: 100, msgs: 2000, compare: true}
	dmPaced := chatCase{clients: 100, msgs: 500, rate: 10000, compare: true}
	cases := []chatCase{dmFlood, dmPaced, {clients: 1000, msgs: 200},
		{group: true, clients: 200, senders: 10, msgs: 200}, {group: true, clients: 1000, senders: 10, msgs: 50},
		{group: true, clients: 100, senders: 10, msgs: 50, rate: 100, compare: true}}
	idleN, hold, loginN := 10000, 5*time.Second, 50
	if quick {
		cases = []chatCase{{clients: 20, msgs: 200, compare: true}, {clients: 20, msgs: 50, rate: 1000, compare: true},
			{clients: 100, msgs: 20},
			{group: true, clients: 20, senders: 5, msgs: 40}, {group: true, clients: 50, senders: 5, msgs: 10},
			{group: true, clients: 20, senders: 5, msgs: 20, rate: 100, compare: true}}
		idleN, hold, loginN = 200, time.Second, 10
	}
	const size = 100
	var steps []step
	for _, c := range cases {
		p := msgParams{Group: c.group, Clients: c.clients, Senders: c.senders, Messages: c.msgs, Size: size, Rate: c.rate}
		kind, name := "dm", fmt.Sprintf("dm %dx%d", c.clients, c.msgs)
		if c.group {
			kind, name = "group", fmt.Sprintf("group %dx%d", c.clients, c.senders*c.msgs)
		}
		switch {
		case c.rate > 0:
			name += fmt.Sprintf(" @%.0f/s", c.rate)
		case !c.group:
			name += " flood"
		}
		st := step{name: name, kind: kind, conns: c.clients, hashCost: suiteHashCost, msg: &p,
			run: func(ctx context.Context, e *env) (*Result, error) { return runMessages(ctx, e, p) }}
		if c.compare {
			st.compare = name
			fl := st
			fl.name, fl.floor = "floor: "+name, true
			steps = append(steps, fl)
		}
		steps = append(steps, st)
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
		if !slices.Contains(suiteKinds, k) {
			return fmt.Errorf("--only %q: want dm, group, idle, login, file, groupdl or floor", k)
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
	steps := selectSteps(suiteSteps(quick, fileSize, dlSize, tmpDir, cert, key), only)
	floorBin := ""
	if slices.ContainsFunc(steps, func(st step) bool { return st.floor }) {
		if floorBin, err = floorBinary(cc.String("bin")); err != nil {
			return err
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
	var (
		rows []summary
		done []stepResult
	)
	failed := 0
	for _, st := range steps {
		if ctx.Err() != nil {
			break
		}
		t0 := time.Now()
		exe := bin
		if st.floor {
			exe = floorBin
		}
		res, err := runStep(ctx, e, st, exe, dir, certDir, logf)
		if err != nil {
			failed++
			fmt.Fprintf(e.out, "\n== %s: FAILED: %v\n", st.name, err)
			rows = append(rows, summary{scenario: st.name, rate: "FAILED", p50: "-", p99: "-", faults: "-", cpu: "-", rss: "-"})
			done = append(done, stepResult{st: st})
			continue
		}
		res.Scenario = st.name
		res.print(e.out, e.json)
		fmt.Fprintf(e.out, "  (%.1f s with server start and stop)\n", time.Since(t0).Seconds())
		rows = append(rows, res.summary())
		if res.faults() {
			failed++
		}
		done = append(done, stepResult{st: st, res: res})
	}
	printSummary(e.out, rows)
	printTargets(e.out, done)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("suite interrupted: %w", err)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d scenarios failed or did not deliver cleanly (server log: %s)", failed, len(steps), logPath)
	}
	return nil
}

// suiteKinds are the names --only takes: a step's kind, or "floor" for
// every compared step (the floor relay's runs and ours).
var suiteKinds = []string{"dm", "group", "idle", "login", "file", "groupdl", "floor"}

// selectSteps keeps the steps --only names (all of them without --only).
func selectSteps(all []step, only []string) []step {
	if len(only) == 0 {
		return all
	}
	var steps []step
	for _, st := range all {
		if slices.Contains(only, st.kind) || st.compare != "" && slices.Contains(only, "floor") {
			steps = append(steps, st)
		}
	}
	return steps
}

// floorBinary is the loadgen binary in binDir, which serves the floor
// relay ("loadgen floor").
func floorBinary(binDir string) (string, error) {
	p, err := filepath.Abs(filepath.Join(binDir, "loadgen"))
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("--bin: no executable loadgen at %s for the floor relay (go build -o DIR/ ./tools/loadgen)", p)
	}
	return p, nil
}

// stepResult is a step and what it measured; res is nil if it failed.
type stepResult struct {
	st  step
	res *Result
}

// runStep starts a fresh server (or, for a floor step, the floor relay
// from the loadgen binary exe), runs one scenario against it and stops it.
func runStep(ctx context.Context, base *env, st step, exe, dir, certDir string, logf *os.File) (*Result, error) {
	fmt.Fprintf(logf, "=== %s (%s)\n", st.name, time.Now().Format(time.RFC3339))
	srv, err := startServer(ctx, exe, dir, certDir, st, logf)
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

// startServer starts the server binary exe with fresh accounts and spool,
// or for a floor step the floor relay (exe is then loadgen), and waits
// until it has written its address.
func startServer(ctx context.Context, exe, dir, certDir string, st step, logf *os.File) (*serverProc, error) {
	users, spoolDir, addrFile := filepath.Join(dir, "users.csv"), filepath.Join(dir, "spool"), filepath.Join(dir, "server.addr")
	for _, p := range []string{users, addrFile} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	if err := os.RemoveAll(spoolDir); err != nil {
		return nil, err
	}
	if st.floor {
		return startProc(ctx, exe, []string{"floor", "--listen", "127.0.0.1:0", "--addr-file", addrFile,
			"--cert", filepath.Join(certDir, pki.ServerCertFile), "--key", filepath.Join(certDir, pki.ServerKeyFile)}, addrFile, logf)
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
	return startProc(ctx, exe, args, addrFile, logf)
}

// startProc starts exe with args and waits until it has written its
// address to addrFile.
func startProc(ctx context.Context, exe string, args []string, addrFile string, logf *os.File) (*serverProc, error) {
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", filepath.Base(exe), err)
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
			return nil, fmt.Errorf("%s exited at start (%v); see %s", filepath.Base(exe), p.err, logf.Name())
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-deadline.C:
			p.stop()
			return nil, fmt.Errorf("%s wrote no address to %s within 15 s", filepath.Base(exe), addrFile)
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
