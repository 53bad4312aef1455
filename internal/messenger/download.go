package messenger

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sslmessager/internal/durable"
	"sslmessager/internal/wire"
)

// Downloads: the files of one CMD <get ack> (one or more rounds) read
// from the connection, checked against their SHA-256, saved under a free
// name and only then confirmed.

// ChecksumError is Download's error when files did not match their SHA-256
// (or could not be saved): they stay queued on the server.
type ChecksumError struct {
	Mismatched int // SHA-256 mismatches
	NotSaved   int // local errors (disk full, permissions)
}

func (e *ChecksumError) Error() string {
	var parts []string
	if e.Mismatched > 0 {
		parts = append(parts, plural(e.Mismatched, "file")+" failed the checksum")
	}
	if e.NotSaved > 0 {
		parts = append(parts, plural(e.NotSaved, "file")+" could not be saved")
	}
	return strings.Join(parts, " and ") + "; kept on the server"
}

// prepareDownloads creates dir (0700, with its parents) if it is missing,
// and fsyncs the parent of each directory it created, so that files saved
// and confirmed in it survive a crash.
func prepareDownloads(dir string) error {
	var missing []string
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil || !errors.Is(err, fs.ErrNotExist) {
			break
		}
		missing = append(missing, p)
		if filepath.Dir(p) == p {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("download directory: %w", err)
	}
	for _, p := range missing {
		if err := durable.SyncDir(filepath.Dir(p)); err != nil {
			return fmt.Errorf("download directory: %w", err)
		}
	}
	return nil
}

// downloader saves the files of one download (one or more CMD <get ack>
// rounds) into dir. It reads file data from the connection; the caller
// sends the confirmations.
type downloader struct {
	c       *Conn
	dir     string
	out     *printer
	journal *journal
	seen    map[string]bool // ids the server sent in this download
	// syncDir fsyncs the download directory after a file got its name;
	// durable.SyncDir (tests make it fail).
	syncDir func(dir string) error
	// other, if set, handles a line the server sent between two files
	// (the chat session's handle); nil skips messages and fails on the
	// rest. done ends the download.
	other func(wire.Query) (done bool, err error)
	// confirm, if set, confirms a file received out of turn (a push
	// that started while a streamed file waited for its sender's key).
	confirm func(id string)
	// e2e opens encrypted files (e2efile.go); nil: saved as they come.
	e2e *fileOpener
	// cutShort says the one-shot session ended before the server
	// confirmed the quit: finish does not report a clean download.
	cutShort bool

	files    int // files received, whatever became of them
	saved    int // new files saved
	again    int // files saved before and confirmed again
	mismatch int // checksum mismatches, kept on the server
	notSaved int // local failures, kept on the server

	roundCount int // files announced by the last BEGIN
	roundAcked int // files of this round confirmed
}

// newDownloader starts a download into dir: it removes the temporary
// files an earlier, crashed run left there and reads the journal.
func newDownloader(c *Conn, dir string, out *printer) *downloader {
	if n := removeStaleParts(dir); n > 0 {
		out.line("removed " + plural(n, "unfinished file") + " left by an earlier download")
	}
	return &downloader{c: c, dir: dir, out: out, journal: openJournal(dir, c.user),
		seen: map[string]bool{}, syncDir: durable.SyncDir}
}

func (d *downloader) startRound(count int) {
	d.roundCount, d.roundAcked = count, 0
}

// more says whether the last round was full and made progress, so that
// asking again can bring more files.
func (d *downloader) more() bool {
	return d.roundCount >= wire.MaxFilesPerGet && d.roundAcked > 0
}

// finish prints the summary and forgets the journal entries the server no
// longer holds. It returns a *ChecksumError if some files were kept on the
// server.
func (d *downloader) finish() error {
	if err := d.journal.keepOnly(d.seen); err != nil {
		d.out.line("! download journal: " + Sanitize(err.Error()))
	}
	switch {
	case d.cutShort:
		// The session ended before the server confirmed the quit: the
		// files are saved, but their confirmations may be lost. A file
		// that comes again is recognised by the received-record file.
		d.out.line("saved " + plural(d.saved+d.again, "file") + " before the session ended; one the server sends again is not saved twice")
	case d.files == 0:
		d.out.line("no files waiting")
	default:
		s := "downloaded " + plural(d.saved+d.again, "file")
		if k := d.mismatch + d.notSaved; k > 0 {
			s += ", " + plural(k, "file") + " kept on the server"
		}
		d.out.line(s)
	}
	if d.mismatch > 0 || d.notSaved > 0 {
		return &ChecksumError{Mismatched: d.mismatch, NotSaved: d.notSaved}
	}
	return nil
}

// nextHeader reads the line that starts the next file of a round: a
// wire.FileHeader, or a wire.StreamHeader (GETLIVE, stream.go).
func (d *downloader) nextHeader() (wire.Query, error) {
	for {
		d.c.tc.SetReadDeadline(time.Now().Add(DataTimeout))
		q, err := d.c.read()
		if err != nil {
			return nil, err
		}
		switch q := q.(type) {
		case wire.FileHeader, wire.StreamHeader:
			return q, nil
		case wire.Check:
		case wire.Begin, wire.FileEnd:
			return nil, fmt.Errorf("the server sent %s where a file should start", Sanitize(q.Verb()))
		default:
			if err := d.between(q, "where a file should start"); err != nil {
				return nil, err
			}
		}
	}
}

// between handles a line that arrived between two files (CMD <get ack>) or
// two chunks of a streamed file: the chat handles it as it would any
// other; a one-shot download, like its other waits, skips messages. where
// completes the error for a line that has no place there.
func (d *downloader) between(q wire.Query, where string) error {
	if d.other != nil {
		done, err := d.other(q)
		if err != nil {
			return err
		}
		if done {
			return errors.New("the session ended during the download")
		}
		return nil
	}
	switch q := q.(type) {
	case wire.Check, wire.Relay, wire.RelayGroup, wire.Carbon, wire.NotOnline, wire.RelayQueued, wire.Key, wire.KeyChange:
		return nil
	case wire.End:
		return &ClosedError{Reason: q.Reason, Fatal: q.Fatal}
	}
	return fmt.Errorf("the server sent %s %s", Sanitize(q.Verb()), where)
}

// receiveNext saves the file that h (from nextHeader) starts, queued or
// streamed, and returns whether to confirm it and its id.
func (d *downloader) receiveNext(h wire.Query) (ack bool, id string, err error) {
	switch h := h.(type) {
	case wire.FileHeader:
		ack, err := d.receive(h)
		return ack, h.ID, err
	case wire.StreamHeader:
		return d.receiveStream(h)
	}
	return false, "", fmt.Errorf("the server sent %s where a file should start", Sanitize(h.Verb()))
}

// createSink creates the temporary file a received file is written into
// (createPart) and the write-behind writer in front of it. When the file
// cannot be created, f and sink are nil and werr says why: the data is
// then only hashed, to keep the stream in step, and reported not saved.
func (d *downloader) createSink() (f *os.File, sink io.Writer, werr error) {
	f, err := createPart(d.dir)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot create a file in %s: %w", d.dir, describeFileError(err))
	}
	return f, durable.NewWriteBehind(f, true), nil
}

// discardPart closes and removes f, a temporary file that was not named;
// nil is a no-op.
func discardPart(f *os.File) {
	if f != nil {
		f.Close()
		os.Remove(f.Name())
	}
}

// receive reads the data and end line of the file h announced, saves it
// and reports whether to confirm it. The file is written to a temporary
// file while its SHA-256 is computed, fsynced, and only with a matching
// checksum given a free name. An error means the stream broke (or is out
// of step) and the connection must close; nothing was saved then.
func (d *downloader) receive(h wire.FileHeader) (ack bool, err error) {
	defer d.c.tc.SetReadDeadline(time.Time{})
	d.files++
	if h.ID != "" {
		d.seen[h.ID] = true
	}
	name := wire.CleanFileName(h.Name, maxLocalNameBytes)
	from := Sanitize(h.Sender)
	desc := fmt.Sprintf("%s from %s", name, from)

	known := d.journal.has(h.ID, h.SHA256)
	var f *os.File
	var sink io.Writer
	var werr error
	if !known {
		f, sink, werr = d.createSink()
	}
	defer func() { discardPart(f) }()

	hash := sha256.New()
	bar := d.out.newBar(name, h.Size)
	werr2, err := d.readData(h.Size, hash, sink, bar)
	if err != nil {
		bar.done()
		return false, err
	}
	if werr == nil {
		werr = werr2
	}
	bar.done()
	d.c.tc.SetReadDeadline(time.Now().Add(DataTimeout))
	q, err := d.c.read()
	if err != nil {
		return false, dataError(err)
	}
	if _, ok := q.(wire.FileEnd); !ok {
		return false, fmt.Errorf("the server sent %s where a file should end", Sanitize(q.Verb()))
	}

	sum := hex.EncodeToString(hash.Sum(nil))
	if !strings.EqualFold(sum, h.SHA256) {
		d.mismatch++
		d.out.line("! " + desc + ": checksum mismatch, kept on the server")
		return false, nil
	}
	if known {
		d.again++
		d.out.linef("already saved %s (%s, sha256 ok); confirmed", desc, humanSize(h.Size))
		return true, nil
	}
	if werr == nil && d.sealed(h) {
		return d.openSealed(h, f, sum), nil // e2efile.go; f is removed below
	}
	ok := d.save(f, werr, name, desc, "sha256 ok", h.Size, h.ID, sum)
	f = nil // closed, named or removed by save
	return ok, nil
}

// save gives f, a received file whose SHA-256 matched (werr: the first
// error writing it), its mode, fsyncs it and names it; then it records the
// id in the journal. how says in the "saved" line what was checked ("sha256
// ok"). It reports whether to confirm the file. f is closed, and removed
// unless it was named.
func (d *downloader) save(f *os.File, werr error, name, desc, how string, size int64, id, sum string) bool {
	defer func() { discardPart(f) }()
	// The file stays open, and so locked against removeStaleParts in
	// another client, until it has its name.
	if werr == nil {
		// Checked: the file gets the mode a new file of the user's gets.
		werr = f.Chmod(savedFileMode())
	}
	if werr == nil {
		werr = f.Sync()
	}
	var final string
	if werr == nil {
		final, werr = commitFile(d.dir, f.Name(), name, d.syncDir)
	}
	if werr != nil {
		d.notSaved++
		werr = hideTempName(werr)
		d.out.line("! " + desc + ": not saved (" + Sanitize(werr.Error()) + "), kept on the server")
		return false
	}
	f.Close() // synced before it got its name: nothing more to learn
	f = nil   // committed: keep it
	if err := d.journal.add(id, sum); err != nil {
		d.out.line("! download journal: " + Sanitize(err.Error()))
	}
	d.saved++
	d.out.linef("saved %s (%s, %s) -> %s", desc, humanSize(size), how, Sanitize(filepath.Join(d.dir, final)))
	return true
}

// readData reads size bytes of file data from the connection. While the
// next buffer is read and decrypted, a second goroutine hashes the last
// one and writes it to sink (nil: hash only), so that the two halves of
// the work use two cores, as the server does with an upload. werr is
// sink's first write error (the rest is still read and hashed, to keep
// the stream in step); err means the stream broke.
func (d *downloader) readData(size int64, hash io.Writer, sink io.Writer, bar *transferBar) (werr, err error) {
	p := newDataPipe(hash, sink)
	err = p.read(d.c, size, bar)
	return p.finish(), err
}

// dataPipe hashes and writes, in a goroutine of its own, the file data
// that read takes from the connection; one pipe can take the data of many
// reads (the chunks of a streamed file) without a pause between them.
type dataPipe struct {
	free chan *[]byte
	full chan dataChunk
	done chan error
}

type dataChunk struct {
	bufp *[]byte
	n    int
}

// pipeDepth is how many buffers a pipe has: one being read, one written.
const pipeDepth = 2

func newDataPipe(hash, sink io.Writer) *dataPipe {
	p := &dataPipe{free: make(chan *[]byte, pipeDepth), full: make(chan dataChunk, pipeDepth), done: make(chan error, 1)}
	for range pipeDepth {
		p.free <- transferBufs.Get().(*[]byte)
	}
	go func() {
		var werr error
		for c := range p.full {
			b := (*c.bufp)[:c.n]
			hash.Write(b)
			if sink != nil && werr == nil {
				_, werr = sink.Write(b)
			}
			p.free <- c.bufp
		}
		p.done <- werr
	}()
	return p
}

// read reads size bytes from c into the pipe.
func (p *dataPipe) read(c *Conn, size int64, bar *transferBar) error {
	for left := size; left > 0; {
		bufp := <-p.free
		n := int(min(int64(len(*bufp)), left))
		c.tc.SetReadDeadline(time.Now().Add(DataTimeout))
		if _, rerr := io.ReadFull(c.r, (*bufp)[:n]); rerr != nil {
			p.free <- bufp
			return dataError(rerr)
		}
		p.full <- dataChunk{bufp, n}
		left -= int64(n)
		bar.add(n)
	}
	return nil
}

// finish waits until everything read is hashed and written, ends the
// goroutine and returns sink's first write error.
func (p *dataPipe) finish() error {
	close(p.full)
	werr := <-p.done
	for range pipeDepth {
		transferBufs.Put(<-p.free)
	}
	return werr
}

func dataError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrConnectionClosed
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return errors.New("the server stopped sending file data")
	}
	return fmt.Errorf("read from server: %w", err)
}
