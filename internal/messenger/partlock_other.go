//go:build !unix

package messenger

import (
	"errors"
	"os"
)

// lockPart cannot lock where the system has no flock: a download in
// progress cannot be told from a stale one there, so removeStaleParts
// removes nothing.
func lockPart(*os.File) error { return errors.ErrUnsupported }
