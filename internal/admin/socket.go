package admin

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Limits of the admin socket.
const (
	// MaxRequestBytes bounds one request line (and the password line after
	// a "-").
	MaxRequestBytes = 64 << 10
	// socketTimeout bounds one request: reading it, running it, writing
	// the answer.
	socketTimeout = 60 * time.Second
	// maxSocketConns bounds the requests served at once; more wait in the
	// listen queue.
	maxSocketConns = 8
)

// Socket is the admin socket of a running server: a Unix socket, mode
// 0600, that takes one request per connection.
//
// The protocol, one connection per command: the client sends the command
// line and "\n"; when its last word is "-", the password and "\n" follow.
// The server answers with the data lines, each "\n"-terminated and
// escaped so that none holds a control character, then a last line "ok
// SUMMARY" or "error: REASON", and closes.
type Socket struct {
	a    *Admin
	l    *net.UnixListener
	path string
	log  *slog.Logger
	sem  chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{} // requests under way; guarded by mu
}

// ErrSocketInUse means another process answers on the admin socket's path.
var ErrSocketInUse = errors.New("admin: another server is listening on the admin socket")

// ListenSocket creates the admin socket at path, mode 0600, replacing a
// stale socket file a crashed server left (ErrSocketInUse if one answers;
// an error if path is some other kind of file). The socket is created
// under a temporary name and renamed into place once its mode is set, so
// it is never reachable with other permissions.
func (a *Admin) ListenSocket(path string) (*Socket, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("admin: %s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%w: %s", ErrSocketInUse, path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("admin: remove stale socket: %w", err)
		}
		a.log.Info("removed a stale admin socket", "path", path)
	}
	tmp := filepath.Join(filepath.Dir(path), fmt.Sprintf(".%s.%d.tmp", filepath.Base(path), os.Getpid()))
	os.Remove(tmp)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	l.SetUnlinkOnClose(false) // Close removes path itself
	if err := os.Chmod(tmp, 0o600); err != nil {
		l.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("admin: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		l.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("admin: %w", err)
	}
	return &Socket{a: a, l: l, path: path, log: a.log, sem: make(chan struct{}, maxSocketConns), conns: map[net.Conn]struct{}{}}, nil
}

// Path is where the socket is.
func (s *Socket) Path() string { return s.path }

// Serve answers requests until Close. It returns nil after Close.
func (s *Socket) Serve() error {
	var pause time.Duration
	for {
		c, err := s.l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// Out of descriptors and the like: wait and go on.
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			s.log.Warn("admin socket: accept failed; retrying", "err", err, "pause", pause)
			time.Sleep(pause)
			continue
		}
		pause = 0
		s.sem <- struct{}{}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				<-s.sem
				s.wg.Done()
			}()
			s.serve(c)
		}()
	}
}

// Close stops Serve, cuts off requests still waiting for their input,
// waits for those running, and removes the socket file.
func (s *Socket) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for c := range s.conns {
		c.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()
	err := s.l.Close()
	s.wg.Wait()
	if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}

func (s *Socket) serve(c net.Conn) {
	defer c.Close()
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("admin socket: panic", "panic", r)
		}
	}()
	c.SetDeadline(time.Now().Add(socketTimeout))
	r := bufio.NewReaderSize(c, 4096)
	line, err := readLine(r)
	if err != nil {
		Result{Summary: "bad request: " + err.Error()}.Write(c)
		return
	}
	req := Request{Line: line, By: "socket", ReadSecret: func() (string, error) { return readLine(r) }}
	s.a.Run(req).Write(c)
}

// readLine reads one "\n"-terminated line of at most MaxRequestBytes,
// without its line end.
func readLine(r *bufio.Reader) (string, error) {
	var b []byte
	for {
		frag, err := r.ReadSlice('\n')
		b = append(b, frag...)
		if len(b) > MaxRequestBytes+2 {
			return "", fmt.Errorf("line longer than %d bytes", MaxRequestBytes)
		}
		if err == nil {
			return strings.TrimRight(string(b), "\r\n"), nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) && len(b) > 0 {
				return strings.TrimRight(string(b), "\r\n"), nil
			}
			return "", err
		}
	}
}

// Call sends one command (args, joined by spaces) to the admin socket at
// path and copies the answer to out. When the last argument is "-", it
// reads the password with readSecret and sends it after the command. It
// reports whether the command succeeded (the last line starts with "ok");
// err is a failure to talk to the server.
func Call(path string, args []string, readSecret func() (string, error), out io.Writer) (ok bool, err error) {
	line := strings.Join(args, " ")
	if strings.ContainsAny(line, "\r\n") {
		return false, errors.New("the command must be one line")
	}
	var secret string
	if len(args) > 0 && args[len(args)-1] == "-" {
		if readSecret == nil {
			return false, errors.New("- needs a password on stdin")
		}
		if secret, err = readSecret(); err != nil {
			return false, fmt.Errorf("read the password: %w", err)
		}
		if strings.ContainsAny(secret, "\r\n") {
			return false, errors.New("the password must be one line")
		}
	}
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return false, fmt.Errorf("connect to the admin socket (is the server running? --admin-socket): %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(socketTimeout + 5*time.Second))
	req := line + "\n"
	if len(args) > 0 && args[len(args)-1] == "-" {
		req += secret + "\n"
	}
	if _, err := io.WriteString(c, req); err != nil {
		return false, fmt.Errorf("admin socket: %w", err)
	}
	r := bufio.NewReader(c)
	last := ""
	for {
		l, err := r.ReadString('\n')
		if l != "" {
			if _, werr := io.WriteString(out, l); werr != nil {
				return false, werr
			}
			last = l
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return false, fmt.Errorf("admin socket: %w", err)
		}
	}
	switch {
	case strings.HasPrefix(last, "ok"):
		return true, nil
	case strings.HasPrefix(last, "error:"):
		return false, nil
	}
	return false, errors.New("admin socket: the answer ended without a result line")
}
