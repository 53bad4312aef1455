//go:build linux

package relay

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestSetUserTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tc := c.(*net.TCPConn)
	if err := setUserTimeout(tc, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	rc, _ := tc.SyscallConn()
	var got int
	var gerr error
	rc.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT) })
	if gerr != nil || got != 30000 {
		t.Fatalf("TCP_USER_TIMEOUT = %d (%v), want 30000 ms", got, gerr)
	}
}
