//go:build unix

package messenger

import (
	"os"
	"syscall"
)

// lockPart takes an exclusive, non-blocking lock on f, held until f is
// closed (or its process ends, however it ends). It fails at once if
// another open file holds the lock.
func lockPart(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			return err
		}
	}
}
