package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"sslmessager/internal/durable"
	"sslmessager/internal/wire"
)

// streamFailed is what the file table shows in place of the streaming
// figure when the streamed transfer failed (the errors say why).
const streamFailed = "failed"

// streamFlatSlack is how much more the server's peak resident memory may
// grow while it streams the full file than while it streams the small
// one, for its memory to count as flat whatever the file size: buffers
// are per stream, never per byte, so anything beyond allocator and
// sampling noise is a leak of the file into memory.
const streamFlatSlack = 8 << 20

// streamSmallSize is the size of the small file streamed before the full
// one of size bytes, to compare the server's memory: a sixteenth.
func streamSmallSize(size int64) int64 { return max(1, size/16) }

// measureStreaming streams a small file (streamSmallSize) and then the
// full one from a to b, and records the full one's rate, both transfers'
// growth of the server's resident memory, and checks each file's SHA-256
// against the data's.
func (f *FileStats) measureStreaming(ctx context.Context, e *env, a, b *fileClient, p fileParams) error {
	small := streamSmallSize(p.Size)
	rs, err := streamEndToEnd(ctx, e, a, b, p, small)
	if err != nil {
		return fmt.Errorf("%d bytes: %w", small, err)
	}
	rf, err := streamEndToEnd(ctx, e, a, b, p, p.Size)
	if err != nil {
		return fmt.Errorf("%d bytes: %w", p.Size, err)
	}
	f.StreamSec = rf.took.Seconds()
	f.StreamMBps = float64(p.Size) / megabyte / rf.took.Seconds()
	f.StreamSmallSize = small
	if e.pid > 0 {
		f.StreamRSSKnown = true
		f.StreamSmallRSSGrowthKB = (rs.rssPeak - rs.rssBefore) >> 10
		f.StreamRSSGrowthKB = (rf.rssPeak - rf.rssBefore) >> 10
		f.StreamRSSPeakKB = rf.rssPeak >> 10
	}
	// Off the clock: what the recipient wrote is the data sent.
	for _, r := range []struct {
		run  streamRun
		size int64
	}{{rs, small}, {rf, p.Size}} {
		want, err := streamSHA(ctx, p.Seed, r.size)
		if err != nil {
			return err
		}
		if !strings.EqualFold(r.run.sha, want) {
			return fmt.Errorf("%d bytes streamed with SHA-256 %s, sent %s", r.size, r.run.sha, want)
		}
	}
	return nil
}

// StreamMemoryFlat reports whether the server's peak resident memory grew
// no more (within streamFlatSlack) while streaming the full file than
// while streaming the small one.
func (f *FileStats) StreamMemoryFlat() bool {
	return f.StreamRSSKnown && f.StreamRSSGrowthKB-f.StreamSmallRSSGrowthKB <= streamFlatSlack>>10
}

// streamMemory describes the server's memory while streaming.
func (f *FileStats) streamMemory() string {
	verdict := "flat"
	if !f.StreamMemoryFlat() {
		verdict = "NOT flat"
	}
	return fmt.Sprintf("peak RSS +%d KiB streaming %.1f MB, +%d KiB streaming %.1f MB (peak %d KiB): %s (allowed: +%d KiB more)",
		f.StreamSmallRSSGrowthKB, float64(f.StreamSmallSize)/megabyte, f.StreamRSSGrowthKB, float64(f.Size)/megabyte,
		f.StreamRSSPeakKB, verdict, streamFlatSlack>>10)
}

// streamPingNonce is the nonce of the PING that confirms the recipient's
// PUSH reached the server before the sender starts.
const streamPingNonce = "1"

// streamRun is the outcome of one streamed transfer.
type streamRun struct {
	took time.Duration // from the sender's BEGINF to the recipient's fsync and hash check
	sha  string        // the recipient's SHA-256 of what it wrote (matched the server's)
	// The server's resident memory before the transfer and at its peak
	// during it, in bytes; zeros without the server's PID.
	rssBefore, rssPeak int64
}

// streamEndToEnd measures end-to-end STREAMING of one file of size bytes
// (the first size bytes of newDataGen(p.Seed)) from a to b's user while
// both are online: the server passes the file on as it arrives, while it
// still writes it to its spool, hashes and fsyncs it (PROTOCOL.md,
// "Streamed files"). The recipient is a new sslm/2 session of b's user
// (ALPN wire.ALPN) that sends PUSH and waits for the PONG of a PING before
// the sender starts; it writes the chunks into a file in p.TmpDir as the
// download into a file does (overlapped, durable.WriteBehind), hashing
// them on the way, and on STREAMEND checks the hash, fsyncs the file and
// confirms it with ACKF. A STREAMABORT, a hash that differs or a size that
// differs is an error. The time runs from a's BEGINF until the recipient
// has checked the hash and fsynced the file; a's "upload complete" must
// arrive too. The server's resident memory is sampled during the transfer.
func streamEndToEnd(ctx context.Context, e *env, a, b *fileClient, p fileParams, size int64) (streamRun, error) {
	r, err := dialStreamRecipient(ctx, e, b.name)
	if err != nil {
		return streamRun{}, fmt.Errorf("recipient: %w", err)
	}
	defer r.conn.Close()
	stopClose := context.AfterFunc(ctx, func() { r.conn.Close() })
	defer stopClose()

	f, err := os.CreateTemp(p.TmpDir, "loadgen-stream-*.bin")
	if err != nil {
		return streamRun{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()

	sampler, err := e.watchServer()
	if err != nil {
		return streamRun{}, err
	}
	defer sampler.finish()

	got := make(chan error, 1)
	var (
		shaGot string
		took   time.Duration
	)
	t0 := time.Now()
	go func() {
		var err error
		shaGot, err = r.receiveStream(f, size)
		took = time.Since(t0)
		got <- err
	}()
	if _, err := uploadFile(ctx, a, b.name, fileParams{Size: size, Seed: p.Seed}); err != nil {
		r.conn.Close() // ends the recipient's read
		<-got
		return streamRun{}, fmt.Errorf("upload: %w", err)
	}
	if err := <-got; err != nil {
		return streamRun{}, err
	}
	run := streamRun{took: took, sha: shaGot}
	run.rssBefore, run.rssPeak = sampler.finish()
	if err := r.quit(); err != nil {
		return streamRun{}, fmt.Errorf("recipient: %w", err)
	}
	return run, nil
}

// quit ends the session with END <user command> and waits for the
// server's END: the server handles lines in order, so by then it has
// taken the ACKF sent before.
func (r *streamRecipient) quit() error {
	r.conn.SetDeadline(time.Now().Add(quitWait))
	if err := r.write(wire.Quit{Token: r.token}, true); err != nil {
		return err
	}
	for {
		q, err := r.next()
		if err != nil {
			return fmt.Errorf("wait for END after END <user command>: %w", err)
		}
		if _, ok := q.(wire.End); ok {
			return nil
		}
	}
}

// streamRecipient is the receiving sslm/2 session of streamEndToEnd. Its
// one goroutine reads the connection.
type streamRecipient struct {
	*client
}

// dialStreamRecipient logs in as name over sslm/2, sends PUSH, and returns
// once a PING sent after it was answered: from then on every upload to
// name that starts is streamed to this session.
func dialStreamRecipient(ctx context.Context, e *env, name string) (*streamRecipient, error) {
	cfg := e.tls.Clone()
	cfg.NextProtos = []string{wire.ALPN}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: dialTimeout}, Config: cfg}
	raw, err := d.DialContext(ctx, "tcp", e.addr)
	if err != nil {
		return nil, err
	}
	conn := raw.(*tls.Conn)
	if got := conn.ConnectionState().NegotiatedProtocol; got != wire.ALPN {
		conn.Close()
		return nil, fmt.Errorf("the server negotiated ALPN %q, not %q: no streamed files", got, wire.ALPN)
	}
	c := &client{name: name, conn: conn, r: wire.NewReader(conn, fileReadBuffer),
		bw: bufio.NewWriterSize(conn, msgWriteBuffer), done: make(chan struct{})}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	conn.SetDeadline(time.Now().Add(loginTimeout))
	defer conn.SetDeadline(time.Time{})
	fail := func(err error) (*streamRecipient, error) {
		conn.Close()
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return nil, err
	}
	if err := c.login(logInOnly); err != nil {
		return fail(fmt.Errorf("log in %s: %w", name, err))
	}
	if err := c.write(wire.Push{Token: c.token}, false); err != nil {
		return fail(err)
	}
	if err := c.write(wire.Ping{Nonce: streamPingNonce, Token: c.token}, true); err != nil {
		return fail(err)
	}
	for {
		q, err := c.next()
		if err != nil {
			return fail(fmt.Errorf("wait for PONG: %w", err))
		}
		switch q := q.(type) {
		case wire.Pong:
			if q.Nonce == streamPingNonce {
				return &streamRecipient{c}, nil
			}
		case wire.End:
			return fail(fmt.Errorf("server ended the session: %s", q.Reason))
		}
		// Anything else queued for the session (CHECK, messages) is skipped.
	}
}

// receiveStream reads one streamed file of size bytes into f: STREAMF,
// CHUNK lines with their data (other lines between chunks are skipped),
// then STREAMEND, whose hash must match what arrived; then it fsyncs f
// and confirms the file with ACKF. It returns the file's hex SHA-256.
func (r *streamRecipient) receiveStream(f *os.File, size int64) (string, error) {
	var h wire.StreamHeader
	for {
		q, err := r.next()
		if err != nil {
			return "", fmt.Errorf("wait for STREAMF: %w", err)
		}
		if sh, ok := q.(wire.StreamHeader); ok {
			h = sh
			break
		}
		if err := streamOther(q, "before STREAMF"); err != nil {
			return "", err
		}
	}
	if h.Size != size {
		return "", fmt.Errorf("STREAMF announces %d bytes, want %d", h.Size, size)
	}
	sum := sha256.New()
	pipe := newFilePipe(sum, durable.NewWriteBehind(f, true))
	var got int64
	for {
		q, err := r.next()
		if err != nil {
			pipe.finish()
			return "", fmt.Errorf("after %d of %d bytes: %w", got, size, err)
		}
		switch q := q.(type) {
		case wire.Chunk:
			if int64(q.Size) > size-got {
				pipe.finish()
				return "", fmt.Errorf("CHUNK %d after %d bytes overruns the %d announced", q.Size, got, size)
			}
			if err := pipe.read(r.r, int64(q.Size)); err != nil {
				pipe.finish()
				return "", fmt.Errorf("chunk data after %d bytes: %w", got, err)
			}
			got += int64(q.Size)
		case wire.StreamAbort:
			pipe.finish()
			return "", fmt.Errorf("STREAMABORT after %d of %d bytes: %s", got, size, q.Reason)
		case wire.StreamEnd:
			if err := pipe.finish(); err != nil {
				return "", fmt.Errorf("write the streamed file: %w", err)
			}
			if got != size {
				return "", fmt.Errorf("STREAMEND after %d of %d bytes", got, size)
			}
			hexSum := hex.EncodeToString(sum.Sum(nil))
			if !strings.EqualFold(hexSum, q.SHA256) {
				return "", fmt.Errorf("SHA-256 mismatch: received %s, the server's %s", hexSum, q.SHA256)
			}
			if err := f.Sync(); err != nil {
				return "", err
			}
			if err := r.write(wire.AckFile{ID: q.ID, Token: r.token}, true); err != nil {
				return "", fmt.Errorf("ACKF: %w", err)
			}
			return hexSum, nil
		default:
			if err := streamOther(q, "inside the streamed file"); err != nil {
				pipe.finish()
				return "", err
			}
		}
	}
}

// streamOther checks a line that came outside a chunk's data: only lines
// that are not files may come there.
func streamOther(q wire.Query, where string) error {
	switch q := q.(type) {
	case wire.End:
		return fmt.Errorf("server ended the session %s: %s", where, q.Reason)
	case wire.FileHeader, wire.StreamHeader, wire.Begin, wire.FileEnd, wire.Chunk, wire.StreamEnd, wire.StreamAbort:
		return fmt.Errorf("unexpected %s %s", q.Verb(), where)
	}
	return nil
}

// filePipe hashes (sum, unless nil) and writes, on a goroutine of its own,
// the data read takes from the connection, gathered into whole buffers
// across the chunks of a stream.
type filePipe struct {
	free chan []byte
	full chan []byte
	done chan error
	cur  []byte // being filled; nil when none
}

func newFilePipe(sum hash.Hash, w io.Writer) *filePipe {
	p := &filePipe{free: make(chan []byte, 4), full: make(chan []byte, 4), done: make(chan error, 1)}
	for range cap(p.free) {
		p.free <- make([]byte, 0, fileReadBuffer)
	}
	go func() {
		var err error
		for b := range p.full {
			if sum != nil {
				sum.Write(b)
			}
			if err == nil {
				_, err = w.Write(b)
			}
			p.free <- b[:0]
		}
		p.done <- err
	}()
	return p
}

// read reads exactly n bytes from r into the pipe.
func (p *filePipe) read(r io.Reader, n int64) error {
	for n > 0 {
		if p.cur == nil {
			p.cur = <-p.free
		}
		k := int(min(n, int64(cap(p.cur)-len(p.cur))))
		m, err := io.ReadFull(r, p.cur[len(p.cur):len(p.cur)+k])
		p.cur = p.cur[:len(p.cur)+m]
		n -= int64(m)
		if len(p.cur) == cap(p.cur) {
			p.full <- p.cur
			p.cur = nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// finish hands on the part-filled buffer, waits until all is hashed and
// written, and returns the first write error.
func (p *filePipe) finish() error {
	if len(p.cur) > 0 {
		p.full <- p.cur
	}
	p.cur = nil
	close(p.full)
	return <-p.done
}
