package relay

import "time"

// FlushCounts reports how many times a reader wrote the lines it relayed
// itself, and how many times it started the recipient's writer goroutine
// instead (session.flushHeld, session.flushPending).
func FlushCounts(s *Server) (byReader, handedOff uint64) {
	return s.readerFlushes.Load(), s.handOffs.Load()
}

// SetStreamWindow changes the window in which a streamed upload must make
// progress, for the length of a test.
func SetStreamWindow(d time.Duration) (restore func()) {
	old := streamWindow
	streamWindow = d
	return func() { streamWindow = old }
}
