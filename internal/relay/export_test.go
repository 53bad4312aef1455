package relay

// FlushCounts reports how many times a reader wrote the lines it relayed
// itself, and how many times it started the recipient's writer goroutine
// instead (session.flushHeld, session.flushPending).
func FlushCounts(s *Server) (byReader, handedOff uint64) {
	return s.readerFlushes.Load(), s.handOffs.Load()
}
