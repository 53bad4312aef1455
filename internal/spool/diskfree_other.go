//go:build !(linux || darwin || freebsd)

package spool

import "errors"

// diskFree cannot tell the free space on this system; the floor is not
// checked.
func diskFree(string) (int64, error) {
	return 0, errors.ErrUnsupported
}
