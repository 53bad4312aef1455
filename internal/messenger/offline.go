package messenger

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"sslmessager/internal/durable"
	"sslmessager/internal/wire"
)

// Offline messages: the direct messages sent to this user while it was
// offline, which the server delivers after log-in as RELAYQ lines (sslm/2).
//
// Each is shown once, as "[sent 10:00, 30 Nov] alice: text", and then
// confirmed with ACKM, after which the server deletes it. The highest
// sequence number shown is kept in the state directory (one small file per
// server and user, written atomically), so a message whose confirmation
// was lost (the connection broke) and that the server sends again is
// confirmed again but not shown a second time, in this session or a later
// one.

// storedDir is the subdirectory of Options.ConfigDir that holds the
// highest shown sequence numbers.
const storedDir = "offline-seen"

// storedMessages tracks the stored messages of one session: what was shown,
// what is saved to disk, what is still to confirm. A goroutine of its own
// (run) saves and confirms, so the receiver never waits for the disk, and a
// backlog shown quickly costs few writes.
type storedMessages struct {
	path string // "" keeps the mark in memory only
	out  *printer

	mu        sync.Mutex
	shown     uint64 // guarded by mu; highest seq shown (or found on disk)
	saved     uint64 // guarded by mu; highest seq written to path
	toConfirm uint64 // guarded by mu; highest seq received and not yet confirmed
	warned    bool   // guarded by mu; a failed save was reported
	saveMu    sync.Mutex
	wake      chan struct{}
	confirm   func(seq uint64) // sends ACKM seq
}

// storedPath is the file that keeps the highest shown seq for user on the
// server at addr, inside dir; "" when dir is "".
func storedPath(dir, addr, user string) string {
	if dir == "" {
		return ""
	}
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
				return r
			}
			return '_'
		}, s)
	}
	return filepath.Join(dir, storedDir, clean(wire.FoldName(user))+"@"+clean(addr))
}

// newStoredMessages reads the mark at path (a missing file is 0; an
// unreadable one is reported on out and counts as 0).
func newStoredMessages(path string, out *printer, confirm func(seq uint64)) *storedMessages {
	st := &storedMessages{path: path, out: out, wake: make(chan struct{}, 1), confirm: confirm}
	if path == "" {
		return st
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			out.line("! cannot read which offline messages were shown: " + Sanitize(err.Error()))
		}
		return st
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		out.line("! " + Sanitize(path) + " is damaged; offline messages may show again")
		return st
	}
	st.shown, st.saved = v, v
	return st
}

// received notes a stored message from the server and reports whether to
// show it: not if one with this seq or a later one was shown already.
func (st *storedMessages) received(seq uint64) bool {
	st.mu.Lock()
	show := seq > st.shown
	if show {
		st.shown = seq
	}
	st.toConfirm = max(st.toConfirm, seq)
	st.mu.Unlock()
	select {
	case st.wake <- struct{}{}:
	default:
	}
	return show
}

// run saves and confirms in the background until done closes.
func (st *storedMessages) run(done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case <-st.wake:
			st.save()
		}
	}
}

// save writes the highest shown seq to disk, then confirms everything
// received to the server. A failed write is reported once; the messages
// are confirmed all the same (or the server would send them at every
// log-in), at the risk of showing one again if the confirmation is lost.
func (st *storedMessages) save() {
	st.saveMu.Lock()
	defer st.saveMu.Unlock()
	st.mu.Lock()
	shown, saved, confirm := st.shown, st.saved, st.toConfirm
	st.toConfirm = 0
	st.mu.Unlock()
	if confirm == 0 {
		return
	}
	if st.path != "" && shown > saved {
		err := os.MkdirAll(filepath.Dir(st.path), 0o700)
		if err == nil {
			err = durable.WriteFile(st.path, 0o600, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%d\n", shown)
				return err
			})
		}
		st.mu.Lock()
		if err == nil {
			st.saved = max(st.saved, shown)
		} else if !st.warned {
			st.warned = true
			st.out.line("! cannot record which offline messages were shown: " + Sanitize(err.Error()))
		}
		st.mu.Unlock()
	}
	st.confirm(confirm)
}

// showStored shows a stored message unless it was shown already, and has
// it confirmed.
func (s *session) showStored(q wire.RelayQueued) {
	if s.stored.received(q.Seq) && !s.mutes.muted(q.Sender) {
		s.out.line(s.render.stored(q.Sender, q.Text, q.Sent))
		s.remember(q.Sender+" (sent "+q.Sent.UTC().Format("2006-01-02 15:04")+" UTC)", q.Text)
	}
}

// stored renders a message stored while this user was offline, with the
// time it was sent in place of the time it arrived:
// "[sent 10:00, 30 Nov] alice: text" (the year too when it is not this
// year's), in the clock's time zone.
func (r renderer) stored(sender, text string, sent time.Time) string {
	now := r.now()
	sent = sent.In(now.Location())
	layout := "15:04, 2 Jan"
	if sent.Year() != now.Year() {
		layout = "15:04, 2 Jan 2006"
	}
	plain := r
	plain.timestamps = false
	return plain.layout("[sent "+sent.Format(layout)+"] "+Sanitize(sender), text, false)
}

// settle, before a quit, waits (at most QuitTimeout) for the answer to a
// PING, so that the offline messages the server sent right after ACCEPT
// have been shown and can be confirmed before END: a chat scripted to quit
// at once would otherwise leave them stored on the server. Only against a
// server that speaks sslm/2.
func (s *session) settle() {
	if !s.c.Extended() {
		return
	}
	s.roundTrip(s.opts.QuitTimeout)
}
