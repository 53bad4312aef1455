package main

import (
	"log/slog"
	"syscall"
)

// raiseFileLimit lifts the soft limit on open files to the hard limit:
// every connection is a file descriptor, and the usual soft limit of 1024
// would cap the server far below --max-conns.
func raiseFileLimit(logger *slog.Logger, want int) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		logger.Warn("cannot read the open-file limit", "err", err)
		return
	}
	if l.Cur < l.Max {
		old := l.Cur
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			logger.Warn("cannot raise the open-file limit", "from", old, "to", l.Max, "err", err)
			return
		}
	}
	if l.Cur < uint64(want)+64 {
		logger.Warn("open-file limit is below --max-conns; connections past it are refused", "limit", l.Cur, "max_conns", want)
	}
}
