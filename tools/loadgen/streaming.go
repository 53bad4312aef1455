package main

import (
	"context"
	"errors"
	"time"
)

// errStreamNotMeasured is streamEndToEnd's answer until streaming is wired
// in; the report then says streamNotMeasured instead of a figure.
var errStreamNotMeasured = errors.New("streaming: not measured in this build")

// streamNotMeasured is what the file table shows in place of the
// streaming figure.
const streamNotMeasured = "streaming: not measured in this build"

// streamEndToEnd measures end-to-end STREAMING of one file of p.Size bytes
// (the data of newDataGen(p.Seed)) from a to b while both are online: the
// server passes the file on to b as it arrives, while still writing it to
// its spool, hashing and fsyncing it. It is to return the time from a's
// BEGINF until b has the whole file on its disk (fsynced) and its SHA-256
// checked against the hash sent at the end of the transfer, and to fail if
// the bytes differ. runFile divides p.Size by it and sets it against the
// TLS-into-file ceiling (target: at least targetStreamRatio).
//
// NOT IMPLEMENTED in this build: it returns errStreamNotMeasured, and the
// report prints "streaming: not measured in this build", never a number.
// The one place to wire streaming in once its framing (PROTOCOL.md of the
// branch that adds it) is merged.
func streamEndToEnd(ctx context.Context, a, b *fileClient, p fileParams) (time.Duration, error) {
	return 0, errStreamNotMeasured
}
