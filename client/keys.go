package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"sslmessager/internal/cliflags"
	"sslmessager/internal/e2e/keystore"
	"sslmessager/internal/messenger"
)

// End-to-end keys in the client binary: the --e2e policy, the key
// passphrase, opening the key store after log-in, and the keys export and
// keys import commands.

// e2eFlags are the global flags of end-to-end encryption.
func e2eFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "e2e", Value: "prefer", Usage: "end-to-end encryption `POLICY`: prefer (encrypt to every user with a key, plaintext tagged [plain] to the others), require (never plaintext), off (as the original client)", EnvVars: []string{"SSLM_E2E"}},
		&cli.StringFlag{Name: "key-passphrase-file", Usage: "read the passphrase of the end-to-end key store from the first line of `FILE` (or set SSLM_KEY_PASSPHRASE; default: the log-in password)", EnvVars: []string{"SSLM_KEY_PASSPHRASE_FILE"}},
		&cli.BoolFlag{Name: "key-passphrase", Usage: "ask for a passphrase of the end-to-end key store other than the log-in password (without echo)"},
	}
}

// keysCommand is `client keys export FILE` and `client keys import FILE`.
func keysCommand() *cli.Command {
	return &cli.Command{
		Name:  "keys",
		Usage: "move your end-to-end identity to another device: keys export FILE here, keys import FILE there",
		Subcommands: []*cli.Command{{
			Name:      "export",
			Usage:     "write your end-to-end identity and state for this server and user to a new FILE, encrypted to an export passphrase (asked twice, or SSLM_EXPORT_PASSPHRASE)",
			ArgsUsage: "FILE",
			Action:    runKeysExport,
		}, {
			Name:      "import",
			Usage:     "install the identity in FILE (from keys export) for this server and user; asks the export passphrase (or SSLM_EXPORT_PASSPHRASE)",
			ArgsUsage: "FILE",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "force", Usage: "replace the identity this device has (contacts will see a key change)"},
			},
			Action: runKeysImport,
		}},
	}
}

// e2ePolicy parses --e2e.
func e2ePolicy(cc *cli.Context) (messenger.E2EPolicy, error) {
	p, err := messenger.ParseE2EPolicy(cc.String("e2e"))
	if err != nil {
		return 0, cliflags.Usagef(cc.App, "%v", err)
	}
	return p, nil
}

// keyPassphrase is the key store's passphrase: --key-passphrase-file,
// SSLM_KEY_PASSPHRASE, asked with --key-passphrase, else the log-in
// password.
func keyPassphrase(cc *cli.Context, con *console, password string) (string, error) {
	file, env := cc.String("key-passphrase-file"), os.Getenv("SSLM_KEY_PASSPHRASE")
	switch {
	case file != "" && env != "":
		return "", errors.New("both --key-passphrase-file (or SSLM_KEY_PASSPHRASE_FILE) and SSLM_KEY_PASSPHRASE are set: use one")
	case file != "":
		p, err := readPasswordFile(file)
		if err != nil {
			return "", fmt.Errorf("key passphrase: %w", err)
		}
		return p, nil
	case env != "":
		return cleanPassword(env), nil
	case cc.Bool("key-passphrase"):
		if !con.stdinTTY {
			return "", errors.New("--key-passphrase asks on a terminal: with stdin from a pipe use --key-passphrase-file or SSLM_KEY_PASSPHRASE")
		}
		p, err := con.askPassword("key passphrase: ")
		if err == nil && p == "" {
			err = errors.New("no key passphrase given")
		}
		return p, err
	}
	return password, nil
}

// openKeys opens (or creates) the key store for conn's user and server,
// unless --e2e=off or the server has no key directory (nil, nil). A
// passphrase that does not open it is an error that says what to do.
func openKeys(cc *cli.Context, con *console, conn *messenger.Conn, password string) (*messenger.Keys, messenger.E2EPolicy, error) {
	policy, err := e2ePolicy(cc)
	if err != nil || policy == messenger.E2EOff || !conn.KeyDirectory() {
		return nil, policy, err
	}
	cfg := stateDir(cc.String("config-dir"))
	if cfg == "" {
		fmt.Fprintln(con.errw, "no configuration directory (--config-dir): no end-to-end keys, messages go in plaintext")
		return nil, policy, nil
	}
	pass, err := keyPassphrase(cc, con, password)
	if err != nil {
		return nil, policy, err
	}
	dir := messenger.KeyStoreDir(cfg, conn.ServerCertSHA256(), conn.User())
	k, err := messenger.OpenKeys(dir, conn.User(), pass, true)
	if errors.Is(err, messenger.ErrKeyPassphrase) {
		return nil, policy, fmt.Errorf("the end-to-end key store %s does not open with %s (changed your password? give the old one with --key-passphrase; or --e2e=off)",
			dir, map[bool]string{true: "that key passphrase", false: "your log-in password"}[pass != password])
	}
	if err != nil {
		return nil, policy, fmt.Errorf("end-to-end keys: %w", err)
	}
	return k, policy, nil
}

// keysTarget connects (the TLS handshake only: the server's certificate
// names the key store) and resolves the key store's directory and
// passphrase.
func keysTarget(cc *cli.Context, con *console) (dir, user, pass string, err error) {
	creds, err := resolveCredentials(cc, con)
	if err != nil {
		return "", "", "", err
	}
	cfg := stateDir(cc.String("config-dir"))
	if cfg == "" {
		return "", "", "", errors.New("no configuration directory: use --config-dir")
	}
	conn, err := messenger.Dial(cc.Context, cc.String("server"), cc.String("ca"))
	if err != nil {
		return "", "", "", err
	}
	sum := conn.ServerCertSHA256()
	conn.Close()
	pass, err = keyPassphrase(cc, con, creds.pass)
	return messenger.KeyStoreDir(cfg, sum, creds.user), creds.user, pass, err
}

// exportPassphrase is SSLM_EXPORT_PASSPHRASE, else asked (twice when
// confirm) on a terminal.
func exportPassphrase(con *console, confirm bool) (string, error) {
	if p := os.Getenv("SSLM_EXPORT_PASSPHRASE"); p != "" {
		return cleanPassword(p), nil
	}
	if !con.stdinTTY {
		return "", errors.New("no export passphrase: set SSLM_EXPORT_PASSPHRASE, or run on a terminal")
	}
	p, err := con.askPassword("export passphrase: ")
	if err != nil {
		return "", err
	}
	if p == "" {
		return "", errors.New("no export passphrase given")
	}
	if confirm {
		again, err := con.askPassword("export passphrase again: ")
		if err != nil {
			return "", err
		}
		if again != p {
			return "", errors.New("the export passphrases do not match")
		}
	}
	return p, nil
}

func oneFileArg(cc *cli.Context) (string, error) {
	if cc.NArg() != 1 {
		return "", cliflags.Usagef(cc.App, "keys %s: give one FILE", cc.Command.Name)
	}
	return cc.Args().First(), nil
}

// runKeysExport is `client keys export FILE`.
func runKeysExport(cc *cli.Context) error {
	path, err := oneFileArg(cc)
	if err != nil {
		return err
	}
	con := newConsole(cc.App)
	dir, _, pass, err := keysTarget(cc, con)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("keys export: no end-to-end identity for this user and server in %s (log in once to make one)", dir)
	}
	xp, err := exportPassphrase(con, true)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("keys export: %w", err)
	}
	err = messenger.ExportKeys(dir, pass, f, xp)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		if errors.Is(err, messenger.ErrKeyPassphrase) {
			return fmt.Errorf("keys export: the key store %s does not open with that passphrase", dir)
		}
		return fmt.Errorf("keys export: %w", err)
	}
	fmt.Fprintf(con.out, "exported the end-to-end identity to %s; import it with: client keys import %s (keep the file secret and delete it afterwards)\n", path, path)
	return nil
}

// runKeysImport is `client keys import FILE`.
func runKeysImport(cc *cli.Context) error {
	path, err := oneFileArg(cc)
	if err != nil {
		return err
	}
	con := newConsole(cc.App)
	dir, user, pass, err := keysTarget(cc, con)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("keys import: %w", err)
	}
	defer f.Close()
	xp, err := exportPassphrase(con, false)
	if err != nil {
		return err
	}
	if err := messenger.ImportKeys(f, xp, dir, user, pass, cc.Bool("force")); err != nil {
		switch {
		case errors.Is(err, keystore.ErrExists):
			return fmt.Errorf("keys import: %s already holds an identity; --force replaces it (your contacts then see a key change)", dir)
		case errors.Is(err, keystore.ErrPassphrase):
			return errors.New("keys import: wrong export passphrase")
		}
		return fmt.Errorf("keys import: %w", err)
	}
	fmt.Fprintf(con.out, "imported the end-to-end identity into %s\n", dir)
	return nil
}
