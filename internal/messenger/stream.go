package messenger

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"sslmessager/internal/wire"
)

// Streamed files (sslm/2): a file uploaded to us while we are online
// arrives as the server receives it (PROTOCOL.md, "Streamed files"). It is
// saved as a download is: into a temporary file while its SHA-256 is
// computed, and named, fsynced and confirmed only once the server has sent
// the hash of the whole file and it matched. An upload that breaks off
// leaves nothing: the temporary file is removed.

// receiveStream reads the chunks and the end line of the streamed file h
// announced, saves it and reports whether to confirm it and its id. The
// lines the server sends between two chunks go to between. An error means
// the stream broke (or is out of step) and the connection must close;
// nothing was saved then.
func (d *downloader) receiveStream(h wire.StreamHeader) (ack bool, id string, err error) {
	defer d.c.tc.SetReadDeadline(time.Time{})
	d.files++
	name := wire.CleanFileName(h.Name, maxLocalNameBytes)
	desc := fmt.Sprintf("%s from %s", name, Sanitize(h.Sender))

	f, sink, werr := d.createSink()
	defer func() { discardPart(f) }()
	hash := sha256.New()
	bar := d.out.newBar(name, h.Size)
	defer bar.done()
	// One pipe for all the chunks: hashing and writing one overlaps with
	// reading the next.
	pipe := newDataPipe(hash, sink)
	piped := true
	endPipe := func() {
		if piped {
			piped = false
			if w2 := pipe.finish(); werr == nil {
				werr = w2
			}
		}
	}
	defer endPipe()
	var got int64
	for {
		// The sender sets the pace: between chunks the server sends the
		// session's lines, CHECK at least, and ends a stalled upload.
		d.c.tc.SetReadDeadline(time.Now().Add(DataTimeout))
		q, err := d.c.read()
		if err != nil {
			return false, "", dataError(err)
		}
		switch q := q.(type) {
		case wire.Chunk:
			if int64(q.Size) > h.Size-got {
				return false, "", fmt.Errorf("the server sent more than the %d bytes of %s", h.Size, desc)
			}
			if err := pipe.read(d.c, int64(q.Size), bar); err != nil {
				return false, "", err
			}
			got += int64(q.Size)
		case wire.StreamAbort:
			bar.done()
			d.out.line("! " + desc + ": " + Sanitize(q.Reason) + "; nothing saved")
			return false, "", nil
		case wire.StreamEnd:
			bar.done()
			endPipe() // all hashed and written
			if got != h.Size {
				return false, "", fmt.Errorf("the server ended %s after %d of %d bytes", desc, got, h.Size)
			}
			d.seen[q.ID] = true
			sum := hex.EncodeToString(hash.Sum(nil))
			if !strings.EqualFold(sum, q.SHA256) {
				d.mismatch++
				d.out.line("! " + desc + ": checksum mismatch, kept on the server")
				return false, "", nil
			}
			if d.journal.has(q.ID, q.SHA256) {
				d.again++
				d.out.linef("already saved %s (%s, sha256 ok); confirmed", desc, humanSize(h.Size))
				return true, q.ID, nil
			}
			if fh := (wire.FileHeader{Name: h.Name, Size: h.Size, Sender: h.Sender, ID: q.ID, SHA256: q.SHA256}); werr == nil && d.sealed(fh) {
				ok, err := d.openStreamed(fh, f, sum) // e2efile.go; f is removed below
				return ok, q.ID, err
			}
			ok := d.save(f, werr, name, desc, "sha256 ok", h.Size, q.ID, sum)
			f = nil // closed, named or removed by save
			return ok, q.ID, nil
		case wire.Check:
		case wire.FileHeader, wire.StreamHeader, wire.Begin, wire.FileEnd:
			return false, "", fmt.Errorf("the server sent %s inside a streamed file", Sanitize(q.Verb()))
		default:
			if err := d.between(q, "inside a streamed file"); err != nil {
				return false, "", err
			}
		}
	}
}

// receivePush runs in the receiver on a STREAMF outside a download (the
// session asked for pushes): it saves the file and queues its
// confirmation.
func (s *session) receivePush(h wire.StreamHeader) error {
	d := s.dl
	if d == nil {
		// Without the directory the file is read past and reported as
		// not saved; it stays on the server.
		prepareDownloads(s.downloads)
		d = newDownloader(s.c, s.downloads, s.out)
		d.other = s.handleServer
		// Encrypted files are opened as in a download; on first contact
		// the sender's key is awaited in place (e2efile.go openStreamed).
		d.e2e = s.sessionFileOpener()
		if d.e2e != nil {
			d.e2e.inline = true
		}
		d.confirm = func(id string) { s.sendq.push(wire.AckFile{ID: id, Token: s.c.token}) }
	}
	ack, id, err := d.receiveStream(h)
	if err != nil {
		return err
	}
	if ack && id != "" {
		s.sendq.push(wire.AckFile{ID: id, Token: s.c.token})
	}
	return nil
}
