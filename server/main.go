// Command server runs an SSL-Messager server: TLS on one port, accounts in
// a CSV file, queued files in a spool directory.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // served only on the --pprof address
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"sslmessager/internal/accounts"
	"sslmessager/internal/offline"
	"sslmessager/internal/pki"
	"sslmessager/internal/relay"
	"sslmessager/internal/spool"
)

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// shutdownGrace is how long a stopping server lets sessions drain.
const shutdownGrace = 10 * time.Second

func newApp() *cli.App {
	return &cli.App{
		Name:  "server",
		Usage: "run an SSL-Messager server",
		Description: `Serves the SSL-Messager protocol over TLS. Accounts live in --users (created
empty if missing); files sent to users wait in --spool until they download them,
and direct messages sent to users while they are offline wait in --offline until
they next log in.

Examples:
   gencert && server                         certificates in certs/, listen on :18443
   server --listen 127.0.0.1:18443           loopback only
   server --users /var/lib/sslm/users.csv --spool /var/lib/sslm/spool
   server --listen 127.0.0.1:0 --addr-file addr.txt   any free port, written to addr.txt
   server --max-queued-files 200 --spool-max 50000000000 --min-free-disk 5000000000
                                             at most 200 files per recipient, 50 GB in all, keep 5 GB free

SIGINT or SIGTERM stops it gracefully: sessions are told, queues drain (at most 10 s).`,
		HideHelpCommand: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: ":18443", Usage: "TCP `ADDRESS` to listen on", EnvVars: []string{"SSLM_LISTEN"}},
			&cli.StringFlag{Name: "addr-file", Usage: "write the address actually listened on to `FILE` once ready (for scripts)"},
			&cli.StringFlag{Name: "users", Value: "users.csv", Usage: "account `FILE` (CSV)", EnvVars: []string{"SSLM_USERS"}},
			&cli.StringFlag{Name: "cert", Value: "certs/" + pki.ServerCertFile, Usage: "server certificate `FILE` (PEM)", EnvVars: []string{"SSLM_CERT"}},
			&cli.StringFlag{Name: "key", Value: "certs/" + pki.ServerKeyFile, Usage: "server private key `FILE` (PEM)", EnvVars: []string{"SSLM_KEY"}},
			&cli.StringFlag{Name: "spool", Value: "spool", Usage: "`DIR` where uploaded files wait for their recipients", EnvVars: []string{"SSLM_SPOOL"}},
			&cli.Int64Flag{Name: "max-file-size", Value: spool.DefaultMaxFileSize, Usage: "largest upload in `BYTES`"},
			&cli.Int64Flag{Name: "quota", Value: spool.DefaultQuota, Usage: "`BYTES` queued for one recipient at most"},
			&cli.IntFlag{Name: "max-queued-files", Value: spool.DefaultMaxQueuedFiles, Usage: "at most `N` files queued for one recipient, uploads in progress included (0: no limit)"},
			&cli.Int64Flag{Name: "spool-max", Value: 0, Usage: "`BYTES` the whole spool may hold, all recipients together (0: no limit)"},
			&cli.Int64Flag{Name: "min-free-disk", Value: spool.DefaultMinFreeDisk, Usage: "`BYTES` of disk space uploads must leave free on the spool's file system (0: no floor)"},
			// Offline direct messages.
			&cli.StringFlag{Name: "offline", Value: "offline", Usage: "`DIR` where direct messages to offline users wait for them (stored in the clear)", EnvVars: []string{"SSLM_OFFLINE"}},
			&cli.IntFlag{Name: "max-offline-msgs", Value: offline.DefaultMaxPerRecipient, Usage: "at most `N` undelivered messages stored for one recipient (0: no limit)"},
			&cli.Int64Flag{Name: "offline-max", Value: offline.DefaultMaxTotalBytes, Usage: "`BYTES` the stored offline messages may take together (0: no limit)"},
			&cli.IntFlag{Name: "hash-cost", Value: accounts.DefaultCost, Usage: "bcrypt `COST` for new passwords (4 to 31)"},
			&cli.DurationFlag{Name: "check-interval", Value: relay.DefaultCheckInterval, Usage: "how often every session gets a CHECK"},
			&cli.DurationFlag{Name: "login-timeout", Value: relay.DefaultLoginTimeout, Usage: "time allowed from connect to log-in"},
			&cli.DurationFlag{Name: "write-timeout", Value: relay.DefaultWriteTimeout, Usage: "a peer that accepts no data for this long is dropped"},
			&cli.IntFlag{Name: "max-conns", Value: relay.DefaultMaxConns, Usage: "most open connections"},
			&cli.IntFlag{Name: "max-sessions-per-user", Value: relay.DefaultMaxSessionsPerUser, Usage: "most sessions one user may have at once; a log-in at the cap ends the user's oldest session"},
			&cli.IntFlag{Name: "max-conns-per-ip", Value: relay.DefaultMaxConnsPerIP, Usage: "most open connections from one address (IPv4 address or IPv6 /64); 0 = no limit"},
			&cli.IntFlag{Name: "max-handshakes-per-ip", Value: relay.DefaultMaxHandshakesPerIP, Usage: "most TLS handshakes under way from one address; more wait up to 2s for one to end; 0 = no limit"},
			&cli.DurationFlag{Name: "first-byte-timeout", Value: relay.DefaultFirstByteTimeout, Usage: "a new connection that sends nothing for this long is closed"},
			&cli.IntFlag{Name: "max-failed-logins", Value: relay.DefaultMaxFailedLogins, Usage: "failed log-ins one address may have at once; then one more per --failed-login-window/N; 0 = no limit"},
			&cli.DurationFlag{Name: "failed-login-window", Value: relay.DefaultFailedLoginWindow, Usage: "the window of --max-failed-logins"},
			&cli.DurationFlag{Name: "login-backoff-max", Value: relay.DefaultLoginBackoffMax, Usage: "longest wait one account's failed log-ins impose (each failure after the third doubles it, from 1s)"},
			&cli.IntFlag{Name: "max-signups-per-ip", Value: relay.DefaultMaxSignUpsPerIP, Usage: "accounts one address may create per hour (a burst of N, then one per hour/N); 0 = no limit"},
			&cli.StringFlag{Name: "signup", Value: "open", Usage: "open: anyone may sign up with PUT; closed: PUT is refused", EnvVars: []string{"SSLM_SIGNUP"}},
			&cli.BoolFlag{Name: "allow-expired-cert", Usage: "start even if the server certificate has expired or is not yet valid"},
			&cli.IntFlag{Name: "max-queue", Value: relay.DefaultMaxQueueBytes, Usage: "`BYTES` queued for one client before it is dropped as too slow"},
			&cli.StringFlag{Name: "pprof", Usage: "serve Go profiling on this loopback `ADDRESS` (e.g. 127.0.0.1:6060)"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
			&cli.BoolFlag{Name: "log-json", Usage: "log JSON lines instead of text"},
		},
		Action: run,
	}
}

func run(cc *cli.Context) error {
	logger, err := newLogger(cc.String("log-level"), cc.Bool("log-json"))
	if err != nil {
		return err
	}
	if a := cc.String("pprof"); a != "" {
		if err := checkLoopback(a); err != nil {
			return fmt.Errorf("--pprof: %w", err)
		}
	}
	for _, name := range []string{"max-queued-files", "spool-max", "min-free-disk", "max-offline-msgs", "offline-max"} {
		if cc.Int64(name) < 0 {
			return fmt.Errorf("--%s %d: want 0 (no limit) or more", name, cc.Int64(name))
		}
	}
	signUpClosed, err := parseSignUp(cc.String("signup"))
	if err != nil {
		return err
	}
	for _, name := range []string{"max-conns-per-ip", "max-handshakes-per-ip", "max-failed-logins", "max-signups-per-ip"} {
		if cc.Int(name) < 0 {
			return fmt.Errorf("--%s %d: want 0 (no limit) or more", name, cc.Int(name))
		}
	}
	raiseFileLimit(logger, cc.Int("max-conns"))
	tlsConfig, err := pki.ServerTLSConfig(cc.String("cert"), cc.String("key"))
	if err != nil {
		return fmt.Errorf("%w (run gencert first, or pass --cert and --key)", err)
	}
	acc, err := accounts.Open(cc.String("users"), accounts.Options{Cost: cc.Int("hash-cost"), Logger: logger})
	if err != nil {
		return err
	}
	defer acc.Close()
	sp, err := spool.Open(cc.String("spool"), spool.Options{
		MaxFileSize:    cc.Int64("max-file-size"),
		Quota:          cc.Int64("quota"),
		MaxQueuedFiles: zeroIsNoLimit(cc.Int("max-queued-files")),
		MaxTotalBytes:  cc.Int64("spool-max"),
		MinFreeDisk:    zeroIsNoLimit(cc.Int64("min-free-disk")),
		Logger:         logger,
	})
	if err != nil {
		return err
	}
	off, err := offline.Open(cc.String("offline"), offline.Options{
		MaxPerRecipient: offlineLimit(cc.Int("max-offline-msgs")),
		MaxTotalBytes:   offlineLimit(cc.Int64("offline-max")),
		Logger:          logger,
	})
	if err != nil {
		return err
	}
	srv, err := relay.New(relay.Config{
		TLSConfig:     tlsConfig,
		Accounts:      acc,
		Spool:         sp,
		Offline:       off,
		Logger:        logger,
		CheckInterval: cc.Duration("check-interval"),
		LoginTimeout:  cc.Duration("login-timeout"),
		WriteTimeout:  cc.Duration("write-timeout"),
		MaxConns:      cc.Int("max-conns"),
		MaxQueueBytes: cc.Int("max-queue"),

		MaxSessionsPerUser: cc.Int("max-sessions-per-user"),

		MaxConnsPerIP:      limit(cc.Int("max-conns-per-ip")),
		MaxHandshakesPerIP: limit(cc.Int("max-handshakes-per-ip")),
		FirstByteTimeout:   cc.Duration("first-byte-timeout"),
		MaxFailedLogins:    limit(cc.Int("max-failed-logins")),
		FailedLoginWindow:  cc.Duration("failed-login-window"),
		LoginBackoffMax:    cc.Duration("login-backoff-max"),
		MaxSignUpsPerIP:    limit(cc.Int("max-signups-per-ip")),
		SignUpClosed:       signUpClosed,
		AllowExpiredCert:   cc.Bool("allow-expired-cert"),
	})
	if errors.Is(err, pki.ErrCertExpired) || errors.Is(err, pki.ErrCertNotYetValid) {
		return fmt.Errorf("%w; --allow-expired-cert starts anyway", err)
	}
	if err != nil {
		return err
	}
	l, err := relay.Listen(cc.String("listen"))
	if err != nil {
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

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	select {
	case err := <-served:
		srv.Close()
		return err
	case <-ctx.Done():
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

// zeroIsNoLimit maps a flag's 0 ("no limit") to spool.NoLimit; the spool's
// Options read 0 as "the default".
func zeroIsNoLimit[T int | int64](v T) T {
	if v == 0 {
		return spool.NoLimit
	}
	return v
}

// offlineLimit maps a flag's 0 ("no limit") to offline.NoLimit.
func offlineLimit[T int | int64](v T) T {
	if v == 0 {
		return offline.NoLimit
	}
	return v
}

// limit turns a flag's "0 = no limit" into the relay's NoLimit.
func limit(n int) int {
	if n == 0 {
		return relay.NoLimit
	}
	return n
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

func newLogger(level string, json bool) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	if json {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
}
