package messenger

import (
	"fmt"
)

// Scripts: input from a pipe or file (plain mode).
//
// A script reads the session's output as a log, so what the client prints
// itself (":status:", "! target unchanged: ...") must come after the
// server's answers to the lines before it. Before a line that prints
// something of its own, the input loop sends PING and waits for the PONG:
// the server answers in order, so every answer to the lines before has
// been printed by then (syncOutput). Plain messages need no wait, so a
// script of messages is not slowed down. Servers without our extensions
// have no PING: their answers may follow later lines.
//
// Lines that were not delivered (refused here, or answered with a CNT
// other than "queued") are counted, and Run then fails with an
// *UndeliveredError.

// UndeliveredError is Run's error in plain mode when input lines were not
// delivered: messages refused by the client (too long) or by the server
// (no such user, not online, muted, queue full), unknown commands and
// refused targets. Each was reported on its own "!" line.
type UndeliveredError struct {
	Lines int // how many input lines
}

func (e *UndeliveredError) Error() string {
	if e.Lines == 1 {
		return "1 input line was not delivered (see the line starting with !)"
	}
	return fmt.Sprintf("%d input lines were not delivered (see the lines starting with !)", e.Lines)
}

// refused prints a line refused here and counts it as not delivered.
func (s *session) refused(line string) {
	s.undelivered.Add(1)
	s.out.line(line)
}

// syncOutput waits, in plain mode, until the server has answered every
// line sent since the last wait (see above). It gives up quietly when the
// server has no PING, a download is running (its answers come after the
// files), or no PONG comes within PingTimeout: then the order is only the
// order in which lines arrive.
func (s *session) syncOutput() {
	if !s.unsynced || s.term != nil || !s.c.ext || s.downloading.Load() || s.stopped() {
		return
	}
	s.unsynced = false
	s.roundTrip(PingTimeout) // a broken connection shows at the next write
}
