// Command loadgen drives an SSL-Messager server with many real TLS clients
// and reports what it delivered (loss, duplicates, reordering), how fast
// (messages per second, latency percentiles, MB/s) and, given the server's
// PID, at what cost to the server (CPU per message, resident memory).
// Every scenario talks to loopback only, is bounded in size and time, and
// reports loss on timeout instead of hanging. "loadgen suite" starts the
// server binary itself and runs the standard set of scenarios.
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"sslmessager/internal/cliflags"
	"sslmessager/internal/pki"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	app := newApp()
	err := app.RunContext(ctx, cliflags.Reorder(app, os.Args))
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(cliflags.ExitStatus(err))
	}
}

const usageText = `loadgen --server ADDR --ca FILE [--server-pid PID] [--json] SCENARIO [options]
   loadgen suite --bin DIR --dir DIR [--quick]
   loadgen floor --cert FILE --key FILE [--addr-file FILE]   (a LOWER BOUND for measurement, never a server to run)

Examples:
   loadgen suite --bin bin --dir /tmp/lgdata --quick
      Start bin/server afresh for every scenario (scratch accounts and spool
      in /tmp/lgdata, certificates in /tmp/lgdata/certs) and run the whole
      suite in a small size: seconds. Without --quick: the standard suite,
      a few minutes on 2 cores.

   loadgen --server 127.0.0.1:18443 --ca certs/ca.pem --server-pid $(pidof server) \
           dm --clients 100 --messages 2000 --size 100
      50 pairs of clients flood each other; with the PID, server CPU per
      message and resident memory are reported too.

   loadgen --server 127.0.0.1:18443 --ca certs/ca.pem dm --clients 100 --messages 500 --rate 10000
   loadgen --server 127.0.0.1:18443 --ca certs/ca.pem group --members 200 --senders 10 --messages 200
   loadgen --server 127.0.0.1:18443 --ca certs/ca.pem idle --clients 10000 --hold 10s
   loadgen --server 127.0.0.1:18443 --ca certs/ca.pem login --count 50
   loadgen --server 127.0.0.1:18443 --ca certs/ca.pem file --size 1GiB \
           --cert certs/server.pem --key certs/server.key --tmp /var/tmp
   loadgen --server 127.0.0.1:18443 --ca certs/ca.pem groupdl --members 20 --senders 10 \
           --messages 50 --rate 100 --file-size 1GiB --tmp /var/tmp`

const description = `Every client is a real TLS connection that logs in (PUT, or AUTH when a
rerun finds its account) and reads its socket continuously. User names are
the prefix, a letter for the scenario and five digits (e.g. abcd00042).

Message texts carry the sender's index, a sequence number and the send time;
receivers check every (sender, target) stream for loss, duplicates and
reordering and measure latency. A scenario ends when everything arrived, at
its timeout, or when nothing arrived for 5 s after the last send; what did not
arrive is reported as lost. A scenario with loss, duplicates, reordering,
dropped connections or errors exits non-zero after printing its table.

The server must listen on loopback: loadgen talks to nothing else.`

// env is what every scenario needs from the global flags.
type env struct {
	addr        string
	tls         *tls.Config
	pid         int           // 0: server cost not measured
	timeout     time.Duration // 0: each scenario's default
	prefix      string
	concurrency int
	json        bool
	out         io.Writer
}

func (e *env) timeoutOr(d time.Duration) time.Duration {
	if e.timeout > 0 {
		return e.timeout
	}
	return d
}

func (e *env) name(tag byte, i int) string { return userName(e.prefix, tag, i) }

// newApp builds the command-line application; tests run it directly.
func newApp() *cli.App {
	app := &cli.App{
		Name:            "loadgen",
		Usage:           "load-test an SSL-Messager server over loopback",
		UsageText:       usageText,
		Description:     description,
		HideHelpCommand: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "server", Usage: "server `ADDRESS` (host:port on loopback)", EnvVars: []string{"LOADGEN_SERVER"}},
			&cli.StringFlag{Name: "ca", Usage: "CA certificate `FILE` the server's certificate is checked against", EnvVars: []string{"LOADGEN_CA"}},
			&cli.IntFlag{Name: "server-pid", Usage: "server `PID` whose CPU and memory are read from /proc (0: not measured)"},
			&cli.DurationFlag{Name: "timeout", Usage: "bound on each scenario (0: 60s for dm/group/login, 120s+hold for idle, 5m for file and groupdl)"},
			&cli.BoolFlag{Name: "json", Usage: "also print one JSON line per scenario"},
			&cli.StringFlag{Name: "prefix", Usage: "user name `PREFIX`, 1 to 9 letters, digits or _ (default: 3 random letters)"},
			&cli.IntFlag{Name: "concurrency", Value: defaultConcurrency, Usage: "connects and log-ins at once (1 to 512)"},
		},
		Commands: []*cli.Command{
			{
				Name:      "dm",
				Usage:     "pairs of clients send each other direct messages",
				UsageText: "loadgen [global options] dm --clients N --messages M --size S [--rate R]",
				Flags: []cli.Flag{
					&cli.IntFlag{Name: "clients", Value: 100, Usage: "clients, an even number: i and i^1 are partners"},
					&cli.IntFlag{Name: "messages", Value: 1000, Usage: "messages each client sends its partner"},
					&cli.IntFlag{Name: "size", Value: 100, Usage: "bytes per message text (at most 4000)"},
					&cli.Float64Flag{Name: "rate", Usage: "total messages per second, paced (0: flood)"},
				},
				Action: scenario(func(cc *cli.Context, e *env) (*Result, error) {
					return runMessages(cc.Context, e, msgParams{Clients: cc.Int("clients"), Messages: cc.Int("messages"),
						Size: cc.Int("size"), Rate: cc.Float64("rate")})
				}),
			},
			{
				Name:      "group",
				Usage:     "members in group mode; some of them send to all",
				UsageText: "loadgen [global options] group --members N --senders K --messages M --size S [--rate R]",
				Flags: []cli.Flag{
					&cli.IntFlag{Name: "members", Value: 100, Usage: "clients in group mode"},
					&cli.IntFlag{Name: "senders", Value: 10, Usage: "members that send (the first K)"},
					&cli.IntFlag{Name: "messages", Value: 100, Usage: "messages each sender sends; each reaches every other member"},
					&cli.IntFlag{Name: "size", Value: 100, Usage: "bytes per message text (at most 4000)"},
					&cli.Float64Flag{Name: "rate", Usage: "total messages sent per second, paced (0: flood)"},
				},
				Action: scenario(func(cc *cli.Context, e *env) (*Result, error) {
					return runMessages(cc.Context, e, msgParams{Group: true, Clients: cc.Int("members"), Senders: cc.Int("senders"),
						Messages: cc.Int("messages"), Size: cc.Int("size"), Rate: cc.Float64("rate")})
				}),
			},
			{
				Name:      "idle",
				Usage:     "hold many authenticated connections; server memory per connection",
				UsageText: "loadgen [global options] idle --clients N --hold D",
				Flags: []cli.Flag{
					&cli.IntFlag{Name: "clients", Value: 1000, Usage: "connections to hold"},
					&cli.DurationFlag{Name: "hold", Value: 10 * time.Second, Usage: "how long to hold them"},
				},
				Action: scenario(func(cc *cli.Context, e *env) (*Result, error) {
					return runIdle(cc.Context, e, idleParams{Clients: cc.Int("clients"), Hold: cc.Duration("hold")})
				}),
			},
			{
				Name:      "login",
				Usage:     "sign-ups, then log-ins, per second (new connection each)",
				UsageText: "loadgen [global options] login --count N",
				Flags: []cli.Flag{
					&cli.IntFlag{Name: "count", Value: 50, Usage: "sign-ups, and then as many log-ins"},
				},
				Action: scenario(func(cc *cli.Context, e *env) (*Result, error) {
					return runLogin(cc.Context, e, cc.Int("count"))
				}),
			},
			{
				Name:      "file",
				Usage:     "upload and download one file, against TLS and disk ceilings",
				UsageText: "loadgen [global options] file --size BYTES [--cert FILE --key FILE] [--tmp DIR]",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "size", Value: "64MiB", Usage: "file size: bytes, or with KB MB GB (1e3...) or KiB MiB GiB (1024...)"},
					&cli.StringFlag{Name: "cert", Usage: "the server's certificate `FILE`, for the ceilings (skipped without it)"},
					&cli.StringFlag{Name: "key", Usage: "the server's key `FILE`, for the ceilings"},
					&cli.StringFlag{Name: "tmp", Usage: "`DIR` for the downloaded file and ceiling 2 (default: the system's temp dir)"},
				},
				Action: scenario(func(cc *cli.Context, e *env) (*Result, error) {
					size, err := parseBytes(cc.String("size"))
					if err != nil {
						return nil, fmt.Errorf("--size: %w", err)
					}
					if (cc.String("cert") == "") != (cc.String("key") == "") {
						return nil, fmt.Errorf("--cert and --key go together")
					}
					return runFile(cc.Context, e, fileParams{Size: size, Cert: cc.String("cert"), Key: cc.String("key"), TmpDir: cc.String("tmp")})
				}),
			},
			{
				Name:  "groupdl",
				Usage: "group chat without, then with, one member downloading a big file; latency and its ratio",
				UsageText: "loadgen [global options] groupdl --members N --senders K --messages M --size S --rate R " +
					"--file-size BYTES [--tmp DIR]",
				Description: `A separate client queues one file of --file-size bytes for the last member.
Then the first K members send M group texts each, paced at R in total, with
nobody downloading (the baseline). Then the last member sends CMD <get ack>
and reads the file at full speed as our client does (into a file in --tmp
while hashing it, fsync, ACKF) while the senders send at the same pace from
then until the file is in and they sent at least M each. Reported: the latency
seen by the members that are not downloading, in each phase and for the texts
sent while the file streamed, its p99 against the baseline's; the
downloader's own texts (they wait behind the file); the download rate. Any
lost, duplicated or reordered text for any member, the downloader included,
a dropped member, or a file that is not byte-exact or stays queued after its
ACKF fails the run.`,
				Flags: []cli.Flag{
					&cli.IntFlag{Name: "members", Value: 20, Usage: "clients in group mode; the last one downloads"},
					&cli.IntFlag{Name: "senders", Value: 10, Usage: "members that send (the first K, at most members - 1)"},
					&cli.IntFlag{Name: "messages", Value: 50, Usage: "texts each sender sends in the baseline; the download phase sends at least as many"},
					&cli.IntFlag{Name: "size", Value: 100, Usage: "bytes per message text (at most 4000)"},
					&cli.Float64Flag{Name: "rate", Value: 100, Usage: "total texts sent per second, both phases"},
					&cli.StringFlag{Name: "file-size", Value: "1GiB", Usage: "size of the downloaded file: bytes, or with KB MB GB or KiB MiB GiB"},
					&cli.StringFlag{Name: "tmp", Usage: "`DIR` the download is written to (default: the system's temp dir)"},
				},
				Action: scenario(func(cc *cli.Context, e *env) (*Result, error) {
					size, err := parseBytes(cc.String("file-size"))
					if err != nil {
						return nil, fmt.Errorf("--file-size: %w", err)
					}
					return runGroupDL(cc.Context, e, groupdlParams{Members: cc.Int("members"), Senders: cc.Int("senders"),
						Messages: cc.Int("messages"), Size: cc.Int("size"), Rate: cc.Float64("rate"), FileSize: size, TmpDir: cc.String("tmp")})
				}),
			},
			suiteCommand(),
			floorCommand(),
		},
	}
	cliflags.Setup(app)
	return app
}

// scenario wraps a scenario as a command action: it checks the global
// flags, runs the scenario, prints the result and fails on faults.
func scenario(run func(cc *cli.Context, e *env) (*Result, error)) cli.ActionFunc {
	return func(cc *cli.Context) error {
		if err := cliflags.NoArgs(cc); err != nil {
			return err
		}
		e, err := envFromFlags(cc)
		if err != nil {
			return err
		}
		if _, _, err := raiseFileLimit(); err != nil {
			fmt.Fprintln(cc.App.ErrWriter, "warning: cannot raise the open file limit:", err)
		}
		if err := checkLoopback(cc.String("server")); err != nil {
			return fmt.Errorf("--server: %w", err)
		}
		tc, err := pki.ClientTLSConfig(cc.String("ca"), cc.String("server"))
		if err != nil {
			return fmt.Errorf("--ca: %w", err)
		}
		e.addr, e.tls = cc.String("server"), tc
		res, err := run(cc, e)
		if err != nil {
			return err
		}
		res.print(e.out, e.json)
		if res.faults() {
			return errFaults
		}
		return nil
	}
}

// envFromFlags checks the global flags other than --server and --ca.
func envFromFlags(cc *cli.Context) (*env, error) {
	e := &env{
		pid:         cc.Int("server-pid"),
		timeout:     cc.Duration("timeout"),
		prefix:      cc.String("prefix"),
		concurrency: cc.Int("concurrency"),
		json:        cc.Bool("json"),
		out:         cc.App.Writer,
	}
	if e.prefix == "" {
		e.prefix = randomPrefix()
	}
	switch {
	case !prefixRE.MatchString(e.prefix):
		return nil, fmt.Errorf("--prefix %q: want 1 to %d letters, digits or _", e.prefix, maxPrefix)
	case e.concurrency < 1 || e.concurrency > maxConcurrency:
		return nil, fmt.Errorf("--concurrency %d: want 1 to %d (the server's handshake slots)", e.concurrency, maxConcurrency)
	case e.pid < 0:
		return nil, fmt.Errorf("--server-pid must not be negative")
	case e.timeout < 0:
		return nil, fmt.Errorf("--timeout must not be negative")
	}
	if e.out == nil {
		e.out = os.Stdout
	}
	return e, nil
}

var prefixRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,` + strconv.Itoa(maxPrefix) + `}$`)

// randomPrefix is three random lower-case letters, so that runs against
// the same server do not collide.
func randomPrefix() string {
	b := make([]byte, 3)
	for i := range b {
		b[i] = byte('a' + rand.IntN(26))
	}
	return string(b)
}

// checkLoopback refuses any server address that is not on loopback.
func checkLoopback(addr string) error {
	if addr == "" {
		return fmt.Errorf("required (host:port of the server)")
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s is not a loopback address; loadgen only loads local servers", addr)
	}
	return nil
}

// parseBytes reads a size: a number of bytes with an optional unit, KB MB
// GB (powers of 1000) or KiB MiB GiB (powers of 1024).
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1},
	}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<50)/mult {
		return 0, fmt.Errorf("bad size %q (e.g. 1048576, 64MiB, 1GiB, 100MB)", s)
	}
	return n * mult, nil
}
