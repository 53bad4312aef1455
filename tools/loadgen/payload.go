package main

import (
	"encoding/binary"
	"math/bits"
	"strconv"
	"strings"
)

// A message text is "lg SENDER SEQ UNIXNANO " padded with 'x' to the
// requested size: the receiver learns from it which stream the message
// belongs to, its place in that stream and when it was sent.
const payloadMagic = "lg"

// padding is what texts are padded with (the protocol's text limit).
var padding = strings.Repeat("x", 4000)

// appendPayload appends the text for message seq of sender, stamped ts, to
// dst. A size smaller than the header gives the header alone.
func appendPayload(dst []byte, sender, seq int, ts int64, size int) []byte {
	start := len(dst)
	dst = append(dst, payloadMagic...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(sender), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(seq), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, ts, 10)
	if n := len(dst) - start; n < size {
		dst = append(dst, ' ')
		if pad := size - n - 1; pad > 0 {
			dst = append(dst, padding[:pad]...)
		}
	}
	return dst
}

// payload is what a receiver reads back from a text.
type payload struct {
	sender, seq int
	ts          int64
}

// parsePayload reads a text made by appendPayload; ok is false for any
// other text.
func parsePayload(text string) (p payload, ok bool) {
	rest, found := strings.CutPrefix(text, payloadMagic+" ")
	if !found {
		return p, false
	}
	var fields [3]string
	for i := range fields {
		var f string
		if i < 2 {
			if f, rest, found = strings.Cut(rest, " "); !found {
				return p, false
			}
		} else {
			f, _, _ = strings.Cut(rest, " ")
		}
		fields[i] = f
	}
	s, err1 := strconv.Atoi(fields[0])
	q, err2 := strconv.Atoi(fields[1])
	ts, err3 := strconv.ParseInt(fields[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || s < 0 || q < 0 {
		return p, false
	}
	return payload{sender: s, seq: q, ts: ts}, true
}

// dataGen produces the file data: a fast, seeded PRNG stream (a 64-bit
// counter mixed by one 128-bit multiply, as in wyrand), about 5 GB/s on one
// core, so that 1 GiB costs a fifth of a second and its hash can be
// recomputed from the seed.
type dataGen struct{ state uint64 }

func newDataGen(seed uint64) *dataGen { return &dataGen{state: seed} }

func (g *dataGen) next() uint64 {
	g.state += 0xa0761d6478bd642f
	hi, lo := bits.Mul64(g.state, g.state^0xe7037ed1a0b428db)
	return hi ^ lo
}

// fill overwrites p with the next len(p) bytes of the stream. Callers cut
// the stream in pieces whose length is a multiple of 8 (except the last),
// so the bytes are the same however the stream is read.
func (g *dataGen) fill(p []byte) {
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, g.next())
		p = p[8:]
	}
	if len(p) > 0 {
		v := g.next()
		for i := range p {
			p[i] = byte(v)
			v >>= 8
		}
	}
}
