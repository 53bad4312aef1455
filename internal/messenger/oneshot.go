package messenger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"sslmessager/internal/wire"
)

// TransferOptions shape the one-shot Upload and Download.
type TransferOptions struct {
	// Out receives one line per step ("uploading ...", "saved ... -> path");
	// nil discards them.
	Out io.Writer
	// Progress receives progress bars; nil shows none.
	Progress io.Writer
	// Keys and E2E: end-to-end encryption of uploads and decryption of
	// downloads (e2efile.go), as SendOptions; Keys nil: plaintext.
	Keys *Keys
	E2E  E2EPolicy

	// syncDir replaces durable.SyncDir for Download (tests make it fail).
	syncDir func(dir string) error
}

func (o TransferOptions) printer() *printer {
	p := &printer{w: o.Out}
	if p.w == nil {
		p.w = io.Discard
	}
	if o.Progress != nil {
		p.setProgress(o.Progress, false, 0)
	}
	return p
}

// CheckUploadFile says why path cannot be uploaded (not a readable regular
// file, or a name the protocol cannot carry), or nil.
func CheckUploadFile(path string) error {
	lf, err := openUpload(path)
	if err != nil {
		return fmt.Errorf("cannot upload %s: %w", displayName(path), err)
	}
	lf.f.Close()
	return nil
}

// Upload is the one-shot upload: it sends each file of paths in turn to the
// user to (who may be offline), then quits. Every file is checked before
// anything is sent. It stops at the first refusal, an *UploadRefusedError,
// or failure; with several paths the error is then a *PartialUploadError
// that wraps it and lists the files delivered and not. c must be logged in; Upload closes c only when ctx ends or
// the stream broke.
func Upload(ctx context.Context, c *Conn, to string, paths []string, opts TransferOptions) error {
	if c.token == "" {
		return errors.New("not logged in")
	}
	if err := wire.CheckUserName(to); err != nil {
		return fmt.Errorf("target: %w", err)
	}
	if len(paths) == 0 {
		return errors.New("no file to upload")
	}
	for _, path := range paths {
		if err := CheckUploadFile(path); err != nil {
			return err
		}
	}
	p := opts.printer()
	defer p.close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	await := func(limit time.Duration) (wire.Query, error) {
		return c.expect(limit, func(q wire.Query) bool {
			switch q := q.(type) {
			case wire.Proceed, wire.Stop:
				return true
			case wire.Notice:
				return q.Text != wire.NoticeSendComplete
			}
			return false
		})
	}
	seal, err := oneShotUploadKey(c, opts, to, p) // e2efile.go
	if err != nil {
		return err
	}
	var delivered []string
	partial := func(err error, at int) error {
		if len(paths) < 2 {
			return err
		}
		rest := make([]string, 0, len(paths)-at)
		for _, p := range paths[at:] {
			rest = append(rest, displayName(p))
		}
		return &PartialUploadError{Delivered: delivered, NotDelivered: rest, Err: err}
	}
	for i, path := range paths {
		lf, err := openUpload(path)
		if err != nil {
			return partial(fmt.Errorf("cannot upload %s: %w", displayName(path), err), i)
		}
		name, who, tag := displayName(lf.name), Sanitize(to), ""
		if seal != nil {
			if err := lf.sealFor(opts.Keys.id, c.user, seal); err != nil {
				lf.f.Close()
				return partial(fmt.Errorf("cannot upload %s: %w", name, err), i)
			}
			tag = " [e2e]"
		} else if opts.Keys != nil && opts.E2E != E2EOff && c.KeyDirectory() {
			tag = " [plain]"
		}
		p.linef("uploading %s (%s) to %s%s…", name, humanSize(lf.size), who, tag)
		err = c.uploadFile(lf, to, await, p, ctx.Done())
		lf.f.Close()
		if err != nil {
			if ctx.Err() != nil {
				return partial(ctx.Err(), i)
			}
			return partial(c.closedBy(err), i)
		}
		p.linef("upload complete: %s to %s", name, who)
		delivered = append(delivered, displayName(path))
	}
	return c.quitOneShot(ctx)
}

// PartialUploadError is a one-shot upload of several files that stopped
// part way: it says which files the server has (the recipient gets them)
// and which it does not.
type PartialUploadError struct {
	Delivered    []string // display names of the files the server acknowledged, in order
	NotDelivered []string // the file that failed, then those not tried
	Err          error    // why it stopped
}

func (e *PartialUploadError) Error() string {
	n := len(e.Delivered) + len(e.NotDelivered)
	done := "none"
	if len(e.Delivered) > 0 {
		done = strings.Join(e.Delivered, ", ")
	}
	return fmt.Sprintf("%v; delivered %d of %d files: %s; not delivered: %s",
		e.Err, len(e.Delivered), n, done, strings.Join(e.NotDelivered, ", "))
}

func (e *PartialUploadError) Unwrap() error { return e.Err }

// Download is the one-shot download: it saves every file queued for the
// user into dir (created 0700 if missing; "" is DefaultDownloads), as
// :download: does, confirming each file once it is saved, then quits. It
// returns a *ChecksumError when files failed their checksum or could not
// be saved (they stay queued on the server). c must be logged in.
func Download(ctx context.Context, c *Conn, dir string, opts TransferOptions) error {
	if c.token == "" {
		return errors.New("not logged in")
	}
	if dir == "" {
		dir = DefaultDownloads
	}
	if err := prepareDownloads(dir); err != nil {
		return err
	}
	p := opts.printer()
	defer p.close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	fail := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return c.closedBy(err)
	}
	d := newDownloader(c, dir, p)
	if opts.syncDir != nil {
		d.syncDir = opts.syncDir
	}
	if opts.Keys != nil && opts.E2E != E2EOff && c.KeyDirectory() {
		d.e2e = oneShotFileOpener(c, opts.Keys) // e2efile.go
	}
	for {
		if err := c.send(c.getQuery()); err != nil { // files.go
			return fail(err)
		}
		q, err := c.expect(UploadAnswerTimeout, func(q wire.Query) bool { _, ok := q.(wire.Begin); return ok })
		if err != nil {
			return fail(err)
		}
		count := q.(wire.Begin).Count
		d.startRound(count)
		for range count {
			h, err := d.nextHeader()
			if err != nil {
				return fail(err)
			}
			ack, id, err := d.receiveNext(h)
			if err != nil {
				return fail(err)
			}
			if ack {
				d.roundAcked++
				if id != "" {
					if err := c.send(wire.AckFile{ID: id, Token: c.token}); err != nil {
						return fail(err)
					}
				}
			}
		}
		if _, err := c.expect(DataTimeout, func(q wire.Query) bool {
			n, ok := q.(wire.Notice)
			return ok && n.Text == wire.NoticeSendComplete
		}); err != nil {
			return fail(err)
		}
		if !d.more() {
			if !d.retryHeld() {
				break
			}
			if err := d.e2e.fetchHeld(c, opts.Keys, d.out); err != nil { // e2efile.go
				return fail(err)
			}
		}
	}
	// Quit before the summary: a session the server ended instead (it is
	// shutting down) must not read as a clean download.
	qerr := c.quitOneShot(ctx)
	d.cutShort = qerr != nil
	ferr := d.finish()
	if qerr != nil {
		return qerr
	}
	return ferr
}

// endReadLimit bounds the look for the server's END after a one-shot
// command's write or read failed.
const endReadLimit = 2 * time.Second

// closedBy explains err, a one-shot command's failure: when the
// connection broke, the server's END still to be read says why (a server
// shutting down sends END <server shutting down> before it closes), as a
// *ClosedError; otherwise "connection to the server lost: " and err.
// Other errors are returned as they are.
func (c *Conn) closedBy(err error) error {
	var ce *ClosedError
	var oe *net.OpError
	switch {
	case errors.As(err, &ce):
		return err
	case errors.As(err, &oe), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
	default:
		return err
	}
	if _, rerr := c.expect(endReadLimit, func(wire.Query) bool { return false }); errors.As(rerr, &ce) {
		return ce
	}
	return fmt.Errorf("connection to the server lost: %w", err)
}

// expect reads server lines until one that match accepts, skipping the
// rest (CHECK, messages, which a one-shot command does not show). END is a
// *ClosedError; no matching line within limit wraps errAnswerTimeout.
func (c *Conn) expect(limit time.Duration, match func(wire.Query) bool) (wire.Query, error) {
	c.tc.SetReadDeadline(time.Now().Add(limit))
	defer c.tc.SetReadDeadline(time.Time{})
	for {
		q, err := c.read()
		var pe *wire.ProtocolError
		if errors.As(err, &pe) {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("%w within %v", errAnswerTimeout, limit)
		}
		if err != nil {
			return nil, err
		}
		if match(q) {
			return q, nil
		}
		if e, ok := q.(wire.End); ok {
			return nil, &ClosedError{Reason: e.Reason, Fatal: e.Fatal}
		}
	}
}

// quitOneShot ends a one-shot session: Quit, then END <end accepted>. The
// work is done by then, so a server that closes without answering is no
// failure; an END with another reason is.
func (c *Conn) quitOneShot(ctx context.Context) error {
	if err := c.send(wire.Quit{Token: c.token}); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return c.closedBy(err)
	}
	_, err := c.expect(QuitTimeout, func(q wire.Query) bool {
		e, ok := q.(wire.End)
		return ok && !e.Fatal && e.Reason == wire.ReasonEndAccepted
	})
	var ce *ClosedError
	if errors.As(err, &ce) {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}
