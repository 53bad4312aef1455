package messenger

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"sslmessager/internal/wire"
)

// File transfer limits and timeouts.
const (
	// UploadAnswerTimeout bounds the wait for PROCEED or STOP after BEGINF.
	// Without an answer the stream is out of step and the connection closes.
	UploadAnswerTimeout = 30 * time.Second
	// UploadCommitTimeout bounds the wait for the server's verdict after
	// the data (it fsyncs the file first).
	UploadCommitTimeout = 2 * time.Minute
	// DataTimeout bounds each read of file data: a server that sends
	// nothing for this long in the middle of a file counts as gone.
	DataTimeout = 60 * time.Second
	// DefaultDownloads is the download directory when none is given.
	DefaultDownloads = "downloads"

	// maxFilesPerGet is the most files one CMD <get> brings; a download
	// asks again while rounds are full.
	maxFilesPerGet = 100
	// transferBufferSize is the one buffer a transfer streams through, so
	// memory is bounded whatever the file size.
	transferBufferSize = 256 << 10
	// maxLocalNameBytes bounds a saved file's name, leaving room for a
	// " (n)" before the extension within the usual 255-byte limit.
	maxLocalNameBytes = 200
	// maxExtBytes is the longest extension kept when a name is cut.
	maxExtBytes = 16
	// tempPrefix starts the names of files being written in the download
	// directory; saved names never start with a dot, so they cannot clash.
	tempPrefix = ".sslm-"
)

var transferBufs = sync.Pool{New: func() any { b := make([]byte, transferBufferSize); return &b }}

// UploadRefusedError is the server's STOP for an upload.
type UploadRefusedError struct {
	Name, Target string
	Reason       string // as the server sent it; Error sanitizes it
}

func (e *UploadRefusedError) Error() string { return "upload refused: " + Sanitize(e.Reason) }

// UploadFailedError is CMD <problem with command> after an upload's data:
// the server did not keep the file.
type UploadFailedError struct{ Name, Target string }

func (e *UploadFailedError) Error() string {
	return "upload of " + Sanitize(e.Name) + " to " + Sanitize(e.Target) + " failed: the server reported a problem"
}

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

// humanSize shows a byte count with decimal units: "0 B", "12 KB", "1.2 MB".
func humanSize(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	units := "KMGTPE"
	i := -1
	for v >= 999.95 && i < len(units)-1 {
		v /= 1000
		i++
	}
	if v < 9.95 {
		return fmt.Sprintf("%.1f %cB", v, units[i])
	}
	return fmt.Sprintf("%.0f %cB", v, units[i])
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// ---- uploads ----

// localFile is a file opened for upload.
type localFile struct {
	f    *os.File
	path string // as given, for messages
	name string // base name sent to the server
	size int64
}

// openUpload opens path for upload. It refuses, before anything is sent,
// what is not a readable regular file and a name the protocol cannot carry.
func openUpload(path string) (*localFile, error) {
	if path == "" {
		return nil, errors.New("no file given")
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, describeFileError(err)
	}
	if st.IsDir() {
		return nil, errors.New("is a directory")
	}
	if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, describeFileError(err)
	}
	fst, err := f.Stat()
	if err != nil || !fst.Mode().IsRegular() || !os.SameFile(st, fst) {
		f.Close()
		return nil, errors.New("changed while it was opened")
	}
	// One read proves the file is readable (a directory or an unreadable
	// mount fails here rather than after the server said PROCEED).
	if fst.Size() > 0 {
		var one [1]byte
		if _, err := f.ReadAt(one[:], 0); err != nil && !errors.Is(err, io.EOF) {
			f.Close()
			return nil, describeFileError(err)
		}
	}
	lf := &localFile{f: f, path: path, name: filepath.Base(path), size: fst.Size()}
	if lf.size > wire.MaxFileSize {
		f.Close()
		return nil, errors.New("too large for the protocol")
	}
	if _, err := wire.Format(wire.Upload{Name: lf.name, Target: "x", Size: lf.size, Token: "x"}); err != nil {
		f.Close()
		return nil, errors.New("file name too long to send")
	}
	return lf, nil
}

func describeFileError(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errors.New("no such file")
	case errors.Is(err, fs.ErrPermission):
		return errors.New("permission denied")
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// awaitFunc returns the server's next answer to an upload (PROCEED, STOP
// or a notice), waiting at most the given time.
type awaitFunc func(time.Duration) (wire.Query, error)

// uploadFile sends lf to the user to: BEGINF with its size, and only after
// PROCEED exactly its bytes and ENDF. Nothing else is written to the
// connection in between: the write lock is held from BEGINF to ENDF. A STOP
// is an *UploadRefusedError and leaves the connection in step; a missing
// answer or a failure while the data is sent closes the connection, which
// is then out of step. abort (may be nil) stops the upload.
func (c *Conn) uploadFile(lf *localFile, to string, await awaitFunc, p *printer, abort <-chan struct{}) error {
	begin, err := wire.Format(wire.Upload{Name: lf.name, Target: to, Size: lf.size, Token: c.token})
	if err != nil {
		return fmt.Errorf("cannot send %s: %w", Sanitize(lf.name), err)
	}
	c.wmu.Lock()
	locked := true
	unlock := func() {
		if locked {
			locked = false
			c.wmu.Unlock()
		}
	}
	defer unlock()
	if err := c.writeLocked(begin); err != nil {
		return err
	}
	q, err := await(UploadAnswerTimeout)
	if err != nil {
		c.Close()
		return err
	}
	switch q := q.(type) {
	case wire.Stop:
		return &UploadRefusedError{Name: lf.name, Target: to, Reason: q.Reason}
	case wire.Proceed:
	default:
		c.Close()
		return fmt.Errorf("unexpected answer to an upload: %s", Sanitize(q.Verb()))
	}
	if err := c.streamLocked(lf, p, abort); err != nil {
		c.Close()
		return err
	}
	if err := c.writeLocked(wire.MustFormat(wire.UploadEnd{Token: c.token})); err != nil {
		return err
	}
	unlock()
	if q, err = await(UploadCommitTimeout); err != nil {
		if errors.Is(err, errAnswerTimeout) {
			return errNoCommitAnswer
		}
		return err
	}
	if n, ok := q.(wire.Notice); ok {
		switch n.Text {
		case wire.NoticeUploadComplete:
			return nil
		case wire.NoticeProblem:
			return &UploadFailedError{Name: lf.name, Target: to}
		}
	}
	return fmt.Errorf("unexpected answer to an upload: %s", Sanitize(q.Verb()))
}

// streamLocked writes exactly lf.size bytes of lf; c.wmu is held.
func (c *Conn) streamLocked(lf *localFile, p *printer, abort <-chan struct{}) error {
	bufp := transferBufs.Get().(*[]byte)
	defer transferBufs.Put(bufp)
	buf := *bufp
	bar := p.newBar(lf.name, lf.size)
	defer bar.done()
	if _, err := lf.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	var sent int64
	for sent < lf.size {
		select {
		case <-abort:
			return errUploadAborted
		default:
		}
		n, err := io.ReadFull(lf.f, buf[:min(int64(len(buf)), lf.size-sent)])
		if n > 0 {
			if werr := c.writeLocked(buf[:n]); werr != nil {
				return werr
			}
			sent += int64(n)
			bar.add(n)
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%s shrank while it was sent (%d of %d bytes)", Sanitize(lf.path), sent, lf.size)
			}
			return fmt.Errorf("read %s: %w", Sanitize(lf.path), err)
		}
	}
	return nil
}

var (
	errUploadAborted = errors.New("upload interrupted")
	errAnswerTimeout = errors.New("the server did not answer")
	// errNoCommitAnswer: the data was sent but no verdict came in time.
	errNoCommitAnswer = errors.New("the data was sent but the server has not confirmed it yet")
)

// ---- downloads ----

// localName makes a file name from the server safe as one name in the
// download directory, more strictly than the server: the last path
// element, without control, format or other characters that are not
// shown as they are (so no raw escape sequence or bidi override), no
// leading or trailing dots and spaces (so never ".", ".." or a hidden
// file), at most maxLocalNameBytes; "file" if nothing is left.
func localName(name string) string {
	name = strings.TrimRight(name, `/\`)
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	var b strings.Builder
	for _, r := range name { // invalid UTF-8 arrives as U+FFFD, which is shown
		if r == ' ' || (isShown(r) && !unicode.IsSpace(r)) {
			b.WriteRune(r)
		}
	}
	trim := func(s string) string {
		return strings.TrimFunc(s, func(r rune) bool { return r == '.' || r == ' ' })
	}
	name = trim(b.String())
	if len(name) > maxLocalNameBytes {
		ext := filepath.Ext(name)
		if len(ext) > maxExtBytes || len(ext) == len(name) {
			ext = ""
		}
		name = trim(cutRunes(name[:len(name)-len(ext)], maxLocalNameBytes-len(ext))) + ext
		name = trim(name)
	}
	if name == "" {
		return "file"
	}
	return name
}

// cutRunes returns the longest prefix of s of at most n bytes that ends on
// a rune boundary.
func cutRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// commitFile gives the finished temporary file tmp in dir the name name, or
// "stem (1).ext", "stem (2).ext", ... if that exists. It never replaces an
// existing file: the new name is created by a hard link, which fails if
// the name exists; where hard links are not supported, the name is first
// claimed with O_EXCL and the file renamed onto that claim.
func commitFile(dir, tmp, name string) (string, error) {
	stem, ext := name, filepath.Ext(name)
	if ext != "" && ext != name {
		stem = name[:len(name)-len(ext)]
	} else {
		ext = ""
	}
	for i := 0; i < 100000; i++ {
		cand := name
		if i > 0 {
			cand = fmt.Sprintf("%s (%d)%s", stem, i, ext)
		}
		p := filepath.Join(dir, cand)
		lerr := os.Link(tmp, p)
		if lerr == nil {
			os.Remove(tmp)
			syncDir(dir) // best effort: the file itself is synced
			return cand, nil
		}
		if errors.Is(lerr, fs.ErrExist) {
			continue
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", lerr
		}
		f.Close()
		if err := os.Rename(tmp, p); err != nil {
			os.Remove(p)
			return "", err
		}
		syncDir(dir)
		return cand, nil
	}
	return "", errors.New("no free file name")
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// prepareDownloads creates dir (0700, with its parents) if it is missing.
func prepareDownloads(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("download directory: %w", err)
	}
	return nil
}

// journal remembers the ids of files saved but perhaps not yet confirmed:
// a confirmation (ACKF) lost with the connection makes the server send
// the file again, and the journal lets the next download confirm it
// without saving a second copy. A complete download forgets the ids the
// server no longer sent. One journal per user and download directory.
type journal struct {
	path string
	ids  map[string]string // id -> sha256
}

func journalPath(dir, user string) string {
	key := strings.ToLower(user)
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			sum := sha256.Sum256([]byte(user))
			key = hex.EncodeToString(sum[:8])
			break
		}
	}
	return filepath.Join(dir, tempPrefix+"received-"+key)
}

// openJournal reads the journal; a missing or damaged one is empty.
func openJournal(dir, user string) *journal {
	j := &journal{path: journalPath(dir, user), ids: map[string]string{}}
	f, err := os.Open(j.path)
	if err != nil {
		return j
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 64<<20))
	for sc.Scan() {
		if id, sum, ok := strings.Cut(sc.Text(), " "); ok && id != "" && sum != "" {
			j.ids[id] = sum
		}
	}
	return j
}

func (j *journal) has(id, sum string) bool {
	return id != "" && strings.EqualFold(j.ids[id], sum)
}

// add records id durably.
func (j *journal) add(id, sum string) error {
	if id == "" {
		return nil
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "%s %s\n", id, strings.ToLower(sum))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		j.ids[id] = strings.ToLower(sum)
	}
	return err
}

// keepOnly forgets every id not in keep.
func (j *journal) keepOnly(keep map[string]bool) error {
	drop := false
	for id := range j.ids {
		if !keep[id] {
			delete(j.ids, id)
			drop = true
		}
	}
	if !drop {
		return nil
	}
	if len(j.ids) == 0 {
		if err := os.Remove(j.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(j.path), tempPrefix+"journal-*")
	if err != nil {
		return err
	}
	w := bufio.NewWriter(tmp)
	for id, sum := range j.ids {
		fmt.Fprintf(w, "%s %s\n", id, sum)
	}
	err = w.Flush()
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), j.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
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

	files    int // files received, whatever became of them
	saved    int // new files saved
	again    int // files saved before and confirmed again
	mismatch int // checksum mismatches, kept on the server
	notSaved int // local failures, kept on the server

	roundCount int // files announced by the last BEGIN
	roundAcked int // files of this round confirmed
}

func newDownloader(c *Conn, dir string, out *printer) *downloader {
	return &downloader{c: c, dir: dir, out: out, journal: openJournal(dir, c.user), seen: map[string]bool{}}
}

func (d *downloader) startRound(count int) {
	d.roundCount, d.roundAcked = count, 0
}

// more says whether the last round was full and made progress, so that
// asking again can bring more files.
func (d *downloader) more() bool {
	return d.roundCount >= maxFilesPerGet && d.roundAcked > 0
}

// finish prints the summary and forgets the journal entries the server no
// longer holds. It returns a *ChecksumError if some files were kept on the
// server.
func (d *downloader) finish() error {
	if err := d.journal.keepOnly(d.seen); err != nil {
		d.out.line("! download journal: " + Sanitize(err.Error()))
	}
	switch {
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

// nextHeader reads the line that starts the next file of a round.
func (d *downloader) nextHeader() (wire.FileHeader, error) {
	for {
		d.c.tc.SetReadDeadline(time.Now().Add(DataTimeout))
		q, err := d.c.read()
		if err != nil {
			return wire.FileHeader{}, err
		}
		switch q := q.(type) {
		case wire.FileHeader:
			return q, nil
		case wire.Check:
		default:
			return wire.FileHeader{}, fmt.Errorf("the server sent %s where a file should start", Sanitize(q.Verb()))
		}
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
	name := localName(h.Name)
	from := Sanitize(h.Sender)
	desc := fmt.Sprintf("%s from %s", name, from)

	known := d.journal.has(h.ID, h.SHA256)
	var f *os.File
	var werr error
	if !known {
		if f, werr = os.CreateTemp(d.dir, tempPrefix+"*.part"); werr != nil {
			werr = fmt.Errorf("cannot create a file in %s: %w", d.dir, describeFileError(werr))
		}
	}
	defer func() {
		if f != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()

	bufp := transferBufs.Get().(*[]byte)
	defer transferBufs.Put(bufp)
	buf := *bufp
	hash := sha256.New()
	bar := d.out.newBar(name, h.Size)
	for left := h.Size; left > 0; {
		n := int(min(int64(len(buf)), left))
		d.c.tc.SetReadDeadline(time.Now().Add(DataTimeout))
		if _, err := io.ReadFull(d.c.r, buf[:n]); err != nil {
			bar.done()
			return false, dataError(err)
		}
		hash.Write(buf[:n])
		if f != nil && werr == nil {
			_, werr = f.Write(buf[:n])
		}
		left -= int64(n)
		bar.add(n)
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
	if werr == nil {
		werr = f.Sync()
	}
	if werr == nil {
		werr = f.Close()
	} else {
		f.Close()
	}
	var final string
	if werr == nil {
		final, werr = commitFile(d.dir, f.Name(), name)
	}
	if werr != nil {
		d.notSaved++
		var pe *fs.PathError
		if errors.As(werr, &pe) {
			werr = pe.Err
		}
		d.out.line("! " + desc + ": not saved (" + Sanitize(werr.Error()) + "), kept on the server")
		return false, nil
	}
	f = nil // committed: keep it
	if err := d.journal.add(h.ID, sum); err != nil {
		d.out.line("! download journal: " + Sanitize(err.Error()))
	}
	d.saved++
	d.out.linef("saved %s (%s, sha256 ok) -> %s", desc, humanSize(h.Size), Sanitize(filepath.Join(d.dir, final)))
	return true, nil
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
