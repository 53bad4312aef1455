package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"sslmessager/internal/durable"
	"sslmessager/internal/pki"
	"sslmessager/internal/wire"
)

// fileParams describes the file scenario.
type fileParams struct {
	Size      int64
	Cert, Key string // the server's certificate, for the ceilings; "" skips them
	TmpDir    string // where downloads and ceiling 2 write; "" is os.TempDir()
	Seed      uint64
}

// fileName is the name of the uploaded file.
const fileName = "loadgen.bin"

// fileEvent is what a file client's reader passes on: a line, or after a
// FileHeader the number of data bytes read (and the sink's write error).
type fileEvent struct {
	q    wire.Query
	n    int64
	werr error
}

// fileClient is a client whose reader turns lines into events and, after
// a FileHeader, copies the data into the sink it is given for it.
type fileClient struct {
	*client
	events chan fileEvent
	sinks  chan io.Writer
	quit   chan struct{}
}

func (fc *fileClient) handle(q wire.Query, _ time.Time) error {
	ev := fileEvent{q: q}
	if h, ok := q.(wire.FileHeader); ok {
		var sink io.Writer = io.Discard
		select {
		case sink = <-fc.sinks:
		default:
		}
		copyFn := copyData
		if f, ok := sink.(*os.File); ok {
			// As our client saves a download.
			sink, copyFn = durable.NewWriteBehind(f, true), copyOverlapped
		}
		n, werr, err := copyFn(sink, fc.r, h.Size)
		if err != nil {
			return fmt.Errorf("file data: %w", err)
		}
		end, err := fc.next()
		if err != nil {
			return err
		}
		if _, ok := end.(wire.FileEnd); !ok {
			return fmt.Errorf("want ENDF ENDF ENDF after the file data, got %s", end.Verb())
		}
		ev.n, ev.werr = n, werr
	}
	select {
	case fc.events <- ev:
	case <-fc.quit:
	}
	return nil
}

// copyData reads exactly size bytes from r into w. If w fails, the rest is
// still read (so the stream stays in step) and the write error returned.
func copyData(w io.Writer, r io.Reader, size int64) (n int64, werr, rerr error) {
	buf := make([]byte, fileReadBuffer)
	for left := size; left > 0; {
		m, err := r.Read(buf[:min(int64(len(buf)), left)])
		if m > 0 {
			left -= int64(m)
			if werr == nil {
				_, werr = w.Write(buf[:m])
			}
			n += int64(m)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return n, werr, err
		}
	}
	return n, werr, nil
}

// copyOverlapped is copyData with the writes to w overlapped with the
// reads, as our client saves a download: while one buffer is written by a
// second goroutine (a filePipe, streaming.go), the next is read and
// decrypted. A file write is a copy into the page cache, as costly as the
// decryption; done in turn they leave a core idle. The ceiling's receiver
// keeps the plain copyData.
func copyOverlapped(w io.Writer, r io.Reader, size int64) (n int64, werr, rerr error) {
	p := newFilePipe(nil, w)
	rerr = p.read(r, size)
	werr = p.finish()
	if rerr != nil {
		return 0, werr, rerr
	}
	return size, werr, nil
}

// wait returns the next event.
func (fc *fileClient) wait(ctx context.Context) (fileEvent, error) {
	select {
	case ev := <-fc.events:
		return ev, nil
	case <-fc.done:
		if fc.end != nil {
			return fileEvent{}, fmt.Errorf("%s: server ended the session: %s", fc.name, fc.end.Reason)
		}
		return fileEvent{}, fmt.Errorf("%s: connection ended: %v", fc.name, fc.readErr)
	case <-ctx.Done():
		return fileEvent{}, ctx.Err()
	}
}

// runFile uploads one file of p.Size bytes from A to B and downloads it,
// twice: upload (BEGINF to "upload complete"), download discarding the
// bytes (CMD <get> to "file send complete"), a second upload, then a
// download into a temporary file that is fsynced before the clock stops.
// The end-to-end rate is size / (second upload + download into file).
// Then it streams a file of a sixteenth of the size and one of the full
// size to an sslm/2 session of B (measureStreaming, streaming.go).
// Then it measures the two ceilings in-process, each over a fresh TLS
// connection on loopback with the server's certificate: a TLS stream
// whose receiver discards, and one whose receiver writes a file and
// fsyncs it; each twice, keeping the better (disk speed varies between
// runs). The data is a seeded PCG stream; the server's SHA-256 of it
// and the downloaded file are checked against the stream's hash.
func runFile(ctx context.Context, e *env, p fileParams) (*Result, error) {
	if p.Size < 1 {
		return nil, errors.New("file: --size must be at least 1 byte")
	}
	if p.TmpDir == "" {
		p.TmpDir = os.TempDir()
	}
	if p.Seed == 0 {
		p.Seed = uint64(time.Now().UnixNano())
	}
	res := &Result{Scenario: "file", Kind: "file",
		Label: fmt.Sprintf("file: %d bytes from A to B, upload and download, with TLS and disk ceilings", p.Size)}
	ctx, cancel := context.WithTimeout(ctx, e.timeoutOr(defaultFileTimeout))
	defer cancel()
	var srvTLS *tls.Config
	if p.Cert != "" || p.Key != "" {
		c, err := pki.ServerTLSConfig(p.Cert, p.Key)
		if err != nil {
			return nil, fmt.Errorf("file: ceilings: %w", err)
		}
		srvTLS = c
	}

	clients := make([]*fileClient, 2)
	cl, _, err := connectAll(ctx, e, 2, 'f', signUpOrLogIn, fileReadBuffer, msgWriteBuffer, func(i int, c *client) {
		fc := &fileClient{client: c, events: make(chan fileEvent, 16), sinks: make(chan io.Writer, 1), quit: make(chan struct{})}
		clients[i] = fc
		c.run(fc.handle)
	})
	if err != nil {
		return nil, fmt.Errorf("file: connect: %w", err)
	}
	a, b := clients[0], clients[1]
	// On timeout, closing the connections ends any write or read under way.
	stopClose := context.AfterFunc(ctx, func() { a.conn.Close(); b.conn.Close() })
	defer stopClose()
	defer func() {
		close(a.quit)
		close(b.quit)
		quitAll(cl)
		a.problems(res)
		b.problems(res)
	}()

	sampler, err := e.watchServer()
	if err != nil {
		return nil, err
	}
	defer sampler.finish()
	cpu0 := e.serverCPU()
	f := &FileStats{Size: p.Size}
	res.File = f
	mbps := func(d time.Duration) float64 { return float64(p.Size) / megabyte / d.Seconds() }
	fail := func(what string, err error) (*Result, error) {
		if ctx.Err() != nil {
			res.TimedOut = true
			err = fmt.Errorf("cut off at the timeout (%w)", err)
		}
		res.addError("%s: %v", what, err)
		return res, nil
	}
	serverCost := func() {
		if sampler == nil || res.Server != nil {
			return
		}
		cpu1, _ := cpuTime(e.pid)
		before, peak := sampler.finish()
		res.Server = &ServerStats{PID: e.pid, CPUSec: (cpu1 - cpu0).Seconds(),
			RSSBeforeKB: before >> 10, RSSPeakKB: peak >> 10, RSSGrowthKB: (peak - before) >> 10}
	}
	defer serverCost()

	up, err := uploadFile(ctx, a, b.name, p)
	if err != nil {
		return fail("upload", err)
	}
	f.UploadSec, f.UploadMBps = up.Seconds(), mbps(up)
	down, n1, sha1, err := downloadFile(ctx, b, io.Discard)
	if err != nil {
		return fail("download", err)
	}
	f.DownloadSec, f.DownloadMBps = down.Seconds(), mbps(down)

	up2, err := uploadFile(ctx, a, b.name, p)
	if err != nil {
		return fail("second upload", err)
	}
	f.Upload2Sec = up2.Seconds()
	tmp, err := os.CreateTemp(p.TmpDir, "loadgen-download-*.bin")
	if err != nil {
		return fail("download into file", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	t0 := time.Now()
	_, n2, sha2, err := downloadFile(ctx, b, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if err != nil {
		return fail("download into file", err)
	}
	downFile := time.Since(t0)
	serverCost()
	f.DownloadFileSec, f.DownloadFileMBps = downFile.Seconds(), mbps(downFile)
	f.EndToEndMBps = mbps(up2 + downFile)
	if err := f.measureStreaming(ctx, e, a, b, p); err != nil {
		f.StreamNote = streamFailed
		return fail("streaming", err)
	}

	if err := measureE2EUpload(ctx, a, b, p, f, min(up, up2)); err != nil { // filee2e.go
		return fail("encrypted upload", err)
	}

	// Verify, off the clock: the server's hash of both uploads, the bytes
	// counted, and the file written.
	wantSHA, err := streamSHA(ctx, p.Seed, p.Size)
	if err != nil {
		return fail("hash the data", err)
	}
	got, err := fileSHA(tmp)
	if err != nil {
		return fail("hash the downloaded file", err)
	}
	f.Verified = true
	for _, c := range []struct {
		what, sha string
		n         int64
	}{{"download", sha1, n1}, {"download into file", sha2, n2}, {"downloaded file", got, n2}} {
		if c.n != p.Size || !strings.EqualFold(c.sha, wantSHA) {
			f.Verified = false
			res.addError("%s: %d bytes with SHA-256 %s, want %d bytes with %s", c.what, c.n, c.sha, p.Size, wantSHA)
		}
	}

	if srvTLS == nil {
		res.Notes = append(res.Notes, "ceilings skipped: pass --cert and --key (the server's) to measure them")
		return res, nil
	}
	for range 2 { // the better of two, against disk and CPU noise
		if err := f.measureCeilings(ctx, srvTLS, e, p, tmp); err != nil {
			return fail("ceilings", err)
		}
	}
	f.UploadRatio = f.UploadMBps / f.CeilingFileMBps
	f.DownloadRatio = f.DownloadMBps / f.CeilingTLSMBps
	f.DownloadFileRatio = f.DownloadFileMBps / f.CeilingFileMBps
	f.EndToEndRatio = f.EndToEndMBps / f.CeilingFileMBps
	f.StreamRatio = f.StreamMBps / f.CeilingFileMBps
	return res, nil
}

// measureCeilings measures the three ceilings once and keeps the better
// rates. Ceiling 3 sends the contents of src (the downloaded file, just
// verified and still in the page cache) instead of generating them.
func (f *FileStats) measureCeilings(ctx context.Context, srvTLS *tls.Config, e *env, p fileParams, src *os.File) error {
	c1, err := tlsCeiling(ctx, srvTLS, e, p, "", nil)
	if err != nil {
		return fmt.Errorf("ceiling 1 (TLS stream): %w", err)
	}
	c2, err := tlsCeiling(ctx, srvTLS, e, p, p.TmpDir, nil)
	if err != nil {
		return fmt.Errorf("ceiling 2 (TLS into file): %w", err)
	}
	c3, err := tlsCeiling(ctx, srvTLS, e, p, p.TmpDir, src)
	if err != nil {
		return fmt.Errorf("ceiling 3 (TLS from file into file): %w", err)
	}
	f.CeilingTLSMBps = max(f.CeilingTLSMBps, float64(p.Size)/megabyte/c1.Seconds())
	f.CeilingFileMBps = max(f.CeilingFileMBps, float64(p.Size)/megabyte/c2.Seconds())
	f.CeilingFromFileMBps = max(f.CeilingFromFileMBps, float64(p.Size)/megabyte/c3.Seconds())
	return nil
}

// beginUpload sends up (BEGINF) and waits for PROCEED; a STOP is an error
// with the server's reason.
func beginUpload(ctx context.Context, a *fileClient, up wire.Upload) error {
	if err := a.write(up, true); err != nil {
		return err
	}
	ev, err := a.wait(ctx)
	if err != nil {
		return err
	}
	switch q := ev.q.(type) {
	case wire.Proceed:
		return nil
	case wire.Stop:
		return fmt.Errorf("server refused the upload of %d bytes: %s", up.Size, q.Reason)
	default:
		return fmt.Errorf("want PROCEED, got %s", q.Verb())
	}
}

// uploadFile sends BEGINF, waits for PROCEED, streams the data, sends ENDF
// and waits for CMD <upload complete>. It returns the time from BEGINF to
// that notice.
func uploadFile(ctx context.Context, a *fileClient, target string, p fileParams) (time.Duration, error) {
	t0 := time.Now()
	if err := beginUpload(ctx, a, wire.Upload{Name: fileName, Target: target, Size: p.Size, Token: a.token}); err != nil {
		return 0, err
	}
	gen := newDataGen(p.Seed)
	buf := make([]byte, fileChunk)
	for left := p.Size; left > 0; {
		n := min(left, int64(len(buf)))
		gen.fill(buf[:n])
		if err := a.writeRaw(buf[:n]); err != nil {
			return 0, err
		}
		left -= n
	}
	if err := endUpload(ctx, a); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// endUpload sends ENDF and waits for CMD <upload complete>.
func endUpload(ctx context.Context, a *fileClient) error {
	if err := a.write(wire.UploadEnd{Token: a.token}, true); err != nil {
		return err
	}
	ev, err := a.wait(ctx)
	if err != nil {
		return err
	}
	if q, ok := ev.q.(wire.Notice); !ok || q.Text != wire.NoticeUploadComplete {
		return fmt.Errorf("want CMD <%s>, got %s", wire.NoticeUploadComplete, lineText(ev.q))
	}
	return nil
}

// downloadFile sends CMD <get> and reads BEGIN, the first file into sink
// (any further file is discarded), and CMD <file send complete>. It
// returns the time to that notice, the first file's size and SHA-256 as
// the server announced it.
func downloadFile(ctx context.Context, b *fileClient, sink io.Writer) (time.Duration, int64, string, error) {
	b.sinks <- sink
	t0 := time.Now()
	if err := b.write(wire.Get{Token: b.token}, true); err != nil {
		return 0, 0, "", err
	}
	var (
		n     int64
		sha   string
		files int
	)
	for {
		ev, err := b.wait(ctx)
		if err != nil {
			return 0, 0, "", err
		}
		switch q := ev.q.(type) {
		case wire.Begin:
			if q.Count == 0 {
				return 0, 0, "", errors.New("BEGIN 0: no file was queued")
			}
		case wire.FileHeader:
			if ev.werr != nil {
				return 0, 0, "", fmt.Errorf("write the download: %w", ev.werr)
			}
			if files == 0 {
				n, sha = ev.n, q.SHA256
			}
			files++
		case wire.Notice:
			if q.Text != wire.NoticeSendComplete {
				return 0, 0, "", fmt.Errorf("unexpected CMD <%s>", q.Text)
			}
			if files == 0 {
				return 0, 0, "", errors.New("no file arrived")
			}
			return time.Since(t0), n, sha, nil
		default:
			return 0, 0, "", fmt.Errorf("unexpected %s line during the download", q.Verb())
		}
	}
}

// tlsCeiling streams p.Size bytes of the same data, generated or (src not
// nil) read from src, over a new loopback TLS connection to an in-process
// receiver with the server's certificate. The receiver discards the bytes,
// or with dir writes them to a file there and fsyncs it, then answers one
// byte. It returns the time from the end of the handshake to that answer.
func tlsCeiling(ctx context.Context, srvTLS *tls.Config, e *env, p fileParams, dir string, src *os.File) (time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	got := make(chan error, 1)
	go func() { got <- ceilingReceiver(tls.NewListener(ln, srvTLS), p.Size, dir) }()

	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: dialTimeout}, Config: e.tls}
	raw, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		ln.Close()
		<-got
		return 0, err
	}
	conn := raw.(*tls.Conn)
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close(); ln.Close() })
	defer stop()
	gen := newDataGen(p.Seed)
	fill := func(b []byte) error { gen.fill(b); return nil }
	if src != nil {
		sr := io.NewSectionReader(src, 0, p.Size)
		fill = func(b []byte) error {
			_, err := io.ReadFull(sr, b)
			return err
		}
	}
	buf := make([]byte, fileChunk)
	t0 := time.Now()
	for left := p.Size; left > 0; {
		n := min(left, int64(len(buf)))
		err := fill(buf[:n])
		if err == nil {
			_, err = conn.Write(buf[:n])
		}
		if err != nil {
			conn.Close()
			<-got
			return 0, err
		}
		left -= n
	}
	var ack [1]byte
	if _, err := io.ReadFull(conn, ack[:]); err != nil {
		conn.Close()
		if rerr := <-got; rerr != nil {
			return 0, rerr
		}
		return 0, err
	}
	took := time.Since(t0)
	return took, <-got
}

// ceilingReceiver accepts one connection, reads size bytes into nothing or
// a file in dir that it then fsyncs (and removes), and answers one byte.
func ceilingReceiver(l net.Listener, size int64, dir string) error {
	conn, err := l.Accept()
	if err != nil {
		return err
	}
	defer conn.Close()
	var sink io.Writer = io.Discard
	var f *os.File
	if dir != "" {
		if f, err = os.CreateTemp(dir, "loadgen-ceiling-*.bin"); err != nil {
			return err
		}
		defer os.Remove(f.Name())
		defer f.Close()
		sink = f
	}
	n, werr, rerr := copyData(sink, conn, size)
	if err := errors.Join(werr, rerr); err != nil {
		return fmt.Errorf("after %d bytes: %w", n, err)
	}
	if f != nil {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	_, err = conn.Write([]byte{1})
	return err
}

// streamSHA is the hex SHA-256 of the first size bytes of the data stream.
func streamSHA(ctx context.Context, seed uint64, size int64) (string, error) {
	h := sha256.New()
	gen := newDataGen(seed)
	buf := make([]byte, fileChunk)
	for left := size; left > 0; {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n := min(left, int64(len(buf)))
		gen.fill(buf[:n])
		h.Write(buf[:n])
		left -= n
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// fileSHA is the hex SHA-256 of f's contents.
func fileSHA(f *os.File) (string, error) {
	h := sha256.New()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	if _, err := io.CopyBuffer(h, f, make([]byte, fileChunk)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// lineText names a line for an error message.
func lineText(q wire.Query) string {
	if q == nil {
		return "nothing"
	}
	b, err := wire.Format(q)
	if err != nil {
		return q.Verb()
	}
	return strings.TrimSpace(string(b))
}
