package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"sync"
)

// ErrLineTooLong is returned by ReadLine for a line over MaxLineBytes. The
// stream is out of step after it: close the connection.
var ErrLineTooLong = errors.New("wire: line too long")

// Reader reads CR LF terminated lines and raw bytes from one stream. A bare
// LF is part of the line. Memory is bounded by MaxLineBytes whatever the
// peer sends.
//
// While it waits for a new line with nothing buffered, a Reader holds no
// read buffer: it blocks on a one-byte read and only then takes a buffer
// from a pool shared by all Readers of that size. An idle connection of a
// server with many of them costs no buffer at all.
type Reader struct {
	src  io.Reader
	size int
	br   *bufio.Reader // nil while idle
	pre  prefixReader  // the byte read while idle, then src
	max  int
	line []byte
}

// prefixReader yields one byte read ahead, then reads from src.
type prefixReader struct {
	b   byte
	has bool
	src io.Reader
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if p.has && len(b) > 0 {
		b[0], p.has = p.b, false
		return 1, nil
	}
	return p.src.Read(b)
}

// readerPools holds a *sync.Pool of *bufio.Reader for each buffer size.
var readerPools sync.Map

func poolFor(size int) *sync.Pool {
	if p, ok := readerPools.Load(size); ok {
		return p.(*sync.Pool)
	}
	p, _ := readerPools.LoadOrStore(size, &sync.Pool{New: func() any { return bufio.NewReaderSize(nil, size) }})
	return p.(*sync.Pool)
}

// maxKeptLine is the most line buffer a Reader keeps between lines.
const maxKeptLine = 4096

// NewReader returns a Reader with a read buffer of size bytes.
func NewReader(r io.Reader, size int) *Reader {
	return &Reader{src: r, size: size, pre: prefixReader{src: r}, max: MaxLineBytes}
}

// buffer makes sure r has a read buffer, waiting for the first byte first
// if it has none.
func (r *Reader) buffer() error {
	if r.br != nil {
		return nil
	}
	var one [1]byte
	for {
		n, err := r.src.Read(one[:])
		if n == 1 {
			break
		}
		if err != nil {
			return err
		}
	}
	r.pre.b, r.pre.has = one[0], true
	r.br = poolFor(r.size).Get().(*bufio.Reader)
	r.br.Reset(&r.pre)
	return nil
}

// idle hands the read buffer back when nothing is left in it.
func (r *Reader) idle() {
	if r.br != nil && r.br.Buffered() == 0 && !r.pre.has {
		r.br.Reset(nil)
		poolFor(r.size).Put(r.br)
		r.br = nil
	}
	if cap(r.line) > maxKeptLine {
		r.line = nil
	}
}

// ReadLine returns the next line without its CR LF. The slice is valid
// until the next call on r.
func (r *Reader) ReadLine() ([]byte, error) {
	r.idle()
	if err := r.buffer(); err != nil {
		return nil, err
	}
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
func (r *Reader) Read(p []byte) (int, error) {
	if r.br == nil {
		return r.src.Read(p)
	}
	return r.br.Read(p)
}

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
	if err := r.buffer(); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, -1, err
	}
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
