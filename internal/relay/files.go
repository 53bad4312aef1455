package relay

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/dustin/go-humanize"

	"sslmessager/internal/spool"
	"sslmessager/internal/wire"
)

var (
	lineProceed        = wire.MustFormat(wire.Proceed{})
	lineUploadComplete = wire.MustFormat(wire.Notice{Text: wire.NoticeUploadComplete})
	lineProblem        = wire.MustFormat(wire.Notice{Text: wire.NoticeProblem})
	lineSendComplete   = wire.MustFormat(wire.Notice{Text: wire.NoticeSendComplete})
	lineFileEnd        = wire.MustFormat(wire.FileEnd{})
	lineBeginNone      = wire.MustFormat(wire.Begin{Count: 0})
	lineStopError      = wire.MustFormat(wire.Stop{Reason: reasonServerError})
	lineFilesGone      = wire.MustFormat(wire.End{Reason: "queued files changed during the download, ask again"})
)

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// Read is the session's view of its connection for the wire.Reader. While
// an upload runs, every read must make progress within UploadIdleTimeout.
func (c *session) Read(p []byte) (int, error) {
	if c.uploading {
		wait := c.srv.conf().UploadIdleTimeout
		if c.holding {
			// Part of a buffer is read: hand it on once the sender
			// pauses, so that a stream to the recipient does not wait.
			wait = min(wait, quietWait)
		}
		c.conn.SetReadDeadline(time.Now().Add(wait))
	}
	return c.conn.Read(p)
}

// quietWait is how long an upload's reader waits for more data before it
// writes a partly filled buffer to the spool.
const quietWait = 10 * time.Millisecond

// BEGINF name target size token, or the original's BEGINF name target token
// whose data ends at the line ENDF token.
func (c *session) handleUpload(q wire.Upload) bool {
	sentinel := q.Size < 0
	stop := func(reason string) bool {
		c.send(c.format(wire.Stop{Reason: reason}, lineStopError))
		if sentinel {
			// The original client sends its data without waiting for an
			// answer: read past it so the stream stays in step.
			return c.discardUpload(q.Token)
		}
		return true
	}
	sp := c.srv.cfg.Spool
	if sp == nil {
		return stop("file transfer is not enabled on this server")
	}
	target, ok := c.srv.cfg.Accounts.Lookup(q.Target)
	if !ok {
		return stop("no such user: " + wire.Quote(q.Target))
	}
	up, err := sp.Begin(c.user, target.Name, q.Name, q.Size)
	switch {
	case errors.Is(err, spool.ErrTooLarge):
		return stop("file too large (the limit is " + SizeText(sp.MaxFileSize()) + ")")
	case errors.Is(err, spool.ErrQuota):
		return stop("recipient's file queue is full")
	case errors.Is(err, spool.ErrTooManyFiles):
		return stop(fmt.Sprintf("recipient's file queue is full (%d files)", sp.MaxQueuedFiles()))
	case errors.Is(err, spool.ErrSpoolFull), errors.Is(err, spool.ErrStorageFull):
		return stop("server storage is full")
	case err != nil:
		c.logger().Error("upload refused", "err", err)
		return stop(reasonServerError)
	}
	c.send(lineProceed)
	w := &spoolWriter{up: up}
	if !sentinel {
		// A sized upload can be streamed to its recipient (stream.go);
		// whatever happens below ends it, committed or aborted.
		var finish func(bool, spool.Meta)
		w.live, finish = c.startLive(up, target.Name, q.Name, q.Size)
		var m spool.Meta
		ok := false
		defer func() { finish(ok, m) }()
		w.committed = func(cm spool.Meta) { ok, m = true, cm }
	}

	c.uploading = true
	defer func() {
		c.uploading = false
		c.conn.SetReadDeadline(time.Time{})
	}()
	bufp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bufp)
	if sentinel {
		_, _, err = c.r.CopyUntil(w, uploadEnds(q.Token), wire.MaxFileSize)
	} else {
		lr := &io.LimitedReader{R: c.r, N: q.Size}
		err = copyPipelined(w, lr, *bufp, func(on bool) { c.holding = on })
		if w.err != nil {
			// The spool refused the data (disk full): the rest still
			// arrives, so read past it and the ENDF line.
			_, err = io.CopyBuffer(io.Discard, lr, *bufp)
			if err == nil {
				err = w.err
			}
		}
		if err == nil || w.err != nil && errors.Is(err, w.err) {
			if eerr := c.expectUploadEnd(q.Token); eerr != nil {
				err = eerr
			}
		}
	}
	if err != nil {
		up.Abort()
		var pe *wire.ProtocolError
		switch {
		case errors.As(err, &pe):
			c.fail(wire.ReasonProtocol, pe.Error(), "BEGINF")
		case errors.Is(err, errBadUploadToken):
			c.fail(reasonBadToken, "wrong token on ENDF", "ENDF")
		case w.err != nil && errors.Is(err, w.err):
			// Refused by the spool; the stream is in step again (a
			// sentinel upload after reading past its data).
			c.logger().Info("upload refused", "err", err)
			c.send(lineProblem)
			return true
		case errors.Is(err, wire.ErrTooMuchData):
			c.send(lineProblem)
			return true
		case errors.Is(err, os.ErrDeadlineExceeded):
			c.fail(reasonUploadTimeout, "upload idle", "BEGINF")
		default:
			c.logger().Info("upload cut off", "err", err)
		}
		return false
	}
	if w.live != nil {
		w.live.setState(liveCommitting, spool.Meta{})
	}
	m, err := up.Commit("")
	if err != nil {
		c.logger().Info("upload failed", "err", err)
		c.send(lineProblem)
		return true
	}
	if !c.dropIfRecipientGone(m.Recipient, m.ID) { // account deleted meanwhile (account_cmds.go)
		c.send(lineProblem)
		return true
	}
	if w.committed != nil {
		w.committed(m) // a streamed copy ends with STREAMEND now
	}
	c.logger().Info("file queued", "to", m.Recipient, "id", m.ID, "bytes", m.Size)
	c.srv.events.Uploaded(m.Size)
	c.send(lineUploadComplete)
	return true
}

// spoolWriter remembers the spool's own write error, to tell it from a
// read error of the connection. It has only Write, so io.CopyBuffer uses
// the pooled buffer.
type spoolWriter struct {
	up  *spool.Upload
	err error
	// live, for a sized upload, is told each write (a stream follows it);
	// committed is called once the file is queued for good.
	live      *liveUpload
	committed func(spool.Meta)
}

func (w *spoolWriter) Write(p []byte) (int, error) {
	n, err := w.up.Write(p)
	if err != nil && w.err == nil {
		w.err = err
	}
	if w.live != nil {
		w.live.wrote(n)
		if err != nil {
			// The spool aborted the upload: a stream of it ends now, not
			// once the rest of the data has been read past.
			w.live.setState(liveAborted, spool.Meta{})
		}
	}
	return n, err
}

// copyPipelined copies all of lr to w in writes of a whole buffer: a TLS
// read yields one record (16 KiB) at most, and gathering them first saves
// most of the write calls per byte. While one buffer is written (hashed and
// written to the spool file) by a second goroutine, the next is read and
// decrypted, so the two halves of the work use both cores. hold, if not
// nil, is told whether a buffer is partly filled; a read that then times
// out (os.ErrDeadlineExceeded) hands the part on and reading goes on, so
// the data reaches w even while the sender pauses.
func copyPipelined(w io.Writer, lr *io.LimitedReader, first []byte, hold func(bool)) error {
	second := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(second)
	free := make(chan []byte, 2)
	free <- first
	free <- *second
	full := make(chan []byte, 2)
	werr := make(chan error, 1)
	go func() {
		var err error
		for b := range full {
			if err == nil {
				_, err = w.Write(b)
			}
			free <- b[:cap(b)]
		}
		werr <- err
	}()
	var rerr error
	for lr.N > 0 {
		buf := <-free
		n, err := fill(lr, buf[:min(int64(len(buf)), lr.N)], hold)
		if n > 0 {
			full <- buf[:n]
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			rerr = err
			break
		}
	}
	close(full)
	if err := <-werr; err != nil {
		return err
	}
	return rerr
}

// fill reads into buf until it is full, as io.ReadFull does; with hold,
// a timeout once buf holds something ends it early without an error.
func fill(r io.Reader, buf []byte, hold func(bool)) (int, error) {
	if hold == nil {
		return io.ReadFull(r, buf)
	}
	defer hold(false)
	n := 0
	for n < len(buf) {
		hold(n > 0)
		k, err := r.Read(buf[n:])
		n += k
		if err != nil {
			if n > 0 && n < len(buf) && errors.Is(err, os.ErrDeadlineExceeded) {
				return n, nil
			}
			if n == len(buf) {
				return n, nil
			}
			if errors.Is(err, io.EOF) && n > 0 {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
	}
	return n, nil
}

var errBadUploadToken = errors.New("relay: wrong token on ENDF")

// expectUploadEnd reads the ENDF token line that follows sized data.
func (c *session) expectUploadEnd(token string) error {
	line, err := c.r.ReadLine()
	if err != nil {
		return err
	}
	q, err := wire.ParseClient(line)
	if err != nil {
		return err
	}
	end, ok := q.(wire.UploadEnd)
	if !ok {
		return &wire.ProtocolError{Verb: q.Verb(), Reason: "want ENDF after the file data"}
	}
	if subtle.ConstantTimeCompare([]byte(end.Token), []byte(c.token)) != 1 || token != end.Token {
		return errBadUploadToken
	}
	return nil
}

// uploadEnds are the lines that end the data of a sentinel upload.
func uploadEnds(token string) [][]byte {
	return [][]byte{[]byte("ENDF " + token + " \r\n"), []byte("ENDF " + token + "\r\n")}
}

// discardUpload reads and drops a refused sentinel upload's data; false
// ends the session (with an END line when the client is to blame).
func (c *session) discardUpload(token string) bool {
	c.uploading = true
	defer func() {
		c.uploading = false
		c.conn.SetReadDeadline(time.Time{})
	}()
	_, _, err := c.r.CopyUntil(io.Discard, uploadEnds(token), wire.MaxFileSize)
	switch {
	case err == nil:
		return true
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.fail(reasonUploadTimeout, "refused upload idle", "BEGINF")
	case errors.Is(err, wire.ErrTooMuchData):
		return true // read through its end line: in step
	}
	return false
}

// getJob is one CMD <get>: the writer goroutine streams it whole.
type getJob struct {
	ack     bool          // the client confirms each file with ACKF; keep files until then
	offline *offlineLease // not files: the user's stored messages (offline.go)
	live    bool          // GETLIVE: the uploads under way follow the queued files, streamed (stream.go)
	push    *liveUpload   // not a download: one upload streamed on its own (PUSH, stream.go)
}

// CMD <get> token, CMD <get ack> token
func (c *session) handleGet(q wire.Get) bool {
	if c.srv.cfg.Spool == nil {
		c.send(lineBeginNone)
		c.send(lineSendComplete)
		return true
	}
	if c.out.enqueueJob(&getJob{ack: q.Ack}) == overflow {
		c.dropSlow()
		return false
	}
	return true
}

// ACKF id token: the client has the whole file and its hash matched.
func (c *session) handleAck(q wire.AckFile) bool {
	if sp := c.srv.cfg.Spool; sp != nil {
		if err := sp.Remove(c.user, q.ID); err != nil {
			c.logger().Debug("ACKF for no queued file", "id", q.ID, "err", err)
		} else {
			c.logger().Info("file delivered", "id", q.ID)
		}
	}
	return true
}

// sendFiles runs in the writer goroutine: BEGIN n, then each file's header
// line, data and end marker, then CMD <file send complete>. It reads only
// the metadata of the files it announces and opens each file just before
// sending it. Without ack a file leaves the queue once all of it and its
// end marker were written. With ack (our client) the lines queued while
// the download streams are sent between two files; the original clients
// get them after CMD <file send complete>. An error means the stream is
// broken and the connection must close.
func (c *session) sendFiles(j *getJob) error {
	if j.offline != nil {
		return c.sendOffline(j.offline)
	}
	c.out.setDownloading(true)
	defer c.out.setDownloading(false)
	bufp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bufp)
	if j.push != nil {
		return c.streamFile(j.push, false, *bufp)
	}
	sp := c.srv.cfg.Spool
	metas, err := sp.List(c.user, wire.MaxFilesPerGet)
	if err != nil {
		c.logger().Error("list files", "err", err)
	}
	var live []*liveUpload
	if j.live {
		// Claimed after the list: an upload still running now was not
		// in it, so no file comes twice.
		live = c.srv.streams.claimRunning(c.key, wire.MaxFilesPerGet-len(metas))
	}
	begin, err := wire.Format(wire.Begin{Count: len(metas) + len(live)})
	if err != nil {
		return err
	}
	if _, err := c.conn.Write(begin); err != nil {
		return err
	}
	sent := make(map[string]bool, len(metas))
	for i := range metas {
		if i > 0 && c.out.isClosing() {
			// The session is ending (kicked, evicted, shut down): stop
			// here; the rest stays queued, and the writer sends the
			// session's last line (its END reason) next.
			c.logger().Info("download stopped: the session is ending", "announced", len(metas), "sent", i)
			return nil
		}
		f, m, err := c.openNext(metas, i, sent)
		if err != nil {
			c.logger().Info("closing: announced files gone", "announced", len(metas), "sent", i)
			c.conn.Write(lineFilesGone) // the stream cannot go on; say why
			return err
		}
		err = c.sendFile(f, m, j.ack, *bufp)
		f.Close()
		if err != nil {
			return err
		}
		if j.ack && i < len(metas)+len(live)-1 {
			if err := c.sendWaitingLines(); err != nil {
				return err
			}
		}
	}
	for i, l := range live {
		if c.out.isClosing() {
			return nil
		}
		if err := c.streamFile(l, true, *bufp); err != nil {
			return err
		}
		if i < len(live)-1 {
			if err := c.sendWaitingLines(); err != nil {
				return err
			}
		}
	}
	_, err = c.conn.Write(lineSendComplete)
	return err
}

// errFileGone ends a download whose announced files were all removed
// before they could be sent (another session of the user confirmed them).
var errFileGone = errors.New("relay: queued files removed during a download")

// openNext opens the file to send as the i-th of a download. When the
// listed one is gone (another of the user's sessions confirmed it since
// the list was read), a queued file not sent yet takes its place, so the
// count announced by BEGIN holds.
func (c *session) openNext(metas []spool.Meta, i int, sent map[string]bool) (*os.File, spool.Meta, error) {
	sp := c.srv.cfg.Spool
	if f, m, err := sp.Open(c.user, metas[i].ID); err == nil {
		if !sent[m.ID] {
			sent[m.ID] = true
			return f, m, nil
		}
		f.Close()
	}
	later := make(map[string]bool, len(metas)-i)
	for _, m := range metas[i+1:] {
		later[m.ID] = true
	}
	all, _ := sp.List(c.user, len(sent)+len(later)+1)
	for _, m := range all {
		if sent[m.ID] || later[m.ID] {
			continue
		}
		if f, m, err := sp.Open(c.user, m.ID); err == nil {
			sent[m.ID] = true
			return f, m, nil
		}
	}
	return nil, spool.Meta{}, errFileGone
}

// sendFile writes one file's header line, its data and its end marker.
func (c *session) sendFile(f *os.File, m spool.Meta, ack bool, buf []byte) error {
	header, err := wire.Format(wire.FileHeader{Name: m.Name, Size: m.Size, Sender: m.Sender, SHA256: m.SHA256, ID: m.ID})
	if err != nil {
		return err
	}
	if _, err := c.conn.Write(header); err != nil {
		return err
	}
	if err := c.writeData(f, m.Size, buf); err != nil {
		return err
	}
	if _, err := c.conn.Write(lineFileEnd); err != nil {
		return err
	}
	if !ack {
		if err := c.bc.flush(); err != nil {
			return err
		}
		if err := c.srv.cfg.Spool.Remove(c.user, m.ID); err != nil {
			c.logger().Error("remove delivered file", "id", m.ID, "err", err)
		}
	}
	c.logger().Info("file sent", "id", m.ID, "bytes", m.Size, "ack", ack)
	c.srv.events.Sent(m.Size)
	return nil
}

// sendWaitingLines writes, between two files of a download, the lines
// queued for this session up to its next download.
func (c *session) sendWaitingLines() error {
	lines := c.out.takeLines()
	n := 0
	var err error
	for _, it := range lines {
		if err == nil {
			_, err = c.conn.Write(it.line)
		}
		n += it.cost()
	}
	c.out.sent(n)
	return err
}

// writeData sends exactly size bytes of f, each TLS record holding only
// file data. No record starts with "ENDF": the earlier original client
// takes any such record as the end of the file, so a boundary that would
// fall there moves back one byte (and a file that starts with it goes out
// as a first record of one byte).
func (c *session) writeData(f *os.File, size int64, buf []byte) error {
	var read int64
	pending := 0 // bytes at the start of buf read but not yet sent
	first := true
	for read < size || pending > 0 {
		n, err := io.ReadFull(f, buf[pending:pending+int(min(int64(len(buf)-pending), size-read))])
		if err != nil {
			return fmt.Errorf("read queued file after %d bytes: %w", read, err)
		}
		read += int64(n)
		chunk := buf[:pending+n]
		last := read == size
		for len(chunk) > 0 {
			if !last && len(chunk) < wire.MaxRecordData+4 {
				break // the next boundary depends on bytes not read yet
			}
			k := min(len(chunk), wire.MaxRecordData)
			if first && startsENDF(chunk) {
				k = 1
			} else if k < len(chunk) && startsENDF(chunk[k:]) {
				k--
			}
			first = false
			if _, err := c.conn.Write(chunk[:k]); err != nil {
				return err
			}
			chunk = chunk[k:]
		}
		pending = copy(buf, chunk)
	}
	return nil
}

func startsENDF(b []byte) bool {
	return len(b) >= 4 && b[0] == 'E' && b[1] == 'N' && b[2] == 'D' && b[3] == 'F'
}

// SizeText writes a size in bytes for people: "1 GiB", "512 KiB",
// "1536 MiB", "1.5 GiB", "999 B" (exact in the largest binary unit that divides it,
// else rounded to one decimal).
func SizeText(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + " " + u.name
		}
	}
	if n < 0 {
		return strconv.FormatInt(n, 10) + " B"
	}
	return humanize.IBytes(uint64(n))
}
