//go:build unix

package relay

import (
	"errors"

	"golang.org/x/sys/unix"
)

// canWriteNow: this platform has writeNow.
const canWriteNow = true

// writeNow writes what the socket fd takes of p at once; a full socket
// (EAGAIN) is 0 bytes and no error. It runs inside RawConn.Write, whose
// socket is non-blocking.
func writeNow(fd uintptr, p []byte) (int, error) {
	for {
		n, err := unix.Write(int(fd), p)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return 0, nil
		case err != nil:
			return 0, err
		}
		return n, nil
	}
}
