package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"sslmessager/internal/wire"
)

// WindowSize is how many sequence numbers below the highest seen a Window
// still accepts (once each).
const WindowSize = 64

// SeqBlock is the size of the blocks in which senders reserve sequence
// numbers on disk: a block ends at a multiple of SeqBlock, so one starts at
// a number n with (n-1) % SeqBlock == 0 (counting per sender device from
// 1). A sender that crashed, or another process of the sender, goes on at
// the start of a new block, skipping the rest of the old one.
const SeqBlock = 64

// Errors of Window.Check.
var (
	ErrReplay = errors.New("e2e: message already received (replay)")
	ErrTooOld = errors.New("e2e: message too old for the replay window")
	ErrNoSeq  = errors.New("e2e: message without sequence number")
)

// Window catches replayed messages from one sender: the highest sequence
// number seen, a bitmap of the WindowSize numbers below it (as IPsec's
// anti-replay window) and the ids of the last WindowSize messages. Keep one
// per (sender identity, recipient) pair and persist it with MarshalBinary.
// The zero Window has seen nothing. Not safe for concurrent use.
type Window struct {
	highest uint64
	seen    uint64 // bit i: highest-i was seen (bit 0 is highest itself)
	ids     [WindowSize]MsgID
	next    int // ring position in ids
}

// Check accepts or refuses a message with sequence number seq and id id,
// and records it when accepted. It returns the number of sequence numbers
// skipped between the highest seen so far and seq: 0 if none, 0 for a
// Window that has seen nothing, and 0 for a jump of less than SeqBlock to
// the start of a block (the sender skipped the rest of its block: a
// restart, or another process of the sender); ErrReplay for a seq or id seen before;
// ErrTooOld for a seq WindowSize or more below the highest.
func (w *Window) Check(seq uint64, id MsgID) (gap uint64, err error) {
	if seq == 0 {
		return 0, ErrNoSeq
	}
	for _, x := range w.ids {
		if x == id && id != (MsgID{}) {
			return 0, ErrReplay
		}
	}
	switch {
	case w.highest == 0:
		w.highest, w.seen = seq, 1
	case seq > w.highest:
		d := seq - w.highest
		gap = d - 1
		if (seq-1)%SeqBlock == 0 && gap < SeqBlock {
			gap = 0 // skipped at a block boundary, not lost
		}
		if d >= WindowSize {
			w.seen = 1
		} else {
			w.seen = w.seen<<d | 1
		}
		w.highest = seq
	default:
		d := w.highest - seq
		if d >= WindowSize {
			return 0, fmt.Errorf("%w (seq %d, highest %d)", ErrTooOld, seq, w.highest)
		}
		if w.seen&(1<<d) != 0 {
			return 0, ErrReplay
		}
		w.seen |= 1 << d
	}
	w.ids[w.next] = id
	w.next = (w.next + 1) % WindowSize
	return gap, nil
}

// Highest returns the highest sequence number accepted, 0 if none.
func (w *Window) Highest() uint64 { return w.highest }

const windowBytes = 1 + 8 + 8 + 1 + WindowSize*16

// MarshalBinary encodes the window (1,042 bytes).
func (w *Window) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, windowBytes)
	b = append(b, 1)
	b = binary.BigEndian.AppendUint64(b, w.highest)
	b = binary.BigEndian.AppendUint64(b, w.seen)
	b = append(b, byte(w.next))
	for _, id := range w.ids {
		b = append(b, id[:]...)
	}
	return b, nil
}

// UnmarshalBinary restores a window from MarshalBinary.
func (w *Window) UnmarshalBinary(b []byte) error {
	if len(b) != windowBytes || b[0] != 1 || int(b[17]) >= WindowSize {
		return errors.New("e2e: malformed replay window")
	}
	w.highest = binary.BigEndian.Uint64(b[1:9])
	w.seen = binary.BigEndian.Uint64(b[9:17])
	w.next = int(b[17])
	for i := range w.ids {
		copy(w.ids[i][:], b[18+16*i:])
	}
	return nil
}

// Assembler rejoins texts that SealText split into parts. Parts of one
// text have consecutive sequence numbers, so a text is identified by its
// sender and the seq of its part 0. Incomplete texts older than TTL, and
// the oldest beyond MaxPending, are dropped. The zero Assembler uses
// DefaultAssemblyTTL and DefaultMaxPending. Not safe for concurrent use.
type Assembler struct {
	TTL        time.Duration
	MaxPending int

	pending map[assemblyKey]*partial
}

// Defaults of Assembler.
const (
	DefaultAssemblyTTL = 10 * time.Minute
	DefaultMaxPending  = 64
)

type assemblyKey struct {
	from  string
	first uint64
}

type partial struct {
	kind  Kind
	parts [][]byte
	have  int
	start time.Time
}

// Add takes one opened message (after its Window check) from the user
// from, at now. For a whole text it returns the body and true at once; for
// a part it returns true and the rejoined text when the last missing part
// arrived, false while parts are missing. A part that contradicts the
// others of its text (another kind or part count) is an error.
func (a *Assembler) Add(from string, m *Message, now time.Time) ([]byte, bool, error) {
	if m.Parts <= 1 {
		return m.Body, true, nil
	}
	if m.Part >= m.Parts || uint64(m.Part) >= m.Seq {
		return nil, false, envelopeError("part %d of %d at seq %d", m.Part, m.Parts, m.Seq)
	}
	if a.pending == nil {
		a.pending = make(map[assemblyKey]*partial)
	}
	a.expire(now)
	k := assemblyKey{wire.FoldName(from), m.Seq - uint64(m.Part)}
	p := a.pending[k]
	if p == nil {
		a.evict()
		p = &partial{kind: m.Kind, parts: make([][]byte, m.Parts), start: now}
		a.pending[k] = p
	}
	if p.kind != m.Kind || len(p.parts) != int(m.Parts) {
		return nil, false, envelopeError("part %d does not match its text", m.Part)
	}
	if p.parts[m.Part] == nil {
		p.parts[m.Part] = m.Body
		if p.parts[m.Part] == nil {
			p.parts[m.Part] = []byte{}
		}
		p.have++
	}
	if p.have < len(p.parts) {
		return nil, false, nil
	}
	delete(a.pending, k)
	var text []byte
	for _, b := range p.parts {
		text = append(text, b...)
	}
	return text, true, nil
}

// Pending returns how many texts wait for parts.
func (a *Assembler) Pending() int { return len(a.pending) }

func (a *Assembler) expire(now time.Time) {
	ttl := a.TTL
	if ttl <= 0 {
		ttl = DefaultAssemblyTTL
	}
	for k, p := range a.pending {
		if now.Sub(p.start) > ttl {
			delete(a.pending, k)
		}
	}
}

func (a *Assembler) evict() {
	limit := a.MaxPending
	if limit <= 0 {
		limit = DefaultMaxPending
	}
	for len(a.pending) >= limit {
		var oldest assemblyKey
		var t time.Time
		for k, p := range a.pending {
			if t.IsZero() || p.start.Before(t) {
				oldest, t = k, p.start
			}
		}
		delete(a.pending, oldest)
	}
}
