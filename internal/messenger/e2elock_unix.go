//go:build unix

package messenger

import (
	"os"
	"syscall"
)

// lockDir takes an exclusive lock on the file path (created 0600 if
// missing), waiting for another process that holds it; the returned
// function releases it.
func lockDir(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
