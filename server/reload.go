package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/urfave/cli/v2"

	"sslmessager/internal/accounts"
	"sslmessager/internal/cliflags"
	"sslmessager/internal/pki"
	"sslmessager/internal/relay"
)

// argsKey is the cli.App.Metadata key of the command line the server was
// started with; SIGHUP parses it again.
const argsKey = "args"

// reloadableFlags are the settings SIGHUP applies to the running server
// (see relay's applyReloadable); a change to any other flag is logged as
// needing a restart. cert and key are read again on every SIGHUP, even
// when their paths stay the same, for a renewed certificate.
var reloadableFlags = map[string]bool{
	"cert": true, "key": true, "allow-expired-cert": true,
	"max-conns": true, "max-conns-per-ip": true, "max-handshakes-per-ip": true,
	"first-byte-timeout": true, "write-timeout": true, "login-timeout": true,
	"max-failed-logins": true, "failed-login-window": true, "login-backoff-max": true,
	"max-signups-per-ip": true, "signup": true,
	"max-sessions-per-user": true, "max-queue": true,
	"log-level": true,
}

// reloader re-reads one file on SIGHUP. reload applies all of it or
// nothing, and says why not.
type reloader struct {
	name   string
	reload func() error
}

// reloadAll runs every reloader and logs each failure; it reports whether
// all succeeded.
func reloadAll(log *slog.Logger, reloaders []reloader) bool {
	log.Info("SIGHUP: reloading")
	ok := true
	for _, r := range reloaders {
		if err := r.reload(); err != nil {
			log.Error("reload failed: the running "+r.name+" is unchanged", "err", oneLine(err))
			ok = false
		}
	}
	log.Info("reload done", "ok", ok)
	return ok
}

// configReloader applies SIGHUP to the settings: it parses the command
// line again (so the environment and the --config file are read again,
// with the same precedence as at start), checks the result and the
// certificate, and hands the reloadable settings to the relay.
type configReloader struct {
	args   []string
	srv    *relay.Server
	level  *slog.LevelVar
	log    *slog.Logger
	values map[string]string // every flag's value in force
	cert   *x509.Certificate // the certificate in force
}

func (r *configReloader) reload() error {
	if r.args == nil {
		return errors.New("no command line to read again")
	}
	cc, err := parseAgain(r.args)
	if err != nil {
		return err
	}
	cfg, err := liveConfig(cc)
	if err != nil {
		return err
	}
	if err := r.srv.Reload(cfg); err != nil {
		return err
	}
	level, _ := parseLevel(cc.String("log-level")) // checked by liveConfig
	r.level.Set(level)

	values := flagValues(cc)
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		old, now := r.values[name], values[name]
		switch {
		case old == now:
		case reloadableFlags[name]:
			r.log.Info("setting changed", "setting", name, "old", old, "new", now)
			r.values[name] = now
		default:
			r.log.Warn("setting changed but needs a restart: not applied", "setting", name, "running", old, "new", now)
		}
	}
	if leaf := r.srv.Certificate(); leaf != nil && (r.cert == nil || !leaf.Equal(r.cert)) {
		r.log.Info("certificate changed: new connections get it", "fingerprint", pki.Fingerprint(leaf),
			"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
		r.cert = leaf
	}
	return nil
}

// parseAgain parses args with the server's flags and configuration file,
// as at start, without running the server.
func parseAgain(args []string) (*cli.Context, error) {
	app := newApp()
	app.Writer, app.ErrWriter = io.Discard, io.Discard
	var got *cli.Context
	app.Action = func(cc *cli.Context) error { got = cc; return nil }
	if err := app.Run(args); err != nil {
		return nil, err
	}
	if got == nil {
		return nil, fmt.Errorf("command line %q does not run the server", args)
	}
	return got, nil
}

// flagValues returns every flag's value in cc as text, by long name.
func flagValues(cc *cli.Context) map[string]string {
	out := make(map[string]string)
	for _, f := range cc.App.Flags {
		name := f.Names()[0]
		out[name] = fmt.Sprint(cc.Value(name))
	}
	return out
}

// reloadAccounts re-reads users.csv and ends the sessions of the accounts
// it no longer holds.
func reloadAccounts(acc *accounts.Store, srv *relay.Server, log *slog.Logger) error {
	added, removed, changed, err := acc.Reload()
	if err != nil {
		return err
	}
	for _, name := range removed {
		n := srv.EndUser(name, "account removed")
		// Whoever signs up with the name next inherits nothing.
		files, err := srv.DropUserData(name)
		if err != nil {
			log.Error("account removed from users.csv: its queued files or stored messages not all removed", "user", name, "err", err)
		}
		log.Info("account removed from users.csv", "user", name, "sessions_ended", n, "files_removed", files)
	}
	for _, name := range added {
		log.Info("account added from users.csv", "user", name)
	}
	for _, name := range changed {
		log.Info("account changed in users.csv", "user", name)
	}
	return nil
}

// markReloadable ends the usage of each flag in reloadableFlags with
// "[reloadable]", for --help.
func markReloadable(flags []cli.Flag) []cli.Flag {
	for _, f := range flags {
		if !reloadableFlags[f.Names()[0]] {
			continue
		}
		switch f := f.(type) {
		case *cli.StringFlag:
			f.Usage += " [reloadable]"
		case *cli.IntFlag:
			f.Usage += " [reloadable]"
		case *cli.BoolFlag:
			f.Usage += " [reloadable]"
		case *cli.DurationFlag:
			f.Usage += " [reloadable]"
		case *cliflags.SizeFlag:
			f.Usage += " [reloadable]"
		}
	}
	return flags
}
