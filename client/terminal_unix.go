//go:build unix

package main

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/term"

	"sslmessager/internal/messenger"
)

// jobControl makes Ctrl-Z and a resized window work while the terminal
// is raw: suspend restores the terminal, stops the process with SIGTSTP
// as the terminal's own Ctrl-Z would, and makes the terminal raw again
// after fg; SIGWINCH sends the new size to resize. stop ends the signal
// handling. SIGTSTP is never caught: once os/signal has handled it, the
// Go runtime would ignore it instead of stopping, and the kernel's rule
// for orphaned process groups (no shell to continue them, so no stop)
// holds only for SIGTSTP's default action.
func (c *console) jobControl(state *term.State) (suspend func(), resize <-chan messenger.TermSize, stop func()) {
	var mu sync.Mutex
	winch := make(chan os.Signal, 1)
	sizes := make(chan messenger.TermSize, 1)
	done := make(chan struct{})
	signal.Notify(winch, syscall.SIGWINCH)
	suspend = func() {
		mu.Lock()
		defer mu.Unlock()
		term.Restore(c.inFd, state)
		cont := make(chan os.Signal, 1)
		signal.Notify(cont, syscall.SIGCONT)
		syscall.Kill(syscall.Getpid(), syscall.SIGTSTP) // the default action: stop
		select {
		case <-cont: // fg or bg
		case <-time.After(time.Second): // not stopped (an orphaned process group)
		}
		signal.Stop(cont)
		term.MakeRaw(c.inFd)
	}
	go func() {
		for {
			select {
			case <-done:
				return
			case <-winch:
				if w, h, err := term.GetSize(c.outFd); err == nil {
					select {
					case sizes <- messenger.TermSize{Width: w, Height: h}:
					default:
					}
				}
			}
		}
	}()
	return suspend, sizes, func() {
		signal.Stop(winch)
		close(done)
		mu.Lock() // no suspend half done
		mu.Unlock()
	}
}
