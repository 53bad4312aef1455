// Command gencert creates the certificates SSL-Messager needs: a local
// certificate authority (ca.pem, ca.key) and a server certificate signed by
// it (server.pem, server.key). Run it once before starting the server; give
// ca.pem to users for "client --ca", keep ca.key private.
package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"sslmessager/internal/cliflags"
	"sslmessager/internal/pki"
)

func main() {
	app := newApp()
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(cliflags.ExitStatus(err))
	}
}

const usageText = `gencert [--dir DIR] [--host HOSTS] [--force] [--ca-days N] [--server-days N]

Examples:
   gencert
      Create certs/ca.pem, certs/ca.key, certs/server.pem and certs/server.key
      for localhost, 127.0.0.1 and ::1 (local testing).

   gencert --host chat.example.org,203.0.113.7
      Issue the server certificate for a real server name and address. If
      certs/ca.pem and certs/ca.key already exist and the server files do not,
      the existing CA is reused, so clients keep their ca.pem.

   gencert --force
      Replace all four files, including the CA. Every user then needs the
      new ca.pem.`

const description = `Which file goes where:
   ca.pem      the CA certificate. Give it to users: "client --ca ca.pem".
               Clients trust only this CA, never the system roots.
   ca.key      the CA private key. Keep it private; it is only needed to
               issue new server certificates. Whoever has it can impersonate
               your server.
   server.pem  the server certificate, and
   server.key  its private key: both go to the server.

Existing files are never overwritten unless --force is given. To issue a
new server certificate from the existing CA (new host names, renewal),
delete server.pem and server.key and run gencert again.`

// newApp builds the command-line application; tests run it directly.
func newApp() *cli.App {
	app := &cli.App{
		Name:            "gencert",
		Usage:           "create the local CA and server certificate for SSL-Messager",
		UsageText:       usageText,
		Description:     description,
		HideHelpCommand: true,
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name:    "dir",
				Value:   "certs",
				Usage:   "`DIR` to write the certificates and keys to",
				EnvVars: []string{"SSLM_CERT_DIR"},
			},
			&cli.StringFlag{
				Name:    "host",
				Value:   pki.DefaultHosts,
				Usage:   "comma-separated DNS names and IP addresses (`HOSTS`) the server certificate is valid for",
				EnvVars: []string{"SSLM_CERT_HOSTS"},
			},
			&cli.BoolFlag{
				Name:  "force",
				Usage: "overwrite existing files, creating a new CA as well",
			},
			&cli.IntFlag{
				Name:  "ca-days",
				Value: pki.DefaultCADays,
				Usage: "CA certificate validity in `DAYS` (1 or more)",
			},
			&cli.IntFlag{
				Name:  "server-days",
				Value: pki.DefaultServerDays,
				Usage: "server certificate validity in `DAYS` (1 or more; never beyond the CA's expiry)",
			},
		},
		Action: run,
	}
	cliflags.Setup(app)
	return app
}

func run(c *cli.Context) error {
	if c.Args().Present() {
		return cliflags.Usagef(c.App, "unexpected argument %q; give host names with --host a,b", c.Args().First())
	}
	for _, name := range []string{"ca-days", "server-days"} {
		if d := c.Int(name); d <= 0 {
			return cliflags.Usagef(c.App, "--%s %d: want 1 or more days", name, d)
		}
	}
	dir := c.String("dir")
	var hosts []string
	for _, h := range strings.Split(c.String("host"), ",") {
		hosts = append(hosts, strings.TrimSpace(h))
	}
	res, err := pki.Generate(pki.GenerateOptions{
		Dir:        dir,
		Hosts:      hosts,
		Force:      c.Bool("force"),
		CADays:     c.Int("ca-days"),
		ServerDays: c.Int("server-days"),
	})
	if errors.Is(err, pki.ErrExists) {
		hint := "run with --force to replace all four files (users will then need the new ca.pem)"
		if fileExists(filepath.Join(dir, pki.CAFile)) && fileExists(filepath.Join(dir, pki.CAKeyFile)) {
			hint += ", or delete " + filepath.Join(dir, pki.ServerCertFile) + " and " +
				filepath.Join(dir, pki.ServerKeyFile) + " to issue a new server certificate from the existing CA"
		}
		return fmt.Errorf("%w; %s", err, hint)
	}
	if err != nil {
		return err
	}
	report(c.App.Writer, dir, hosts, res)
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func report(w io.Writer, dir string, hosts []string, res pki.Generated) {
	caCert := filepath.Join(dir, pki.CAFile)
	caKey := filepath.Join(dir, pki.CAKeyFile)
	srvCert := filepath.Join(dir, pki.ServerCertFile)
	srvKey := filepath.Join(dir, pki.ServerKeyFile)
	line := func(label, text string) { fmt.Fprintf(w, "  %-13s %s\n", label+":", text) }

	if res.ReusedCA {
		fmt.Fprintln(w, "Using the existing local CA (not modified)")
		line("certificate", caCert+"  (users already have it: client --ca "+caCert+")")
	} else {
		fmt.Fprintln(w, `Created a new local CA "SSL-Messager local CA"`)
		line("certificate", caCert+"  (give it to users: client --ca "+caCert+")")
		line("private key", caKey+"  (keep it private, never share it)")
	}
	line("fingerprint", res.CAFingerprint)
	line("expires", expiry(res.CANotAfter))
	fmt.Fprintln(w)

	fmt.Fprintln(w, "Created a new server certificate valid for:")
	for _, h := range hosts {
		fmt.Fprintf(w, "  - %q\n", h)
	}
	line("certificate", srvCert+"  (install on the server)")
	line("private key", srvKey+"  (install on the server)")
	line("fingerprint", res.ServerFingerprint)
	line("expires", expiry(res.ServerNotAfter))
	fmt.Fprintln(w)

	fmt.Fprintf(w, "The server uses %s and %s; users need only %s.\n", srvCert, srvKey, caCert)
}

func expiry(t time.Time) string {
	days := int(math.Round(time.Until(t).Hours() / 24))
	return fmt.Sprintf("%s (in %d days)", t.UTC().Format("2 January 2006"), days)
}
