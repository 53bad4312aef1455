// Command server runs an SSL-Messager server: TLS on one port, accounts in
// a CSV file, queued files in a spool directory.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	_ "net/http/pprof" // served only on the --pprof address
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"sslmessager/internal/accounts"
	"sslmessager/internal/admin"
	"sslmessager/internal/bans"
	"sslmessager/internal/cliflags"
	"sslmessager/internal/keydir"
	"sslmessager/internal/metrics"
	"sslmessager/internal/offline"
	"sslmessager/internal/pki"
	"sslmessager/internal/relay"
	"sslmessager/internal/spool"
)

func main() {
	app := newApp()
	args := cliflags.Reorder(app, os.Args, "admin")
	app.Metadata = map[string]any{argsKey: args}
	err := app.Run(args)
	if errors.Is(err, errAdminFailed) {
		os.Exit(1) // the answer said why
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(cliflags.ExitStatus(err))
	}
}

// shutdownGrace is how long a stopping server lets sessions drain.
const shutdownGrace = 10 * time.Second

func newApp() *cli.App {
	flags := fileBacked(markReloadable(serverFlags()))
	app := &cli.App{
		Name:  "server",
		Usage: "run an SSL-Messager server",
		Description: `Serves the SSL-Messager protocol over TLS. Accounts live in --users (created
empty if missing); files sent to users wait in --spool until they download them;
direct messages sent to users while they are offline wait in --offline until
they next log in; the public key bundles users publish for end-to-end
encryption are kept in --keys.

Examples:
   gencert && server                         certificates in certs/, listen on :18443
   server --listen 127.0.0.1:18443           loopback only
   server --users /var/lib/sslm/users.csv --spool /var/lib/sslm/spool
   server --listen 127.0.0.1:0 --addr-file addr.txt   any free port, written to addr.txt
   server --max-queued-files 200 --spool-max 50GB --min-free-disk 5GB --max-file-size 2GiB
                                             at most 200 files per recipient, 50 GB in all, keep 5 GB free

   server --config /etc/sslm/server.yaml     every flag's setting from a file (YAML or TOML, by extension)
   server --config server.toml --signup closed   the file, but sign-up closed

Sizes take a unit or none (bytes): 512KiB, 10MB, 1GiB. Durations: 15s, 1m, 2h.
Counts and durations must be more than 0, except where 0 is said to mean no limit.

Settings: every flag can be set in the --config file under its long name
(max-conns-per-ip: 16). ` + precedence + `

SIGINT or SIGTERM stops it gracefully: sessions are told, queues drain (at most 10 s).
SIGHUP reloads: the command line, environment and --config file are read
again, and the certificate and key, the limits marked [reloadable], the log
level and users.csv (accounts removed by hand lose their sessions) take
effect; anything else needs a restart. A file that is not valid changes
nothing and is logged.`,
		HideHelpCommand: true,
		Before:          loadConfigFile(flags),
		Flags:           flags,
		Commands:        []*cli.Command{adminCommand()},
		Action:          run,
	}
	cliflags.Setup(app)
	return app
}

// serverFlags are the server's flags. Every one can also be set in the
// --config file (see fileBacked); "[reloadable]" marks those SIGHUP
// applies (reloadableFlags).
func serverFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "listen", Value: ":18443", Usage: "TCP `ADDRESS` to listen on", EnvVars: []string{"SSLM_LISTEN"}},
		&cli.StringFlag{Name: "addr-file", Usage: "write the address actually listened on to `FILE` once ready (for scripts)"},
		&cli.StringFlag{Name: "users", Value: "users.csv", Usage: "account `FILE` (CSV)", EnvVars: []string{"SSLM_USERS"}},
		&cli.StringFlag{Name: "cert", Value: "certs/" + pki.ServerCertFile, Usage: "server certificate `FILE` (PEM)", EnvVars: []string{"SSLM_CERT"}},
		&cli.StringFlag{Name: "key", Value: "certs/" + pki.ServerKeyFile, Usage: "server private key `FILE` (PEM)", EnvVars: []string{"SSLM_KEY"}},
		&cli.StringFlag{Name: "spool", Value: "spool", Usage: "`DIR` where uploaded files wait for their recipients", EnvVars: []string{"SSLM_SPOOL"}},
		cliflags.NewSizeFlag("max-file-size", spool.DefaultMaxFileSize, "largest upload"),
		cliflags.NewSizeFlag("quota", spool.DefaultQuota, "bytes queued for one recipient at most"),
		&cli.IntFlag{Name: "max-queued-files", Value: spool.DefaultMaxQueuedFiles, Usage: "at most `N` files queued for one recipient, uploads in progress included (0: no limit)"},
		cliflags.NewSizeFlag("spool-max", 0, "bytes the whole spool may hold, all recipients together; 0: no limit"),
		cliflags.NewSizeFlag("min-free-disk", spool.DefaultMinFreeDisk, "disk space uploads must leave free on the spool's file system; 0: no floor"),
		// Offline direct messages.
		&cli.StringFlag{Name: "offline", Value: "offline", Usage: "`DIR` where direct messages to offline users wait for them (stored in the clear)", EnvVars: []string{"SSLM_OFFLINE"}},
		&cli.IntFlag{Name: "max-offline-msgs", Value: offline.DefaultMaxPerRecipient, Usage: "at most `N` undelivered messages stored for one recipient (0: no limit)"},
		cliflags.NewSizeFlag("offline-max", offline.DefaultMaxTotalBytes, "bytes the stored offline messages may take together; 0: no limit"),
		// The key directory for end-to-end encryption (ALPN sslm/3).
		&cli.StringFlag{Name: "keys", Value: "keys", Usage: "`DIR` of the key directory: each user's public key bundle, and keys.log of every change", EnvVars: []string{"SSLM_KEYS"}},
		&cli.IntFlag{Name: "max-key-changes", Value: keydir.DefaultMaxChangesPerHour, Usage: "at most `N` changes of one user's key bundle per hour (0: no limit)"},
		&cli.IntFlag{Name: "hash-cost", Value: accounts.DefaultCost, Usage: "bcrypt `COST` for new passwords (4 to 31)"},
		&cli.DurationFlag{Name: "check-interval", Value: relay.DefaultCheckInterval, Usage: "how often every session gets a CHECK (a `DURATION`: 15s, 1m)"},
		&cli.DurationFlag{Name: "login-timeout", Value: relay.DefaultLoginTimeout, Usage: "`DURATION` allowed from connect to log-in"},
		&cli.DurationFlag{Name: "write-timeout", Value: relay.DefaultWriteTimeout, Usage: "a peer that accepts no data for this `DURATION` is dropped"},
		&cli.IntFlag{Name: "max-conns", Value: relay.DefaultMaxConns, Usage: "at most `N` open connections"},
		&cli.IntFlag{Name: "max-sessions-per-user", Value: relay.DefaultMaxSessionsPerUser, Usage: "at most `N` sessions one user may have at once; a log-in at the cap ends the user's oldest session"},
		&cli.IntFlag{Name: "max-conns-per-ip", Value: relay.DefaultMaxConnsPerIP, Usage: "at most `N` open connections from one address (IPv4 address or IPv6 /64); 0: no limit"},
		&cli.IntFlag{Name: "max-handshakes-per-ip", Value: relay.DefaultMaxHandshakesPerIP, Usage: "at most `N` TLS handshakes under way from one address; more wait up to 2s for one to end; 0: no limit"},
		&cli.DurationFlag{Name: "first-byte-timeout", Value: relay.DefaultFirstByteTimeout, Usage: "a new connection that sends nothing for this `DURATION` is closed"},
		&cli.IntFlag{Name: "max-failed-logins", Value: relay.DefaultMaxFailedLogins, Usage: "`N` failed log-ins one address may have at once; then one more per --failed-login-window/N; 0: no limit"},
		&cli.DurationFlag{Name: "failed-login-window", Value: relay.DefaultFailedLoginWindow, Usage: "the window (a `DURATION`) of --max-failed-logins"},
		&cli.DurationFlag{Name: "login-backoff-max", Value: relay.DefaultLoginBackoffMax, Usage: "longest wait (a `DURATION`) one account's failed log-ins impose (each failure after the third doubles it, from 1s)"},
		&cli.IntFlag{Name: "max-signups-per-ip", Value: relay.DefaultMaxSignUpsPerIP, Usage: "`N` accounts one address may create per hour (a burst of N, then one per hour/N); 0: no limit"},
		&cli.StringFlag{Name: "signup", Value: "open", Usage: "`MODE` open: anyone may sign up with PUT; closed: PUT is refused", EnvVars: []string{"SSLM_SIGNUP"}},
		&cli.BoolFlag{Name: "allow-expired-cert", Usage: "start even if the server certificate has expired or is not yet valid"},
		cliflags.NewSizeFlag("max-queue", relay.DefaultMaxQueueBytes, "bytes queued for one client before it is dropped as too slow"),
		&cli.StringFlag{Name: "pprof", Usage: "serve Go profiling on this loopback `ADDRESS` (e.g. 127.0.0.1:6060)"},
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "`LEVEL`: debug, info, warn or error"},
		&cli.BoolFlag{Name: "log-json", Usage: "log JSON lines instead of text"},

		// Operations (issue 8): configuration file and metrics.
		&cli.StringFlag{Name: configFlag, Usage: "read settings from this YAML or TOML `FILE` (by extension); flags and environment win over it", EnvVars: []string{"SSLM_CONFIG"}},
		&cli.StringFlag{Name: "metrics", Usage: "serve Prometheus metrics on this `ADDRESS` at /metrics (e.g. 127.0.0.1:9464); anyone who reaches it sees them", EnvVars: []string{"SSLM_METRICS"}},
		// Admin: bans and the admin socket.
		&cli.StringFlag{Name: "bans", Usage: "ban list `FILE` (CSV; default bans.csv beside --users)", EnvVars: []string{"SSLM_BANS"}},
		adminSocketFlag,
	}
}

func run(cc *cli.Context) error {
	if err := cliflags.NoArgs(cc); err != nil {
		return err
	}
	// From the start, SIGHUP waits for the reloaders instead of killing
	// the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	level, err := parseLevel(cc.String("log-level"))
	if err != nil {
		return err
	}
	var levelVar slog.LevelVar
	levelVar.Set(level)
	logger := newLogger(&levelVar, cc.Bool("log-json"))
	if a := cc.String("pprof"); a != "" {
		if err := checkLoopback(a); err != nil {
			return fmt.Errorf("--pprof: %w", err)
		}
	}
	for _, name := range []string{"max-queued-files", "max-offline-msgs", "max-key-changes"} {
		if cc.Int(name) < 0 {
			return cliflags.Usagef(cc.App, "--%s %d: want 0 (no limit) or more", name, cc.Int(name))
		}
	}
	if c := cc.Int("hash-cost"); c < 4 || c > 31 {
		return cliflags.Usagef(cc.App, "--hash-cost %d: want 4 to 31", c)
	}
	for _, name := range []string{"max-file-size", "quota"} {
		if cliflags.SizeOf(cc, name) == 0 {
			return cliflags.Usagef(cc.App, "--%s 0: want a size of 1 byte or more", name)
		}
	}
	cfg, err := liveConfig(cc)
	if err != nil {
		return err
	}
	raiseFileLimit(logger, cc.Int("max-conns"))
	acc, err := accounts.Open(cc.String("users"), accounts.Options{Cost: cc.Int("hash-cost"), Logger: logger})
	if err != nil {
		return err
	}
	defer acc.Close()
	banList, err := bans.Open(besideUsers(cc, "bans", "bans.csv"))
	if err != nil {
		return err
	}
	sp, err := spool.Open(cc.String("spool"), spool.Options{
		MaxFileSize:    cliflags.SizeOf(cc, "max-file-size"),
		Quota:          cliflags.SizeOf(cc, "quota"),
		MaxQueuedFiles: zeroIs(cc.Int("max-queued-files"), spool.NoLimit),
		MaxTotalBytes:  cliflags.SizeOf(cc, "spool-max"),
		MinFreeDisk:    zeroIs(cliflags.SizeOf(cc, "min-free-disk"), spool.NoLimit),
		Logger:         logger,
	})
	if err != nil {
		return err
	}
	off, err := offline.Open(cc.String("offline"), offline.Options{
		MaxPerRecipient: zeroIs(cc.Int("max-offline-msgs"), offline.NoLimit),
		MaxTotalBytes:   zeroIs(cliflags.SizeOf(cc, "offline-max"), offline.NoLimit),
		Logger:          logger,
	})
	if err != nil {
		return err
	}
	keys, err := keydir.Open(cc.String("keys"), keydir.Options{
		MaxChangesPerHour: zeroIs(cc.Int("max-key-changes"), keydir.NoLimit),
		Logger:            logger,
	})
	if err != nil {
		return err
	}
	var mx *metrics.Metrics
	var metricsL net.Listener
	if a := cc.String("metrics"); a != "" {
		if metricsL, err = net.Listen("tcp", a); err != nil {
			return fmt.Errorf("--metrics: %w", err)
		}
		defer metricsL.Close()
		mx = metrics.New()
		cfg.Events = mx
	}
	cfg.Accounts, cfg.Spool, cfg.Offline, cfg.Keys, cfg.Logger = acc, sp, off, keys, logger
	cfg.CheckInterval = cc.Duration("check-interval")
	cfg.Bans = banList
	srv, err := relay.New(cfg)
	if errors.Is(err, pki.ErrCertExpired) || errors.Is(err, pki.ErrCertNotYetValid) {
		return fmt.Errorf("%w; --allow-expired-cert starts anyway", err)
	}
	if err != nil {
		return err
	}
	adm := admin.New(admin.Deps{Relay: srv, Accounts: acc, Spool: sp, Bans: banList, Logger: logger})
	srv.SetAdminRunner(adm)
	sock, err := adm.ListenSocket(besideUsers(cc, "admin-socket", DefaultAdminSocket))
	if err != nil {
		srv.Close()
		return err
	}
	defer sock.Close()
	go sock.Serve()
	logger.Info("admin socket listening", "path", sock.Path())
	l, err := relay.Listen(cc.String("listen"))
	if err != nil {
		srv.Close()
		return err
	}
	if f := cc.String("addr-file"); f != "" {
		if err := os.WriteFile(f, []byte(l.Addr().String()+"\n"), 0o644); err != nil {
			l.Close()
			return err
		}
	}
	if a := cc.String("pprof"); a != "" {
		go func() {
			logger.Info("pprof listening", "addr", a)
			if err := http.ListenAndServe(a, nil); err != nil {
				logger.Error("pprof stopped", "err", err)
			}
		}()
	}
	if mx != nil {
		mx.Watch(srv, sp)
		mux := http.NewServeMux()
		mux.Handle("/metrics", mx.Handler())
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
		defer hs.Close()
		go func() {
			logger.Info("metrics listening", "addr", metricsL.Addr().String(), "path", "/metrics")
			if err := hs.Serve(metricsL); !errors.Is(err, http.ErrServerClosed) {
				logger.Error("metrics stopped", "err", err)
			}
		}()
	}

	// SIGHUP runs the reloaders in turn: each re-reads its file and
	// applies it whole or not at all; one that fails does not stop the
	// others.
	args, _ := cc.App.Metadata[argsKey].([]string)
	rc := &configReloader{args: args, srv: srv, level: &levelVar, log: logger, values: flagValues(cc), cert: srv.Certificate()}
	reloaders := []reloader{
		{"configuration", rc.reload},
		{"accounts", func() error { return reloadAccounts(acc, srv, logger) }},
		{"bans", func() error {
			n, err := banList.Reload()
			if err == nil {
				logger.Info("bans reloaded", "bans", n)
			}
			return err
		}},
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	startConsole(adm, logger)
wait:
	for {
		select {
		case err := <-served:
			srv.Close()
			return err
		case <-hup:
			ok := reloadAll(logger, reloaders)
			if mx != nil {
				mx.Reloaded(ok)
			}
		case <-ctx.Done():
			break wait
		}
	}
	logger.Info("shutting down", "grace", shutdownGrace)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("shutdown cut short", "err", err)
	}
	if err := <-served; !errors.Is(err, relay.ErrServerClosed) {
		return err
	}
	logger.Info("stopped")
	return nil
}

// liveConfig reads the settings a running server can change (see
// reloadableFlags), checks them and loads the certificate and key: the
// part of relay.Config that start-up and SIGHUP both build.
func liveConfig(cc *cli.Context) (relay.Config, error) {
	signUpClosed, err := parseSignUp(cc.String("signup"))
	if err != nil {
		return relay.Config{}, err
	}
	for _, name := range []string{"max-conns-per-ip", "max-handshakes-per-ip", "max-failed-logins", "max-signups-per-ip"} {
		if cc.Int(name) < 0 {
			return relay.Config{}, cliflags.Usagef(cc.App, "--%s %d: want 0 (no limit) or more", name, cc.Int(name))
		}
	}
	for _, name := range []string{"max-conns", "max-sessions-per-user"} {
		if cc.Int(name) <= 0 {
			return relay.Config{}, cliflags.Usagef(cc.App, "--%s %d: want 1 or more", name, cc.Int(name))
		}
	}
	if cliflags.SizeOf(cc, "max-queue") == 0 {
		return relay.Config{}, cliflags.Usagef(cc.App, "--max-queue 0: want a size of 1 byte or more")
	}
	for _, name := range []string{"check-interval", "login-timeout", "write-timeout", "first-byte-timeout", "failed-login-window", "login-backoff-max"} {
		if d := cc.Duration(name); d <= 0 {
			return relay.Config{}, cliflags.Usagef(cc.App, "--%s %s: want a duration of more than 0, e.g. 15s or 1m", name, d)
		}
	}
	if _, err := parseLevel(cc.String("log-level")); err != nil {
		return relay.Config{}, err
	}
	tlsConfig, err := pki.ServerTLSConfig(cc.String("cert"), cc.String("key"))
	if err != nil {
		return relay.Config{}, fmt.Errorf("%w (run gencert first, or pass --cert and --key)", err)
	}
	return relay.Config{
		TLSConfig:     tlsConfig,
		LoginTimeout:  cc.Duration("login-timeout"),
		WriteTimeout:  cc.Duration("write-timeout"),
		MaxConns:      cc.Int("max-conns"),
		MaxQueueBytes: int(min(cliflags.SizeOf(cc, "max-queue"), math.MaxInt32)),

		MaxSessionsPerUser: cc.Int("max-sessions-per-user"),

		MaxConnsPerIP:      zeroIs(cc.Int("max-conns-per-ip"), relay.NoLimit),
		MaxHandshakesPerIP: zeroIs(cc.Int("max-handshakes-per-ip"), relay.NoLimit),
		FirstByteTimeout:   cc.Duration("first-byte-timeout"),
		MaxFailedLogins:    zeroIs(cc.Int("max-failed-logins"), relay.NoLimit),
		FailedLoginWindow:  cc.Duration("failed-login-window"),
		LoginBackoffMax:    cc.Duration("login-backoff-max"),
		MaxSignUpsPerIP:    zeroIs(cc.Int("max-signups-per-ip"), relay.NoLimit),
		SignUpClosed:       signUpClosed,
		AllowExpiredCert:   cc.Bool("allow-expired-cert"),
	}, nil
}

// zeroIs maps a flag's 0 ("no limit") to the NoLimit of the package the
// value goes to (their options read 0 as "the default").
func zeroIs[T int | int64](v, noLimit T) T {
	if v == 0 {
		return noLimit
	}
	return v
}

// parseSignUp reads --signup: true if sign-up is closed.
func parseSignUp(v string) (closed bool, err error) {
	switch v {
	case "open":
		return false, nil
	case "closed":
		return true, nil
	}
	return false, fmt.Errorf("--signup %q: want open or closed", v)
}

// parseLevel reads --log-level.
func parseLevel(level string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return l, nil
}

// newLogger logs to stderr at level, which SIGHUP may change.
func newLogger(level *slog.LevelVar, json bool) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if json {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
