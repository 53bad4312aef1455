package messenger

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"sslmessager/internal/wire"
)

// File transfer in the interactive session.
//
// The receiver goroutine stays the only reader of the connection: it hands
// the answers to an upload (PROCEED, STOP and the final notice) to the input
// loop through a channel, and it reads downloaded files itself, handing the
// confirmations (ACKF) and any further CMD <get ack> to the send queue, a
// small goroutine that writes them under the connection's write lock. The
// input loop writes everything else; an upload holds the write lock from
// BEGINF to ENDF, so no other line can land inside the file data.

// :upload: PATH [NAME]
func cmdUpload(s *session, arg string) (bool, error) {
	path, to, err := parseUploadArg(arg, s.target)
	if err != nil {
		s.out.line("! " + err.Error())
		return false, nil
	}
	if s.downloading.Load() {
		s.out.line("! a download is running: upload when it is done")
		return false, nil
	}
	lf, err := openUpload(path)
	if err != nil {
		s.out.line("! cannot upload " + displayName(path) + ": " + Sanitize(err.Error()))
		return false, nil
	}
	defer lf.f.Close()
	tag, ok, err := s.e2eUpload(lf, to) // e2efile.go
	if !ok {
		return false, err
	}
	name, who := displayName(lf.name), Sanitize(to)
	s.out.linef("uploading %s (%s) to %s%s…", name, humanSize(lf.size), who, tag)

	answers := make(chan wire.Query, 2)
	s.fileMu.Lock()
	s.upAnswers = answers
	s.fileMu.Unlock()
	s.uploading.Store(true)
	defer func() {
		s.uploading.Store(false)
		s.fileMu.Lock()
		s.upAnswers = nil
		s.fileMu.Unlock()
	}()
	await := func(limit time.Duration) (wire.Query, error) {
		t := time.NewTimer(limit)
		defer t.Stop()
		select {
		case q := <-answers:
			return q, nil
		case <-s.recvGone:
			return nil, ErrConnectionClosed
		case <-s.cancel:
			return nil, errUploadAborted
		case <-t.C:
			return nil, fmt.Errorf("%w within %v", errAnswerTimeout, limit)
		}
	}
	err = s.c.uploadFile(lf, to, await, s.out, s.cancel)
	var refused *UploadRefusedError
	var failed *UploadFailedError
	switch {
	case err == nil:
		s.out.linef("upload complete: %s to %s", name, who)
	case errors.As(err, &refused):
		s.out.line("! " + refused.Error())
	case errors.As(err, &failed):
		s.out.line("! " + failed.Error())
	case s.stopped() || s.quitting.Load():
		return false, nil
	case errors.Is(err, errNoCommitAnswer):
		// The data went through and the stream is in step: the verdict
		// may still come and is shown when it does.
		s.out.line("! upload of " + name + " to " + who + ": " + err.Error())
	default:
		// The connection broke or is out of step and has been closed.
		s.out.line("! upload of " + name + " failed: " + Sanitize(err.Error()))
		return false, err
	}
	return false, nil
}

// parseUploadArg splits ":upload:"'s argument into the local path and the
// recipient. The rule (shown by :help:): a PATH with spaces is quoted ("my
// report.pdf" or 'my report.pdf'), optionally followed by NAME; unquoted,
// the whole argument is the path if such a file exists, else its last word
// is NAME and the rest the path. A leading ~/ is the home directory.
func parseUploadArg(arg, target string) (path, to string, err error) {
	arg = strings.TrimSpace(arg)
	if arg == "" {
		return "", "", errors.New("usage: :upload: PATH [NAME] (quote a PATH with spaces)")
	}
	to = target
	name := ""
	if q := arg[0]; q == '"' || q == '\'' {
		end := strings.IndexByte(arg[1:], q)
		if end < 0 {
			return "", "", fmt.Errorf("missing closing %c after the path", q)
		}
		path, name = arg[1:1+end], strings.TrimSpace(arg[2+end:])
	} else {
		path = arg
		if _, err := os.Lstat(expandHome(arg)); err != nil {
			if i := strings.LastIndexByte(arg, ' '); i >= 0 {
				path, name = strings.TrimSpace(arg[:i]), arg[i+1:]
			}
		}
	}
	if name != "" {
		if err := wire.CheckUserName(name); err != nil {
			return "", "", fmt.Errorf("upload: %w", err)
		}
		to = name
	}
	if path == "" {
		return "", "", errors.New("usage: :upload: PATH [NAME] (quote a PATH with spaces)")
	}
	return expandHome(path), to, nil
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}

// deliverUploadAnswer hands q to the upload in progress, if there is one.
func (s *session) deliverUploadAnswer(q wire.Query) bool {
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	if s.upAnswers == nil {
		return false
	}
	select {
	case s.upAnswers <- q:
		return true
	default:
		return false
	}
}

// :download:
func cmdDownload(s *session, _ string) (bool, error) {
	if s.downloading.Load() {
		s.out.line("! a download is already running")
		return false, nil
	}
	if err := prepareDownloads(s.downloads); err != nil {
		s.out.line("! " + Sanitize(err.Error()))
		return false, nil
	}
	s.fileMu.Lock()
	s.dlEnd = make(chan struct{})
	s.fileMu.Unlock()
	s.downloading.Store(true)
	// Confirmations still queued go first: the server then does not send
	// those files again.
	s.sendq.flush()
	return false, s.c.send(s.c.getQuery())
}

// getQuery asks for the queued files: with sslm/2, GETLIVE (the uploads
// under way follow, streamed), else CMD <get ack>.
func (c *Conn) getQuery() wire.Query {
	if c.ext {
		return wire.GetLive{Token: c.token}
	}
	return wire.Get{Ack: true, Token: c.token}
}

// receiveFiles runs in the receiver on BEGIN: it reads and saves count
// files and queues a confirmation for each one saved.
func (s *session) receiveFiles(count int) error {
	if s.dl == nil {
		// Without the directory each file is read past and reported as
		// not saved; it stays on the server.
		prepareDownloads(s.downloads)
		s.dl = newDownloader(s.c, s.downloads, s.out)
		s.dl.e2e = s.sessionFileOpener() // e2efile.go
	}
	s.dl.other = s.handleServer
	s.dl.startRound(count)
	for range count {
		h, err := s.dl.nextHeader()
		if err != nil {
			return err
		}
		ack, id, err := s.dl.receiveNext(h)
		if err != nil {
			return err
		}
		if ack {
			s.dl.roundAcked++
			if id != "" {
				s.sendq.push(wire.AckFile{ID: id, Token: s.c.token})
			}
		}
	}
	return nil
}

// endRound runs in the receiver on CMD <file send complete>: it asks for
// more after a full round, or ends the download.
func (s *session) endRound() {
	if s.dl.more() || s.dl.retryHeld() {
		s.sendq.push(s.c.getQuery())
		return
	}
	s.dl.finish()
	s.dl = nil
	s.downloading.Store(false)
	s.fileMu.Lock()
	if s.dlEnd != nil {
		close(s.dlEnd)
		s.dlEnd = nil
	}
	s.fileMu.Unlock()
}

// sendQueue writes the lines the receiver wants sent (confirmations and
// repeated gets) from a goroutine of its own, in order, under the
// connection's write lock.
type sendQueue struct {
	c      *Conn
	sendMu sync.Mutex // held while writing, so flush keeps the order
	mu     sync.Mutex
	items  []wire.Query
	wake   chan struct{}
}

func newSendQueue(c *Conn) *sendQueue {
	return &sendQueue{c: c, wake: make(chan struct{}, 1)}
}

func (q *sendQueue) push(x wire.Query) {
	q.mu.Lock()
	q.items = append(q.items, x)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// run writes queued lines until done closes.
func (q *sendQueue) run(done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case <-q.wake:
			q.flush()
		}
	}
}

// flush writes every queued line now. After a failed write the rest is
// dropped: the connection is gone and the receiver reports it.
func (q *sendQueue) flush() error {
	q.sendMu.Lock()
	defer q.sendMu.Unlock()
	for {
		q.mu.Lock()
		if len(q.items) == 0 {
			q.mu.Unlock()
			return nil
		}
		x := q.items[0]
		q.items = q.items[1:]
		q.mu.Unlock()
		if err := q.c.send(x); err != nil {
			q.mu.Lock()
			q.items = nil
			q.mu.Unlock()
			return err
		}
	}
}
