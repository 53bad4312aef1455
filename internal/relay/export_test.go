package relay

import "time"

// SetStreamWindow changes the window in which a streamed upload must make
// progress, for the length of a test.
func SetStreamWindow(d time.Duration) (restore func()) {
	old := streamWindow
	streamWindow = d
	return func() { streamWindow = old }
}
