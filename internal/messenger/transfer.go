package messenger

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"
)

// What uploads and downloads share: limits, timeouts, the transfer
// buffers and the formatting of sizes and file errors.

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

	// transferBufferSize is the one buffer a transfer streams through, so
	// memory is bounded whatever the file size.
	transferBufferSize = 256 << 10
)

var transferBufs = sync.Pool{New: func() any { b := make([]byte, transferBufferSize); return &b }}

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

// hideTempName drops the file names from a *fs.PathError or *os.LinkError
// made while saving a download (they name our temporary file, which the
// user does not know), keeping the cause; other errors are returned as
// they are.
func hideTempName(err error) error {
	switch e := err.(type) {
	case *fs.PathError:
		return e.Err
	case *os.LinkError:
		return e.Err
	}
	return err
}
