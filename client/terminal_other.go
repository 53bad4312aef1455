//go:build !unix

package main

import (
	"golang.org/x/term"

	"sslmessager/internal/messenger"
)

// jobControl does nothing where there is no job control.
func (c *console) jobControl(*term.State) (func(), <-chan messenger.TermSize, func()) {
	return nil, nil, func() {}
}
