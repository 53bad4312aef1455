package messenger

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"sslmessager/internal/e2e"
	"sslmessager/internal/e2e/trust"
	"sslmessager/internal/wire"
)

// Files end to end (PROTOCOL.md "End-to-end encrypted files").
//
// Upload: to a user with a key, the file goes as an age stream sealed to
// that user (e2e.Sealer.EncryptFile: real name, size and time inside),
// under a random wire name "<32 hex>.e2e" (e2e.WireFileName), with the
// ciphertext size (e2e.FileCiphertextSize) declared in BEGINF. To a keyless
// user the policy is that of direct messages: plaintext tagged [plain]
// under --e2e=prefer (with a notice before the upload starts), refused
// under --e2e=require.
//
// Download: a file whose wire name is an encrypted file's name is
// received and checked against the server's SHA-256 as any file, into a
// temporary file; then it is decrypted into a second temporary file, which
// is fsynced and given the sanitized decrypted name (with the usual
// collision rule) only after age's last chunk authenticated and the size
// matched. A file that does not decrypt is refused: it is confirmed (it
// can never become valid, and would otherwise come back at every
// download), nothing is named, no temporary file is left, and the user is
// told why. A file whose sender's key is not known yet stays on the
// server: the key is asked for, and the download asks for the file once
// more after it.

// fileSeal is how an upload is encrypted.
type fileSeal struct {
	sealer *e2e.Sealer
	to     *e2e.Bundle
	meta   e2e.FileMeta
	wire   string // the random name on the wire
}

// wireName is the name BEGINF carries.
func (lf *localFile) wireName() string {
	if lf.seal != nil {
		return lf.seal.wire
	}
	return lf.name
}

// wireSize is the size BEGINF declares.
func (lf *localFile) wireSize() int64 {
	if lf.seal != nil {
		return e2e.FileCiphertextSize(lf.size)
	}
	return lf.size
}

// sealFor makes lf go encrypted from the user holding id (registered as
// user) to the holder of to.
func (lf *localFile) sealFor(id *e2e.Identity, user string, to *e2e.Bundle) error {
	if e2e.FileCiphertextSize(lf.size) > wire.MaxFileSize {
		return errors.New("too large for the protocol once encrypted")
	}
	st, err := lf.f.Stat()
	if err != nil {
		return describeFileError(err)
	}
	name, err := e2e.WireFileName(nil)
	if err != nil {
		return err
	}
	lf.seal = &fileSeal{
		sealer: &e2e.Sealer{Self: id, Name: user},
		to:     to,
		meta:   e2e.FileMeta{Name: lf.name, Size: lf.size, ModTime: st.ModTime()},
		wire:   name,
	}
	return nil
}

// connWriter writes upload data to the connection (c.wmu held), counting
// it on the bar and stopping when abort closes.
type connWriter struct {
	c     *Conn
	bar   *transferBar
	abort <-chan struct{}
}

func (w *connWriter) Write(b []byte) (int, error) {
	select {
	case <-w.abort:
		return 0, errUploadAborted
	default:
	}
	if err := w.c.writeLocked(b); err != nil {
		return 0, err
	}
	w.bar.add(len(b))
	return len(b), nil
}

// streamSealedLocked writes lf encrypted: exactly lf.wireSize() bytes;
// c.wmu is held.
func (c *Conn) streamSealedLocked(lf *localFile, p *printer, abort <-chan struct{}) error {
	bar := p.newBar(lf.name, lf.wireSize())
	defer bar.done()
	if _, err := lf.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(&connWriter{c: c, bar: bar, abort: abort}, 2*(e2e.ChunkBytes+16))
	s := lf.seal
	w, err := s.sealer.EncryptFile(bw, s.meta, s.to)
	if err != nil {
		return fmt.Errorf("cannot encrypt %s: %w", Sanitize(lf.path), err)
	}
	bufp := transferBufs.Get().(*[]byte)
	defer transferBufs.Put(bufp)
	n, err := io.CopyBuffer(w, io.LimitReader(onlyReader{lf.f}, lf.size), *bufp)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return fmt.Errorf("read %s: %w", Sanitize(lf.path), err)
		}
		return err
	}
	if n < lf.size {
		return fmt.Errorf("%s shrank while it was sent (%d of %d bytes)", Sanitize(lf.path), n, lf.size)
	}
	if err := w.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// onlyReader hides the WriterTo/ReaderFrom of a file, so CopyBuffer goes
// through its buffer.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(b []byte) (int, error) { return o.r.Read(b) }

// e2eUpload applies the end-to-end policy to an upload of lf to to in the
// chat (input loop): it seals lf when to has a key and returns the tag to
// show (" [e2e]", " [plain]" or ""); ok false: not sent, the reason shown.
func (s *session) e2eUpload(lf *localFile, to string) (tag string, ok bool, err error) {
	if !s.e2eOn() {
		if ok, why := s.plainAllowed(to); !ok {
			s.out.line("! file not sent: " + Sanitize(why))
			return "", false, nil
		}
		return "", true, nil
	}
	if err := s.rotateIfDue(); err != nil {
		return "", false, err
	}
	b, _, err := s.peerKey(to)
	switch {
	case errors.Is(err, errNoKey):
		if ok, why := s.plainAllowed(to); !ok {
			s.out.line("! file not sent: " + Sanitize(why))
			return "", false, nil
		}
		return " " + s.markPlain(to), true, nil
	case err != nil:
		var kr *keyRefusal
		if errors.As(err, &kr) {
			s.out.line("! file not sent: " + Sanitize(kr.reason))
			return "", false, nil
		}
		return "", false, err
	}
	s.noteConversation(to)
	if err := lf.sealFor(s.identity(), s.c.user, b); err != nil {
		s.out.line("! file not sent: " + Sanitize(err.Error()))
		return "", false, nil
	}
	return " [e2e]", true, nil
}

// oneShotUploadKey applies the policy to a one-shot upload to to: the
// bundle to seal to, or nil for plaintext (with the notice printed on p).
func oneShotUploadKey(c *Conn, o TransferOptions, to string, p *printer) (*e2e.Bundle, error) {
	keys := o.Keys
	if o.E2E == E2EOff {
		keys = nil
	}
	if keys == nil || !c.KeyDirectory() {
		if o.E2E == E2ERequire {
			return nil, errors.New("not sent: this server has no key directory (or no end-to-end keys here), and --e2e=require refuses plaintext")
		}
		return nil, nil
	}
	b, err := oneShotKey(c, keys, to)
	if err != nil {
		return nil, err
	}
	if b == nil {
		if o.E2E == E2ERequire {
			return nil, fmt.Errorf("not sent: %s has no end-to-end key, and --e2e=require refuses plaintext", Sanitize(to))
		}
		p.line("! " + Sanitize(to) + " has no end-to-end key: the files go [plain], the server operator can read them")
	}
	return b, nil
}

// fileOpener decrypts the encrypted files of one download.
type fileOpener struct {
	opener   *e2e.Opener
	identity func(user string) (e2e.PublicIdentity, bool) // pinned, no network
	askKey   func(user string)                            // ask the directory (the answer pins it)
	contact  func(user string) (trust.Contact, bool)      // the trust store's entry for user
	held     map[string]bool                              // folded senders whose files wait for their key
	inline   bool                                         // a streamed file waits for its sender's key in place (chat)
	awaiting bool                                         // such a wait is under way
	retried  bool                                         // the download asked again once for held files
	waiting  int                                          // files held this round (counted as not saved)
	refused  int                                          // files that did not decrypt (confirmed, not saved)
}

// isWireFileName reports whether name is an encrypted file's wire name:
// 32 lower-case hex digits and ".e2e".
func isWireFileName(name string) bool {
	stem, ok := strings.CutSuffix(name, e2e.WireFileSuffix)
	if !ok || len(stem) != 32 {
		return false
	}
	for i := 0; i < len(stem); i++ {
		if c := stem[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// sealed reports whether the download handles h as an encrypted file.
func (d *downloader) sealed(h wire.FileHeader) bool {
	return d.e2e != nil && isWireFileName(h.Name)
}

// openStreamed is openSealed for a streamed file. In the chat a streamed
// file is not asked for again, so on first contact (the sender's key not
// known yet) the key is asked for and awaited here, for at most
// KeyTimeout, while the lines between are handled as ever; the checked
// ciphertext waits in its temporary file meanwhile. A second streamed file
// that starts during the wait is received (and, if its sender's key is
// unknown too, left on the server) before the wait goes on.
func (d *downloader) openStreamed(h wire.FileHeader, f *os.File, sum string) (bool, error) {
	o := d.e2e
	if _, ok := o.identity(h.Sender); !ok && o.inline && !o.awaiting {
		o.awaiting = true
		err := d.awaitKey(h.Sender)
		o.awaiting = false
		if err != nil {
			return false, err
		}
	}
	return d.openSealed(h, f, sum), nil
}

// awaitKey asks the directory for user's key and reads the connection
// until the answer has been handled (d.other pins it) or KeyTimeout
// passed. An error means the connection must close.
func (d *downloader) awaitKey(user string) error {
	o := d.e2e
	o.askKey(user)
	until := time.Now().Add(KeyTimeout)
	for time.Now().Before(until) {
		d.c.tc.SetReadDeadline(until)
		q, err := d.c.read()
		if err != nil {
			if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
				return nil // no answer: the file stays on the server
			}
			return dataError(err)
		}
		switch q := q.(type) {
		case wire.StreamHeader:
			ack, id, err := d.receiveStream(q)
			if err != nil {
				return err
			}
			if ack && id != "" && d.confirm != nil {
				d.confirm(id)
			}
			continue
		case wire.Key:
			if err := d.between(q, "while waiting for a key"); err != nil {
				return err
			}
			if wire.FoldName(q.User) == wire.FoldName(user) {
				return nil
			}
			continue
		}
		if err := d.between(q, "while waiting for a key"); err != nil {
			return err
		}
	}
	return nil
}

// openSealed decrypts the checked ciphertext in f (the temporary file
// receive wrote, checksum sum) from h.Sender and names the result; it
// returns whether to confirm the file. f stays the caller's to remove.
func (d *downloader) openSealed(h wire.FileHeader, f *os.File, sum string) bool {
	from := Sanitize(h.Sender)
	o := d.e2e
	// hold keeps the file on the server and asks the directory for the
	// sender's key; the download asks for the files once more after it.
	// A file pushed to the chat already waited for the key in place
	// (openStreamed): it stays for the next :download:.
	hold := func(why string) bool {
		if o.inline {
			d.notSaved++
			d.out.line("! an encrypted file from " + from + " stays on the server: " + why + "; :download: gets it later")
			return false
		}
		if o.held == nil {
			o.held = map[string]bool{}
		}
		if !o.held[wire.FoldName(h.Sender)] {
			o.askKey(h.Sender)
		}
		o.held[wire.FoldName(h.Sender)] = true
		o.waiting++
		d.notSaved++
		d.out.line("! an encrypted file from " + from + " waits on the server: " + why + "; asking the directory, then for the file again")
		return false
	}
	key, ok := o.identity(h.Sender)
	if !ok {
		return hold(from + "'s key is not known yet")
	}
	g, err := createPart(d.dir)
	if err != nil {
		d.notSaved++
		d.out.line("! an encrypted file from " + from + ": not saved (" + Sanitize(describeFileError(hideTempName(err)).Error()) + "), kept on the server")
		return false
	}
	keep := false
	defer func() {
		if !keep {
			g.Close()
			os.Remove(g.Name())
		}
	}()
	meta, n, derr, werr := decryptInto(o.opener, f, g, h.Sender, key)
	if errors.Is(derr, e2e.ErrSenderKey) && !o.retried {
		// Sealed by another identity than the one known for the sender:
		// the key may have changed (a new device). As for a direct
		// message, ask the directory once before refusing it for good.
		return hold("it was sealed by another key than the one known for " + from)
	}
	if derr != nil {
		o.refused++
		d.out.line("! REFUSED an encrypted file from " + from + " (" + Sanitize(h.Name) + "): " + describeFileOpenError(h.Sender, derr) +
			"; nothing was saved, and it is removed from the server")
		return true
	}
	name := wire.CleanFileName(meta.Name, maxLocalNameBytes)
	desc := fmt.Sprintf("%s from %s", name, from)
	if c, ok := o.contact(h.Sender); ok && c.Blocked {
		// A verified contact's new key, not accepted yet: as its
		// direct messages, the file says so.
		desc = fmt.Sprintf("%s from UNVERIFIED NEW KEY %s", name, from)
	}
	if werr == nil && !meta.ModTime.IsZero() {
		os.Chtimes(g.Name(), time.Now(), meta.ModTime) // best effort
	}
	keep = true // save closes g, and removes it unless it named it
	return d.save(g, werr, name, desc, "end-to-end encrypted, authenticated", n, h.ID, sum)
}

// decryptInto decrypts the ciphertext in f into g. derr: the file does
// not decrypt (forged, altered, cut, not for us); werr: g could not be
// written or f read.
func decryptInto(o *e2e.Opener, f, g *os.File, from string, key e2e.PublicIdentity) (meta e2e.FileMeta, n int64, derr, werr error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return meta, 0, nil, err
	}
	src := &readErrs{r: bufio.NewReaderSize(f, 256<<10)}
	meta, r, err := o.DecryptFile(src, from, key)
	if err != nil {
		if src.err != nil {
			return meta, 0, nil, src.err
		}
		return meta, 0, err, nil
	}
	bufp := transferBufs.Get().(*[]byte)
	defer transferBufs.Put(bufp)
	dst := &writeErrs{w: g}
	n, err = io.CopyBuffer(dst, onlyReader{r}, *bufp)
	switch {
	case src.err != nil:
		return meta, n, nil, src.err
	case dst.err != nil:
		return meta, n, nil, dst.err
	case err != nil:
		return meta, n, err, nil
	case n != meta.Size:
		return meta, n, e2e.ErrFileSize, nil
	}
	return meta, n, nil, nil
}

// readErrs and writeErrs keep the local I/O errors apart from the
// decryption's.
type readErrs struct {
	r   io.Reader
	err error
}

func (r *readErrs) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}

type writeErrs struct {
	w   io.Writer
	err error
}

func (w *writeErrs) Write(b []byte) (int, error) {
	n, err := w.w.Write(b)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

// describeFileOpenError says why an encrypted file did not open.
func describeFileOpenError(sender string, err error) string {
	name := Sanitize(sender)
	switch {
	case errors.Is(err, e2e.ErrUnknownPrekey):
		return "the prekey it was sealed to has expired or is unknown"
	case errors.Is(err, e2e.ErrSenderKey):
		return "it was sealed by another identity key than " + name + "'s (forged, or " + name + "'s key changed)"
	case errors.Is(err, e2e.ErrUnwrap), errors.Is(err, e2e.ErrStanza):
		return "it was not sealed by " + name + " to you (forged or altered)"
	case errors.Is(err, e2e.ErrFileSize), errors.Is(err, io.ErrUnexpectedEOF):
		return "it is cut or does not match its size (altered on the way)"
	}
	return "it does not authenticate (altered or cut on the way): " + Sanitize(err.Error())
}

// retryHeld says whether the download should ask for the files once more
// because keys of their senders were asked for; once per download. The
// held files then no longer count as not saved: they come again.
func (d *downloader) retryHeld() bool {
	o := d.e2e
	if o == nil || len(o.held) == 0 || o.retried {
		return false
	}
	o.retried = true
	d.notSaved -= o.waiting
	d.files -= o.waiting
	o.waiting = 0
	return true
}

// sessionFileOpener is the chat's opener: keys from the session, asked
// for through the send queue (the receiver pins the answer).
func (s *session) sessionFileOpener() *fileOpener {
	if !s.e2eOn() {
		return nil
	}
	return &fileOpener{
		opener:   s.opener(),
		identity: s.peerIdentity,
		contact:  s.e2e.keys.contact,
		askKey: func(user string) {
			s.e2e.mu.Lock()
			p := s.e2e.entry(user)
			p.asked = true
			s.e2e.mu.Unlock()
			s.sendq.push(wire.GetKey{User: user, Token: s.c.token})
		},
	}
}

// oneShotFileOpener is the one-shot download's opener: askKey notes the
// sender; fetchHeld asks the directory between two rounds.
func oneShotFileOpener(c *Conn, k *Keys) *fileOpener {
	return &fileOpener{
		opener:   &e2e.Opener{Self: k.id, Name: c.user, Prekeys: k.prekey},
		identity: k.pinnedIdentity,
		contact:  k.contact,
		askKey:   func(string) {},
	}
}

// fetchHeld asks the directory for the keys of the senders whose files
// were held, and pins them (one-shot; reads the connection itself).
func (o *fileOpener) fetchHeld(c *Conn, k *Keys, p *printer) error {
	for user := range o.held {
		if err := c.send(wire.GetKey{User: user, Token: c.token}); err != nil {
			return err
		}
	}
	want := len(o.held)
	q, err := c.expect(KeyTimeout, func(q wire.Query) bool {
		key, ok := q.(wire.Key)
		if !ok || !o.held[wire.FoldName(key.User)] {
			return false
		}
		if key.Bundle != "" {
			if b, err := e2e.ParseBundle(key.Bundle); err == nil && wire.FoldName(b.User) == wire.FoldName(key.User) {
				var obs trust.Observation
				err := k.trustDo(func(t *trust.Store) error {
					var err error
					obs, err = t.Observe(key.User, safetyKeyOf(b.Identity()))
					return err
				})
				name := Sanitize(key.User)
				switch {
				case err != nil:
					p.line("! cannot record " + name + "'s end-to-end key: " + Sanitize(err.Error()))
				case obs.Kind == trust.KeyChanged && obs.Blocked:
					p.line("! WARNING: " + name + "'s end-to-end key CHANGED since you verified it: compare the new safety number in a chat (:verify: " + name + ") or accept it (:trust: " + name + ")")
				case obs.Kind == trust.KeyChanged:
					p.line("! " + name + "'s end-to-end key changed (a new device, or someone else): the safety number is new; compare it in a chat with :verify: " + name)
				}
			}
		}
		want--
		return want == 0
	})
	_ = q
	return err
}
