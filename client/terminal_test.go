//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"sslmessager/internal/pki"
	"sslmessager/internal/relay/relaytest"
)

// vt is a small terminal emulator, enough for what the client draws:
// text with auto-wrap (a character in the last column wraps before the
// next one, as xterm does), CR, LF with scrolling, BS, cursor moves
// (CSI A B C D), erase to the end of the line (CSI K) or of the screen
// (CSI J), save and restore (ESC 7, ESC 8). Colours and other sequences
// are ignored. All output is also kept raw.
type vt struct {
	mu       sync.Mutex
	w, h     int
	rows     [][]rune
	x, y     int
	pendWrap bool
	sx, sy   int
	raw      bytes.Buffer
	tail     []byte // an incomplete UTF-8 rune or escape sequence
}

func newVT(w, h int) *vt {
	v := &vt{w: w, h: h}
	for range h {
		v.rows = append(v.rows, blank(w))
	}
	return v
}

func blank(w int) []rune { return []rune(strings.Repeat(" ", w)) }

func (v *vt) Write(p []byte) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.raw.Write(p)
	b := append(v.tail, p...)
	v.tail = nil
	for len(b) > 0 {
		n := v.step(b)
		if n == 0 { // incomplete: wait for more
			v.tail = append([]byte(nil), b...)
			break
		}
		b = b[n:]
	}
	return len(p), nil
}

// step consumes one character or sequence from b and returns its length
// (0: b holds only the start of one).
func (v *vt) step(b []byte) int {
	switch b[0] {
	case '\r':
		v.x, v.pendWrap = 0, false
		return 1
	case '\n':
		v.lineFeed()
		return 1
	case '\b':
		if v.x > 0 {
			v.x--
		}
		v.pendWrap = false
		return 1
	case 0x1b:
		if len(b) < 2 {
			return 0
		}
		switch b[1] {
		case '7':
			v.sx, v.sy = v.x, v.y
			return 2
		case '8':
			v.x, v.y, v.pendWrap = v.sx, v.sy, false
			return 2
		case '[':
			for i := 2; i < len(b); i++ {
				if b[i] >= 0x40 && b[i] <= 0x7e {
					v.csi(string(b[2:i]), b[i])
					return i + 1
				}
			}
			return 0
		}
		return 2
	}
	if b[0] < 0x20 {
		return 1 // other controls: ignored
	}
	if !utf8.FullRune(b) {
		return 0
	}
	r, n := utf8.DecodeRune(b)
	if v.pendWrap {
		v.x, v.pendWrap = 0, false
		v.lineFeed()
	}
	v.rows[v.y][v.x] = r
	if v.x == v.w-1 {
		v.pendWrap = true
	} else {
		v.x++
	}
	return n
}

func (v *vt) lineFeed() {
	v.pendWrap = false
	if v.y == v.h-1 {
		v.rows = append(v.rows[1:], blank(v.w))
		return
	}
	v.y++
}

func (v *vt) csi(params string, final byte) {
	n, err := strconv.Atoi(params)
	if err != nil || n < 1 {
		n = 1
	}
	v.pendWrap = false
	switch final {
	case 'A':
		v.y = max(v.y-n, 0)
	case 'B':
		v.y = min(v.y+n, v.h-1)
	case 'C':
		v.x = min(v.x+n, v.w-1)
	case 'D':
		v.x = max(v.x-n, 0)
	case 'K':
		for i := v.x; i < v.w; i++ {
			v.rows[v.y][i] = ' '
		}
	case 'J':
		for i := v.x; i < v.w; i++ {
			v.rows[v.y][i] = ' '
		}
		for y := v.y + 1; y < v.h; y++ {
			v.rows[y] = blank(v.w)
		}
	}
}

// screen returns the rows without trailing spaces, and the cursor.
func (v *vt) screen() (rows []string, x, y int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, r := range v.rows {
		rows = append(rows, strings.TrimRight(string(r), " "))
	}
	return rows, v.x, v.y
}

func (v *vt) rawString() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.raw.String()
}

// ptyClient is the client binary on a pseudo-terminal.
type ptyClient struct {
	cmd  *exec.Cmd
	ptmx *os.File // the terminal's side: what the user types and sees
	tty  *os.File // the client's side, kept open to read its mode
	vt   *vt
	done chan error
}

const ptyCols, ptyRows = 60, 24

func startPTY(t *testing.T, bin string, env []string, args ...string) *ptyClient {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Cols: ptyCols, Rows: ptyRows}); err != nil {
		t.Fatal(err)
	}
	c := &ptyClient{cmd: clientCmd(t.Context(), bin, append(env, "TERM=xterm"), args...), ptmx: ptmx, tty: tty, vt: newVT(ptyCols, ptyRows), done: make(chan error, 1)}
	c.cmd.Stdin, c.cmd.Stdout, c.cmd.Stderr = tty, tty, tty
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go io.Copy(c.vt, ptmx)
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			c.cmd.Process.Kill()
			<-c.done
		}
		ptmx.Close()
		tty.Close()
	})
	return c
}

func (c *ptyClient) typ(t *testing.T, s string) {
	t.Helper()
	if _, err := c.ptmx.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

// waitScreen polls until check accepts the screen.
func (c *ptyClient) waitScreen(t *testing.T, what string, check func(rows []string, x, y int) error) {
	t.Helper()
	c.waitScreenFor(t, waitLimit, what, check)
}

// waitScreenFor is waitScreen for at most limit.
func (c *ptyClient) waitScreenFor(t *testing.T, limit time.Duration, what string, check func(rows []string, x, y int) error) {
	t.Helper()
	relaytest.CheckFor(t, limit, func() error {
		rows, x, y := c.vt.screen()
		if err := check(rows, x, y); err != nil {
			return fmt.Errorf("%s: %v; screen (cursor %d,%d):\n%s", what, err, x, y, strings.Join(rows, "|\n"))
		}
		return nil
	})
}

// waitRow waits for a row of the screen that holds want.
func (c *ptyClient) waitRow(t *testing.T, want string) int {
	t.Helper()
	at := -1
	c.waitScreen(t, "a row holding "+strconv.Quote(want), func(rows []string, _, _ int) error {
		for i, r := range rows {
			if strings.Contains(r, want) {
				at = i
				return nil
			}
		}
		return fmt.Errorf("none")
	})
	return at
}

// promptRows checks that the prompt and the typed text are drawn whole
// and once, starting on a fresh row below a row holding above.
func promptRows(prompt, typed, above string) func(rows []string, x, y int) error {
	return func(rows []string, _, y int) error {
		want := prompt + typed
		var lines []string
		for len(want) > 0 {
			n := min(len(want), ptyCols)
			lines = append(lines, want[:n])
			want = want[n:]
		}
		start := y - (len(lines) - 1)
		if start < 1 {
			return fmt.Errorf("cursor row %d", y)
		}
		for i, l := range lines {
			if l = strings.TrimRight(l, " "); rows[start+i] != l {
				return fmt.Errorf("row %d is %q, want %q", start+i, rows[start+i], l)
			}
		}
		if above != "" && !strings.Contains(rows[start-1], above) {
			return fmt.Errorf("row %d is %q, want it to hold %q", start-1, rows[start-1], above)
		}
		if n := strings.Count(flat(rows), typed); typed != "" && n != 1 {
			return fmt.Errorf("the typed text is on the screen %d times", n)
		}
		return nil
	}
}

// flat is the screen as one string, rows padded to the width, so that a
// line wrapped over rows reads as one.
func flat(rows []string) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(r + strings.Repeat(" ", ptyCols-utf8.RuneCountInString(r)))
	}
	return b.String()
}

func (c *ptyClient) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-c.done:
		c.done <- err
		return err
	case <-time.After(waitLimit):
		rows, _, _ := c.vt.screen()
		t.Fatalf("client did not exit; screen:\n%s", strings.Join(rows, "\n"))
		return nil
	}
}

// termios is the mode of the client's terminal.
func (c *ptyClient) termios(t *testing.T) *unix.Termios {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(c.tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio
}

// serverBin builds the server binary next to the client's.
func serverBin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "server")
	cmd := exec.Command(goTool(), "build", "-o", bin, "../server")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build server: %v\n%s", err, out)
	}
	return bin
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

// serverFiles are what a server keeps across restarts.
type serverFiles struct{ certs, users, spool string }

// serverProc is the server binary running.
type serverProc struct {
	cmd    *exec.Cmd
	addr   string
	stderr *relaytest.SyncBuffer
	done   chan error
}

// runServer starts the server binary on f, listening on listen, and waits
// for its address.
func runServer(t *testing.T, bin string, f serverFiles, listen string) *serverProc {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	p := &serverProc{stderr: &relaytest.SyncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, "--listen", listen, "--addr-file", addrFile,
		"--users", f.users, "--spool", f.spool,
		"--cert", filepath.Join(f.certs, pki.ServerCertFile), "--key", filepath.Join(f.certs, pki.ServerKeyFile),
		"--hash-cost", "4", "--log-level", "warn")
	p.cmd.Dir = t.TempDir() // the data paths not given (offline, key directory) land there
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.kill(t) })
	relaytest.CheckFor(t, waitLimit, func() error {
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("server exited: %v\n%s", err, p.stderr.String())
		default:
		}
		b, err := os.ReadFile(addrFile)
		if err != nil || !bytes.HasSuffix(b, []byte("\n")) {
			return fmt.Errorf("no address yet (%v)", err)
		}
		p.addr = strings.TrimSpace(string(b))
		return nil
	})
	return p
}

// kill ends the server with SIGKILL (no goodbye to anyone). Killing twice
// is harmless.
func (p *serverProc) kill(t *testing.T) {
	p.cmd.Process.Kill()
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(waitLimit):
		t.Errorf("server did not die")
	}
}

// startSlowProxy forwards TCP connections to server, passing the server's
// bytes to the client at about 400 KB/s, so that a download lasts long
// enough to type during it.
func startSlowProxy(t *testing.T, server string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", server)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			wg.Add(2)
			go func() {
				defer wg.Done()
				io.Copy(s, c)
				s.Close()
			}()
			go func() {
				defer wg.Done()
				buf := make([]byte, 16<<10)
				for {
					n, err := s.Read(buf)
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
							break
						}
						time.Sleep(40 * time.Millisecond)
					}
					if err != nil {
						break
					}
				}
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// TestClientTerminal drives the interactive client in a pseudo-terminal
// and checks the screen: a message arriving while a line is half typed
// (short and wider than the terminal), a progress bar while typing a long
// line, Ctrl-C, and a reconnect after a server restart.
func TestClientTerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	bin, sbin := buildClient(t), serverBin(t)
	dir := t.TempDir()
	files := serverFiles{certs: filepath.Join(dir, "certs"), users: filepath.Join(dir, "users.csv"), spool: filepath.Join(dir, "spool")}
	if _, err := pki.Generate(pki.GenerateOptions{Dir: files.certs, Hosts: []string{"127.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(files.certs, pki.CAFile)
	srv := runServer(t, sbin, files, "127.0.0.1:0")
	// These check the terminal's layout with the prompt "bob> ": end-to-end
	// encryption, on by default against this server (it has a key
	// directory), would show its state in the prompt ("bob [e2e,
	// unverified]> ", checked in internal/messenger TestE2ETerminalPrompt).
	common := func(addr string, extra ...string) []string {
		return append([]string{"--server", addr, "--ca", ca, "--no-timestamps", "--config-dir", t.TempDir(), "--downloads", filepath.Join(dir, "downloads"), "--e2e=off"}, extra...)
	}
	alicePW := []string{"SSLM_PASSWORD=pw-of-alice"}
	bobPW := []string{"SSLM_PASSWORD=pw-of-bob"}
	// bob chats over a pipe.
	bob := startProc(t, bin, bobPW, common(srv.addr, "--user", "bob", "--signup", "--to", "alice")...)
	bob.waitOutput(t, "logged in as bob")

	t.Run("message while typing", func(t *testing.T) {
		alice := startPTY(t, bin, alicePW, common(srv.addr, "--user", "alice", "--signup", "--to", "bob")...)
		alice.waitRow(t, "bob>")
		alice.typ(t, "half typed")
		alice.waitScreen(t, "typed", promptRows("bob> ", "half typed", ""))
		io.WriteString(bob.stdin, "hello alice\n")
		alice.waitScreen(t, "message above the typed line", promptRows("bob> ", "half typed", "bob: hello alice"))

		// A line wider than the terminal is drawn whole below the message.
		alice.typ(t, "\x15") // Ctrl-U
		long := "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-the-end"
		alice.typ(t, long)
		alice.waitScreen(t, "long line typed", promptRows("bob> ", long, ""))
		io.WriteString(bob.stdin, "second message\n")
		alice.waitScreen(t, "message above the long line", promptRows("bob> ", long, "bob: second message"))

		// Ctrl-C: the client quits, the half-typed line is not sent and
		// leaves the screen, the cursor is on a clean line and the
		// terminal is back in its normal mode.
		if tio := alice.termios(t); tio.Lflag&unix.ECHO != 0 {
			t.Fatalf("terminal not raw during the session: lflag %#x", tio.Lflag)
		}
		alice.typ(t, "\x03")
		if err := alice.wait(t); err != nil {
			t.Fatalf("exit after Ctrl-C: %v", err)
		}
		// (The last output may still be on its way from the pty.)
		alice.waitScreen(t, "a clean line after Ctrl-C", func(rows []string, x, y int) error {
			if x != 0 || rows[y] != "" {
				return fmt.Errorf("the cursor is at column %d of %q", x, rows[y])
			}
			if strings.Contains(flat(rows), long[:20]) {
				return fmt.Errorf("the half-typed line is still on the screen")
			}
			return nil
		})
		if tio := alice.termios(t); tio.Lflag&(unix.ECHO|unix.ICANON) != unix.ECHO|unix.ICANON || tio.Oflag&unix.OPOST == 0 {
			t.Errorf("terminal mode not restored: lflag %#x oflag %#x", tio.Lflag, tio.Oflag)
		}
		if strings.Contains(bob.stdout.String(), "0123456789") {
			t.Errorf("the half-typed line was sent: %q", bob.stdout.String())
		}
	})

	t.Run("Ctrl-Z and fg", func(t *testing.T) {
		// bash with job control is the shell: the client runs as its
		// foreground job (a process group of its own, so Ctrl-Z may
		// stop it), and bash waits for a line before it runs fg.
		bash, err := exec.LookPath("bash")
		if err != nil {
			t.Fatalf("bash is needed for job control: %v", err)
		}
		script := `set -m; "$@"; echo "[stopped: $?]"; read -r _; fg >/dev/null; echo "[exit: $?]"`
		alice := startPTY(t, bash, alicePW, append([]string{"-c", script, "bash", bin}, common(srv.addr, "--user", "alice", "--to", "bob")...)...)
		alice.waitRow(t, "bob>")
		alice.typ(t, "abc")
		alice.waitScreen(t, "typed", promptRows("bob> ", "abc", ""))
		alice.typ(t, "\x1a") // Ctrl-Z
		alice.waitRow(t, "[stopped: 148]")
		if tio := alice.termios(t); tio.Lflag&(unix.ECHO|unix.ICANON) != unix.ECHO|unix.ICANON {
			t.Errorf("terminal still raw while the client is stopped: lflag %#x", tio.Lflag)
		}
		alice.typ(t, "\r") // bash reads it, then runs fg
		stopped := alice.waitRow(t, "[stopped: 148]")
		alice.waitScreen(t, "prompt and typed text drawn again after fg", func(rows []string, x, y int) error {
			if y <= stopped || rows[y] != "bob> abc" || x != len("bob> abc") {
				return fmt.Errorf("cursor row %d is %q", y, rows[y])
			}
			return nil
		})
		if tio := alice.termios(t); tio.Lflag&unix.ECHO != 0 {
			t.Errorf("terminal not raw again after fg: lflag %#x", tio.Lflag)
		}
		alice.typ(t, "def\r")
		bob.waitOutput(t, "alice: abcdef\n")
		alice.typ(t, "\x03")
		alice.waitRow(t, "[exit: 0]")
	})

	t.Run("progress bar while typing", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "big.bin")
		if err := os.WriteFile(f, bytes.Repeat([]byte("0123456789abcdef"), 1<<17), 0o600); err != nil { // 2 MiB
			t.Fatal(err)
		}
		if out, errOut, code := runOnce(t, bin, "", bobPW, common(srv.addr, "--user", "bob", "upload", "--to", "alice", f)...); code != 0 {
			t.Fatalf("upload: exit %d, %q %q", code, out, errOut)
		}
		alice := startPTY(t, bin, alicePW, common(startSlowProxy(t, srv.addr), "--user", "alice", "--to", "bob")...)
		alice.waitRow(t, "bob>")
		io.WriteString(bob.stdin, "before the download\n")
		alice.waitRow(t, "bob: before the download")
		alice.typ(t, ":download:\r")
		alice.waitRow(t, "%") // the bar is up
		long := strings.Repeat("typed while the bar runs ", 3)
		alice.typ(t, long)
		// Every frame of the bar from now on is drawn above the whole of
		// the long line, never over it.
		frames := strings.Count(alice.vt.rawString(), "%")
		checked := 0
		for i := 0; i < 3; i++ {
			relaytest.CheckFor(t, waitLimit, func() error {
				if n := strings.Count(alice.vt.rawString(), "%"); n <= frames && !strings.Contains(alice.vt.rawString(), "downloaded 1 file") {
					return fmt.Errorf("no new frame")
				}
				return nil
			})
			if strings.Contains(alice.vt.rawString(), "downloaded 1 file") {
				break // the bar is gone
			}
			frames = strings.Count(alice.vt.rawString(), "%")
			// (A frame is drawn in a few writes: wait for the last, but
			// not for the end of the download.)
			alice.waitScreenFor(t, time.Second, fmt.Sprintf("frame %d", i), func(rows []string, x, y int) error {
				if err := promptRows("bob> ", long, "")(rows, x, y); err != nil {
					return err
				}
				if above := rows[y-1-len("bob> "+long)/ptyCols]; !strings.Contains(above, "%") && !strings.Contains(above, "downloaded") {
					return fmt.Errorf("the row above the prompt is %q, not the bar", above)
				}
				return nil
			})
			checked++
		}
		if checked == 0 {
			t.Fatal("the download ended before a frame could be checked")
		}
		alice.waitRow(t, "saved big.bin")
		alice.waitScreen(t, "after the download", promptRows("bob> ", long, "downloaded 1 file"))
		if rows, _, _ := alice.vt.screen(); !strings.Contains(strings.Join(rows, "\n"), "bob: before the download") {
			t.Errorf("a received line was erased:\n%s", strings.Join(rows, "\n"))
		}
		alice.typ(t, "\x03")
		if err := alice.wait(t); err != nil {
			t.Fatalf("exit: %v", err)
		}
	})

	t.Run("reconnect after a server restart", func(t *testing.T) {
		alice := startPTY(t, bin, alicePW, common(srv.addr, "--user", "alice", "--to", "bob")...)
		alice.waitRow(t, "bob>")
		alice.typ(t, ":toggle:\r")
		alice.waitRow(t, "group chat on")
		alice.waitRow(t, "[group]>")
		// The group prompt and what is typed after it are green, like
		// the group lines of others; the next printed line resets it.
		if raw := alice.vt.rawString(); !strings.Contains(raw, "\x1b[32m[group]> ") {
			t.Errorf("the group prompt is not green: %q", raw[max(0, len(raw)-200):])
		}

		srv.kill(t)
		if err := bob.wait(t); err == nil {
			t.Errorf("piped bob exited 0 after the server died")
		}
		alice.waitRow(t, "! connection lost: the server closed the connection")
		srv = runServer(t, sbin, files, srv.addr) // same port, same files
		alice.waitRow(t, "reconnected to "+srv.addr)
		alice.waitScreen(t, "group prompt back", promptRows("[group]> ", "", "reconnected"))
		if n := strings.Count(alice.vt.rawString(), "reconnecting"); n != 1 {
			t.Errorf("said %d times that it reconnects", n)
		}
		if strings.Contains(alice.vt.rawString(), "pw-of-alice") {
			t.Errorf("the password was shown")
		}

		// A message goes through, in group chat as before.
		bob2 := startProc(t, bin, bobPW, common(srv.addr, "--user", "bob", "--to", "alice")...)
		bob2.waitOutput(t, "logged in as bob")
		io.WriteString(bob2.stdin, ":toggle:\n")
		bob2.waitOutput(t, "group chat on")
		alice.typ(t, "after the restart\r")
		bob2.waitOutput(t, "[group] alice: after the restart\n")

		// A log-in refused on reconnect ends the client with the reason:
		// the server comes back without alice's account.
		srv.kill(t)
		relaytest.CheckFor(t, waitLimit, func() error {
			if n := strings.Count(alice.vt.rawString(), "connection lost"); n != 2 {
				return fmt.Errorf("%d times connection lost", n)
			}
			return nil
		})
		empty := files
		empty.users = filepath.Join(t.TempDir(), "users.csv")
		srv = runServer(t, sbin, empty, srv.addr)
		err := alice.wait(t)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("exit %v, want status 1", err)
		}
		alice.waitScreen(t, "the reason", func(rows []string, _, _ int) error {
			if !strings.Contains(flat(rows), "error: reconnect: log-in refused: incorrect username or password") {
				return fmt.Errorf("not shown")
			}
			return nil
		})
		if tio := alice.termios(t); tio.Lflag&unix.ECHO == 0 {
			t.Errorf("terminal mode not restored: lflag %#x", tio.Lflag)
		}
	})
}
