//go:build !unix

package relay

// canWriteNow: this platform has no writeNow; batchConn.writeNowLocked
// writes under a short deadline instead.
const canWriteNow = false

func writeNow(uintptr, []byte) (int, error) { panic("relay: writeNow off unix") }
