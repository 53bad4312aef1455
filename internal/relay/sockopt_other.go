//go:build !linux

package relay

import (
	"net"
	"time"
)

// setUserTimeout does nothing off Linux: TCP_USER_TIMEOUT is Linux's.
// Keep-alive and write deadlines still find a vanished peer.
func setUserTimeout(*net.TCPConn, time.Duration) error { return nil }
