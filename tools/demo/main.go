// Command demo is the main job behind `make demo`: it starts a real server
// on a free loopback port with a fresh account file, spool and offline
// message store, drives real client processes through a scripted
// conversation, a file transfer and a message delivered at log-in to a
// user who was offline when it was sent, prints the transcript, stops the
// server and exits non-zero unless every expected line was seen and the
// file arrived intact.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"sslmessager/internal/cliflags"
)

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(cliflags.ExitStatus(err))
	}
}

func newApp() *cli.App {
	app := &cli.App{
		Name:  "demo",
		Usage: "run a server and two scripted clients, and check what they see",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "bin", Value: "bin", Usage: "`DIR` holding server, client and gencert"},
			&cli.StringFlag{Name: "dir", Value: ".demo", Usage: "scratch `DIR` (certificates are kept, accounts and spool start empty)"},
			&cli.DurationFlag{Name: "step-timeout", Value: 20 * time.Second, Usage: "how long (a `DURATION`) one expected line may take"},
		},
		Action: func(cc *cli.Context) error {
			if err := cliflags.NoArgs(cc); err != nil {
				return err
			}
			if cc.Duration("step-timeout") <= 0 {
				return cliflags.Usagef(cc.App, "--step-timeout %s: want a duration of more than 0", cc.Duration("step-timeout"))
			}
			d := &demo{bin: cc.String("bin"), dir: cc.String("dir"), timeout: cc.Duration("step-timeout"), out: cc.App.Writer}
			err := d.run()
			d.cleanup()
			if err != nil {
				return fmt.Errorf("demo failed: %w (server log: %s)", err, filepath.Join(d.dir, "server.log"))
			}
			fmt.Fprintf(d.out, "demo passed: %d expected lines seen\n", d.seen)
			return nil
		},
	}
	cliflags.Setup(app)
	return app
}

type demo struct {
	bin, dir string
	timeout  time.Duration
	out      io.Writer
	outMu    sync.Mutex
	server   *exec.Cmd
	clients  []*client
	seen     int
}

func (d *demo) say(format string, args ...any) {
	d.outMu.Lock()
	defer d.outMu.Unlock()
	fmt.Fprintf(d.out, format+"\n", args...)
}

func (d *demo) run() error {
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return err
	}
	certs := filepath.Join(d.dir, "certs")
	if _, err := os.Stat(filepath.Join(certs, "server.pem")); err != nil {
		d.say("== generating certificates in %s", certs)
		cmd := exec.Command(filepath.Join(d.bin, "gencert"), "--dir", certs, "--host", "localhost,127.0.0.1")
		cmd.Stdout, cmd.Stderr = d.out, d.out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("gencert: %w", err)
		}
	}
	for _, p := range []string{"users.csv", "bans.csv", "admin.sock", "spool", "offline", "keys", "config-alice", "config-bob", "config-carol", "downloads-alice", "downloads-bob", "addr", "hello.txt"} {
		os.RemoveAll(filepath.Join(d.dir, p))
	}

	addrFile := filepath.Join(d.dir, "addr")
	logFile, err := os.Create(filepath.Join(d.dir, "server.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	d.server = exec.Command(filepath.Join(d.bin, "server"),
		"--listen", "127.0.0.1:0", "--addr-file", addrFile,
		"--users", filepath.Join(d.dir, "users.csv"), "--spool", filepath.Join(d.dir, "spool"),
		"--offline", filepath.Join(d.dir, "offline"), "--key-dir", filepath.Join(d.dir, "keys"),
		"--cert", filepath.Join(certs, "server.pem"), "--key", filepath.Join(certs, "server.key"))
	d.server.Stdout, d.server.Stderr = logFile, logFile
	if err := d.server.Start(); err != nil {
		return fmt.Errorf("start server: %w", err)
	}
	addr, err := waitForFile(addrFile, 10*time.Second)
	if err != nil {
		return fmt.Errorf("server did not start: %w", err)
	}
	d.say("== server listening on %s (users %s, spool %s)", addr, filepath.Join(d.dir, "users.csv"), filepath.Join(d.dir, "spool"))

	file := filepath.Join(d.dir, "hello.txt")
	if err := os.WriteFile(file, demoFile(), 0o600); err != nil {
		return err
	}
	// carol signs up and leaves at once: she is offline when alice
	// writes to her later.
	carol, err := d.startClient("carol", "alice", addr, certs, true)
	if err != nil {
		return err
	}
	if err := carol.expect("signed up and logged in as carol", d.timeout); err != nil {
		return err
	}
	if err := d.step(carol, ":quit:", nil, ""); err != nil {
		return err
	}
	if err := carol.wait(d.timeout); err != nil {
		return fmt.Errorf("carol: %w", err)
	}
	d.say("== carol signed up and left")
	alice, err := d.startClient("alice", "bob", addr, certs, true)
	if err != nil {
		return err
	}
	bob, err := d.startClient("bob", "alice", addr, certs, true)
	if err != nil {
		return err
	}
	steps := []func() error{
		// Both are logged in once bob's online list shows both.
		func() error { return d.until(bob, ":online:", "online: alice bob") },
		func() error { return d.step(alice, "hello bob, this is alice", bob, "alice: hello bob, this is alice") },
		func() error {
			return d.step(bob, "hi alice! got your message", alice, "bob: hi alice! got your message")
		},
		func() error { return d.step(alice, ":toggle:", alice, "group chat on") },
		func() error { return d.step(bob, ":toggle:", bob, "group chat on") },
		// The server has bob's toggle once it answered a later query of his.
		func() error { return d.step(bob, ":online:", bob, "online: alice bob") },
		func() error { return d.step(alice, "hello group", bob, "[group] alice: hello group") },
		func() error { return d.step(bob, "group hello back", alice, "[group] bob: group hello back") },
		func() error { return d.step(alice, ":status:", alice, "group") },
		// A file from alice to bob, through bob's queue on the server.
		func() error { return d.step(alice, ":upload: "+file, alice, "upload complete: hello.txt to bob") },
		func() error { return d.step(bob, ":download:", bob, "saved hello.txt from alice") },
		func() error { return d.sameFile(file, filepath.Join(d.dir, "downloads-bob", "hello.txt")) },
		// A direct message to carol, who is offline: the server keeps it
		// and carol sees it, marked with the time it was sent, when she
		// logs in.
		func() error { return d.step(alice, ":toggle:", alice, "group chat off") },
		func() error { return d.step(alice, ":new_target: carol", alice, "target: carol") },
		func() error { return d.step(alice, "see you tomorrow, carol", alice, "queued for carol (offline)") },
		func() error {
			if carol, err = d.startClient("carol", "alice", addr, certs, false); err != nil {
				return err
			}
			if err := carol.expect("] alice: see you tomorrow, carol", d.timeout); err != nil {
				return err
			}
			d.seen++
			return d.step(carol, ":quit:", nil, "")
		},
		// The operator, through the admin socket beside users.csv: who is
		// online, then a direct message from admin to bob.
		func() error { return d.admin([]string{"online"}, "alice ") },
		func() error {
			if err := d.admin([]string{"msg", "bob", "the server restarts at noon"}, "ok"); err != nil {
				return err
			}
			if err := bob.expect("admin: the server restarts at noon", d.timeout); err != nil {
				return err
			}
			d.seen++
			return nil
		},
		func() error { return d.step(alice, ":quit:", nil, "") },
		func() error { return d.step(bob, ":quit:", nil, "") },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	for _, c := range []*client{alice, bob, carol} {
		if err := c.wait(d.timeout); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		d.say("== %s quit cleanly", c.name)
	}
	d.server.Process.Signal(syscall.SIGTERM)
	if err := waitCmd(d.server, 15*time.Second); err != nil {
		return fmt.Errorf("server did not stop cleanly: %w", err)
	}
	d.server = nil
	d.say("== server stopped")
	return nil
}

// admin runs "server admin ARGS..." against the demo's server, prints
// its answer and checks that it succeeded and that a line of it holds
// want.
func (d *demo) admin(args []string, want string) error {
	d.say("admin < %s", strings.Join(args, " "))
	cmd := exec.Command(filepath.Join(d.bin, "server"), append([]string{"admin", "--users", filepath.Join(d.dir, "users.csv")}, args...)...)
	out, err := cmd.CombinedOutput()
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		d.say("admin > %s", l)
	}
	if err != nil {
		return fmt.Errorf("server admin %s: %w", strings.Join(args, " "), err)
	}
	if !strings.Contains(string(out), want) {
		return fmt.Errorf("server admin %s: no line holds %q", strings.Join(args, " "), want)
	}
	d.seen++
	return nil
}

// step types line into from's input and waits until to prints a line
// containing want.
func (d *demo) step(from *client, line string, to *client, want string) error {
	d.say("%-5s < %s", from.name, line)
	if err := from.send(line); err != nil {
		return err
	}
	if to == nil {
		return nil
	}
	if err := to.expect(want, d.timeout); err != nil {
		return err
	}
	d.seen++
	return nil
}

// until repeats line until from prints want (for waiting on log-ins).
func (d *demo) until(c *client, line, want string) error {
	d.say("%-5s < %s (until it shows %q)", c.name, line, want)
	deadline := time.Now().Add(d.timeout)
	for time.Now().Before(deadline) {
		if err := c.send(line); err != nil {
			return err
		}
		if c.expect(want, 500*time.Millisecond) == nil {
			d.seen++
			return nil
		}
	}
	return fmt.Errorf("%s never printed %q", c.name, want)
}

// demoFile is the file the demo sends: text, every byte value, and the
// protocol's own end markers, which must arrive as plain data.
func demoFile() []byte {
	b := []byte("SSL-Messager demo file\nENDF ENDF ENDF \r\n")
	for i := range 256 {
		b = append(b, byte(i))
	}
	return b
}

// sameFile checks that the downloaded copy matches what was sent.
func (d *demo) sameFile(sent, got string) error {
	a, err := os.ReadFile(sent)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(got)
	if err != nil {
		return fmt.Errorf("the downloaded file: %w", err)
	}
	if !bytes.Equal(a, b) {
		return fmt.Errorf("%s differs from %s", got, sent)
	}
	d.say("== %s is identical to %s (%d bytes)", got, sent, len(b))
	d.seen++
	return nil
}

func (d *demo) cleanup() {
	for _, c := range d.clients {
		c.cmd.Process.Kill() // harmless once it has exited
	}
	if d.server != nil && d.server.Process != nil {
		d.server.Process.Kill()
		d.server.Wait()
	}
}

// client is one real client process with a piped stdin and stdout.
type client struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	done  chan error
}

func (d *demo) startClient(name, to, addr, certs string, signUp bool) (*client, error) {
	cmd := exec.Command(filepath.Join(d.bin, "client"),
		"--server", addr, "--ca", filepath.Join(certs, "ca.pem"),
		"--user", name, "--to", to, "--no-timestamps", "--no-color",
		"--downloads", filepath.Join(d.dir, "downloads-"+name),
		"--config-dir", filepath.Join(d.dir, "config-"+name))
	if signUp {
		cmd.Args = append(cmd.Args, "--signup")
	}
	// A clearly fake demo password, passed the way scripts should.
	cmd.Env = append(os.Environ(), "SSLM_PASSWORD=demo-only-"+name)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	c := &client{name: name, cmd: cmd, stdin: stdin, lines: make(chan string, 1024), done: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start client %s: %w", name, err)
	}
	d.clients = append(d.clients, c)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			d.say("%-5s > %s", name, sc.Text())
			select {
			case c.lines <- sc.Text():
			default: // nobody waits for this much output; the transcript has it
			}
		}
		close(c.lines)
		c.done <- cmd.Wait()
	}()
	return c, nil
}

func (c *client) send(line string) error {
	_, err := io.WriteString(c.stdin, line+"\n")
	return err
}

func (c *client) expect(want string, limit time.Duration) error {
	t := time.NewTimer(limit)
	defer t.Stop()
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				return fmt.Errorf("%s exited before printing %q", c.name, want)
			}
			if strings.Contains(l, want) {
				return nil
			}
		case <-t.C:
			return fmt.Errorf("%s did not print %q within %v", c.name, want, limit)
		}
	}
}

func (c *client) wait(limit time.Duration) error {
	c.stdin.Close()
	select {
	case err := <-c.done:
		return err
	case <-time.After(limit):
		return errors.New("did not exit")
	}
}

func waitForFile(path string, limit time.Duration) (string, error) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && strings.HasSuffix(string(b), "\n") {
			return strings.TrimSpace(string(b)), nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "", fmt.Errorf("%s not written within %v", path, limit)
}

func waitCmd(cmd *exec.Cmd, limit time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		cmd.Process.Kill()
		return errors.New("timed out")
	}
}
