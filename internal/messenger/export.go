package messenger

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"sslmessager/internal/durable"
)

// The conversation of this session, kept for :export:: the messages that
// were shown (received, carbons) and sent, with their times. It is
// bounded: the oldest go first.
const (
	// MaxHistoryMessages is the most messages a session keeps for :export:.
	MaxHistoryMessages = 10000
	// MaxHistoryBytes bounds the texts a session keeps for :export:.
	MaxHistoryBytes = 4 << 20
)

// exportTimeLayout is the time of each exported message.
const exportTimeLayout = "2006-01-02 15:04:05"

type historyEntry struct {
	at    time.Time
	label string // "bob", "[group] bob", "you → bob", "you → bob (other session)", "!"
	text  string // as sent or received, not yet sanitized
}

func (e historyEntry) size() int { return len(e.label) + len(e.text) + 32 }

// history is the bounded conversation. The receiver and the input loop
// both add to it.
type history struct {
	mu      sync.Mutex
	entries []historyEntry // guarded by mu; oldest first
	bytes   int            // guarded by mu
	dropped int            // guarded by mu; entries forgotten to stay in bounds
}

func (h *history) add(e historyEntry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.entries = append(h.entries, e)
	h.bytes += e.size()
	n := 0
	for len(h.entries)-n > MaxHistoryMessages || h.bytes > MaxHistoryBytes && len(h.entries)-n > 1 {
		h.bytes -= h.entries[n].size()
		n++
	}
	if n > 0 {
		clear(h.entries[:n])
		h.entries = h.entries[n:]
		h.dropped += n
	}
}

func (h *history) snapshot() ([]historyEntry, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]historyEntry(nil), h.entries...), h.dropped
}

// format lays one entry out as plain text: the date and time, the label,
// the sanitized text with its later lines indented.
func (e historyEntry) format() string {
	prefix := e.at.Format(exportTimeLayout) + " " + Sanitize(e.label) + ": "
	if e.label == "!" {
		prefix = e.at.Format(exportTimeLayout) + " ! "
	}
	indent := strings.Repeat(" ", runeCount(prefix))
	return prefix + strings.ReplaceAll(Sanitize(e.text), "\n", "\n"+indent)
}

// remember adds a message to the history, timed by the session's clock.
func (s *session) remember(label, text string) {
	s.hist.add(historyEntry{at: s.opts.Now(), label: label, text: text})
}

// :export: FILE
func cmdExport(s *session, arg string) (bool, error) {
	path := strings.TrimSpace(arg)
	if n := len(path); n >= 2 && (path[0] == '"' || path[0] == '\'') && path[n-1] == path[0] {
		path = path[1 : n-1]
	}
	if path == "" {
		s.out.line("usage: :export: FILE (a new file: an existing one is never overwritten)")
		return false, nil
	}
	path = expandHome(path)
	entries, dropped := s.hist.snapshot()
	if err := writeExport(path, s.c.user, s.c.addr, s.opts.Now(), entries, dropped); err != nil {
		s.out.line("! not exported: " + Sanitize(err.Error()))
		return false, nil
	}
	s.out.linef("exported %d messages to %s", len(entries), displayName(path))
	return false, nil
}

// writeExport writes the conversation to path, a file that must not exist
// yet (mode 0600), and fsyncs it and its directory.
func writeExport(path, user, server string, now time.Time, entries []historyEntry, dropped int) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists; export never overwrites a file, choose another name", path)
	}
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "# SSL-Messager conversation of %s on %s, exported %s\n",
		Sanitize(user), Sanitize(server), now.Format(exportTimeLayout+" -0700"))
	if dropped > 0 {
		fmt.Fprintf(w, "# (%d older messages of this session were not kept)\n", dropped)
	}
	for _, e := range entries {
		w.WriteString(e.format())
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return durable.SyncDir(filepath.Dir(path))
}
