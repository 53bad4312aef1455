package messenger

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"sslmessager/internal/wire"
)

// Uploads: a local file checked before anything is sent, then BEGINF
// with its size, the data after PROCEED, ENDF and the server's verdict.

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

// localFile is a file opened for upload.
type localFile struct {
	f    *os.File
	path string // as given, for messages
	name string // base name (sent to the server unless sealed)
	size int64
	seal *fileSeal // end to end: how it is encrypted (e2efile.go); nil plaintext
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
	begin, err := wire.Format(wire.Upload{Name: lf.wireName(), Target: to, Size: lf.wireSize(), Token: c.token})
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
	if lf.seal != nil {
		return c.streamSealedLocked(lf, p, abort) // e2efile.go
	}
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
