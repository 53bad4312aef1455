package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// ErrLineTooLong is returned by ReadLine for a line over MaxLineBytes. The
// stream is out of step after it: close the connection.
var ErrLineTooLong = errors.New("wire: line too long")

// Reader reads CR LF terminated lines and raw bytes from one stream. A bare
// LF is part of the line. Memory is bounded by MaxLineBytes whatever the
// peer sends.
type Reader struct {
	br   *bufio.Reader
	max  int
	line []byte
}

// NewReader returns a Reader with a read buffer of size bytes.
func NewReader(r io.Reader, size int) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, size), max: MaxLineBytes}
}

// ReadLine returns the next line without its CR LF. The slice is valid
// until the next call on r.
func (r *Reader) ReadLine() ([]byte, error) {
	r.line = r.line[:0]
	for {
		chunk, err := r.br.ReadSlice('\n')
		if err == nil && len(r.line) == 0 && len(chunk) >= 2 && chunk[len(chunk)-2] == '\r' {
			if len(chunk)-2 > r.max {
				return nil, ErrLineTooLong
			}
			return chunk[:len(chunk)-2], nil // the common case: no copy
		}
		if len(r.line)+len(chunk) > r.max+2 {
			r.line = nil
			return nil, ErrLineTooLong
		}
		r.line = append(r.line, chunk...)
		switch {
		case err == nil:
			if bytes.HasSuffix(r.line, []byte("\r\n")) {
				return r.line[:len(r.line)-2], nil
			}
		case errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF) && len(r.line) > 0:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// Read reads raw bytes, taking first what ReadLine buffered.
func (r *Reader) Read(p []byte) (int, error) { return r.br.Read(p) }

// Buffered is the number of bytes read from the stream but not yet taken.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// CopyUntil copies raw bytes to w until one of the lines in ends, which is
// consumed and not copied. Each end is matched as it arrives however the
// stream is split into reads. It returns the bytes copied and the index of
// the end that matched. If w fails, or more than limit bytes arrive, it stops
// copying but still reads through the end line, so the stream stays in
// step, and then returns w's error or ErrTooMuchData. Only a read error
// returns before the end line.
func (r *Reader) CopyUntil(w io.Writer, ends [][]byte, limit int64) (int64, int, error) {
	longest := 0
	for _, e := range ends {
		longest = max(longest, len(e))
	}
	var pending []byte // tail that may be the start of an end line
	var n int64
	var werr error
	write := func(data []byte) {
		if werr != nil {
			return
		}
		if n+int64(len(data)) > limit {
			werr = ErrTooMuchData
			return
		}
		m, err := w.Write(data)
		n += int64(m)
		werr = err
	}
	for {
		chunk, err := r.br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return n, -1, err
		}
		pending = append(pending, chunk...)
		if err == nil {
			for i, e := range ends {
				if bytes.HasSuffix(pending, e) {
					write(pending[:len(pending)-len(e)])
					return n, i, werr
				}
			}
		}
		keep := min(len(pending), longest-1)
		write(pending[:len(pending)-keep])
		pending = append(pending[:0], pending[len(pending)-keep:]...)
	}
}

// ErrTooMuchData is returned by CopyUntil when the data exceeds its limit.
var ErrTooMuchData = errors.New("wire: more data than allowed")
