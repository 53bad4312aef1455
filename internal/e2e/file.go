package e2e

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"filippo.io/age"

	"sslmessager/internal/wire"
)

// An encrypted file is an age file with one sslm1 stanza (context "file")
// whose plaintext starts with a metadata record of exactly MetaBytes
// (integers big-endian):
//
//	version(1)=1 ‖ size(8) ‖ mtime(8, Unix ms) ‖ name_len(1) ‖ name ‖ zeros
//
// so the ciphertext size depends on the file size only, never on the name.
// The name on the wire is random (WireFileName).
const (
	// HeaderBytes is the size of the age header with one sslm1 stanza
	// plus the 16-byte payload nonce: every envelope and every encrypted
	// file starts with exactly this many bytes before its first chunk.
	HeaderBytes = 188 + 16

	// MetaBytes is the size of the metadata record in front of a file's
	// contents.
	MetaBytes = 288

	// MaxMetaName is the longest file name the metadata carries; longer
	// names are cut (wire.CleanFileName).
	MaxMetaName = 255

	// ChunkBytes is age's plaintext chunk size; each chunk adds a 16-byte
	// tag.
	ChunkBytes = 64 << 10
	chunkTag   = 16

	// WireFileSuffix ends every encrypted file's name on the wire.
	WireFileSuffix = ".e2e"
)

// FileMeta is what an encrypted file says about itself.
type FileMeta struct {
	Name    string    // base name, cleaned by wire.CleanFileName on both ends
	Size    int64     // bytes of content
	ModTime time.Time // millisecond precision
}

// Errors of file encryption and decryption.
var (
	ErrFileMeta = errors.New("e2e: malformed encrypted file metadata")
	ErrFileSize = errors.New("e2e: file content does not match its declared size")
)

// FileCiphertextSize returns the exact size of the encrypted form of a
// file of plainSize bytes (what BEGINF declares): header, nonce, metadata
// and contents, and a 16-byte tag per 64 KiB chunk (at least one chunk).
func FileCiphertextSize(plainSize int64) int64 {
	p := plainSize + MetaBytes
	chunks := (p + ChunkBytes - 1) / ChunkBytes
	if chunks == 0 {
		chunks = 1
	}
	return HeaderBytes + p + chunkTag*chunks
}

// WireFileName returns a random name for an encrypted file on the wire:
// 32 lower-case hex digits and ".e2e" (from rand, crypto/rand if nil).
func WireFileName(rnd io.Reader) (string, error) {
	var b [16]byte
	if err := readRand(rnd, b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]) + WireFileSuffix, nil
}

func (m FileMeta) marshal() ([]byte, error) {
	if m.Size < 0 || m.Size > wire.MaxFileSize {
		return nil, fmt.Errorf("e2e: file size %d out of range", m.Size)
	}
	name := wire.CleanFileName(m.Name, MaxMetaName)
	b := make([]byte, 0, MetaBytes)
	b = append(b, 1)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Size))
	b = binary.BigEndian.AppendUint64(b, uint64(max(m.ModTime.UnixMilli(), 0)))
	b = append(b, byte(len(name)))
	b = append(b, name...)
	return append(b, make([]byte, MetaBytes-len(b))...), nil
}

func unmarshalMeta(b []byte) (FileMeta, error) {
	if len(b) != MetaBytes || b[0] != 1 {
		return FileMeta{}, ErrFileMeta
	}
	size := binary.BigEndian.Uint64(b[1:9])
	ms := binary.BigEndian.Uint64(b[9:17])
	n := int(b[17])
	if size > wire.MaxFileSize || ms > 1<<52 || n > MaxMetaName {
		return FileMeta{}, ErrFileMeta
	}
	for _, c := range b[18+n:] {
		if c != 0 {
			return FileMeta{}, ErrFileMeta
		}
	}
	return FileMeta{
		Name:    wire.CleanFileName(string(b[18:18+n]), MaxMetaName),
		Size:    int64(size),
		ModTime: time.UnixMilli(int64(ms)).UTC(),
	}, nil
}

// fileWriter counts the content written and refuses any other amount than
// the metadata declared.
type fileWriter struct {
	w       io.WriteCloser
	want, n int64
}

func (f *fileWriter) Write(p []byte) (int, error) {
	if f.n+int64(len(p)) > f.want {
		return 0, fmt.Errorf("%w: more than %d bytes", ErrFileSize, f.want)
	}
	n, err := f.w.Write(p)
	f.n += int64(n)
	return n, err
}

func (f *fileWriter) Close() error {
	if f.n != f.want {
		return fmt.Errorf("%w: %d bytes written, %d declared", ErrFileSize, f.n, f.want)
	}
	return f.w.Close()
}

// EncryptFile starts an encrypted file for the holder of to, written to w:
// the header and metadata go out at once, the contents as they are written
// to the returned writer, and Close writes the last chunk. Exactly
// meta.Size bytes must be written (ErrFileSize otherwise), so the output is
// FileCiphertextSize(meta.Size) bytes.
func (s *Sealer) EncryptFile(w io.Writer, meta FileMeta, to *Bundle) (io.WriteCloser, error) {
	if err := s.check(to); err != nil {
		return nil, err
	}
	m, err := meta.marshal()
	if err != nil {
		return nil, err
	}
	aw, err := age.Encrypt(w, s.recipient(to, ContextFile))
	if err != nil {
		return nil, err
	}
	if _, err := aw.Write(m); err != nil {
		return nil, err
	}
	return &fileWriter{w: aw, want: meta.Size}, nil
}

// fileReader passes the contents on and fails unless they are exactly the
// declared size and end with age's authenticated last chunk.
type fileReader struct {
	r       io.Reader
	want, n int64
	err     error
}

func (f *fileReader) Read(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	n, err := f.r.Read(p)
	f.n += int64(n)
	if f.n > f.want {
		f.err = fmt.Errorf("%w: more than %d bytes", ErrFileSize, f.want)
		return 0, f.err
	}
	if err == io.EOF && f.n != f.want {
		err = fmt.Errorf("%w: %d bytes, %d declared", ErrFileSize, f.n, f.want)
	}
	if err != nil {
		f.err = err
	}
	return n, err
}

// DecryptFile opens an encrypted file said to come from the user from with
// identity fromKey. It reads the header and metadata now and returns the
// metadata (name cleaned) and a reader of the contents. The reader returns
// io.EOF only after age's last chunk authenticated and exactly meta.Size
// bytes came out; any flip, cut or extension of the input is an error
// instead. Name the output file only after reading to io.EOF without
// error: bytes read before an error may be forged.
func (o *Opener) DecryptFile(r io.Reader, from string, fromKey PublicIdentity) (FileMeta, io.Reader, error) {
	ar, err := age.Decrypt(r, o.unwrapper(from, fromKey, ContextFile))
	if err != nil {
		return FileMeta{}, nil, err
	}
	m := make([]byte, MetaBytes)
	if _, err := io.ReadFull(ar, m); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = ErrFileMeta
		}
		return FileMeta{}, nil, err
	}
	meta, err := unmarshalMeta(m)
	if err != nil {
		return FileMeta{}, nil, err
	}
	return meta, &fileReader{r: ar, want: meta.Size}, nil
}
