// Package offline stores the direct messages sent to users while they were
// offline, durably, until they are delivered.
//
// Each recipient has one append-only log file in the store's directory,
// NAME.log (NAME is the user name in lower case), and, once some of its
// messages were delivered but not all, NAME.ack holding the highest
// sequence number delivered. A log starts with the line "SSLMOFF1\n"; each
// record is a 4-byte big-endian payload length, the CRC-32C of the
// payload, and the payload: the sequence number (8 bytes), the time it was
// stored (Unix nanoseconds, 8 bytes), the sender's name (1 byte of length,
// then the name) and the text, as sent, in the clear.
//
// Append fsyncs the record (and, for a new log, the directory) before it
// returns, so a message the sender was told is queued survives a crash. A
// crash during an append leaves at most a torn last record, which the next
// load cuts off (it was never acknowledged). Ack writes NAME.ack atomically
// or, once every message is delivered, removes both files and fsyncs the
// directory, so a delivered message never comes back. A damaged record
// that is not the last one stops that recipient's queue with an error
// naming the file; nothing is dropped silently.
//
// Sequence numbers grow per recipient: each is the storing time in
// microseconds, or one more than the last one if the clock went back, so
// they keep growing even when a queue is emptied, removed or lost.
package offline

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"sslmessager/internal/durable"
	"sslmessager/internal/wire"
)

// Defaults of Options.
const (
	// DefaultMaxPerRecipient is how many undelivered messages one
	// recipient may have stored.
	DefaultMaxPerRecipient = 1000
	// DefaultMaxTotalBytes bounds the store's log files together.
	DefaultMaxTotalBytes = 1 << 30
	// NoLimit turns a limit of Options off.
	NoLimit = -1
)

const (
	fileMagic    = "SSLMOFF1\n"
	logSuffix    = ".log"
	ackSuffix    = ".ack"
	recordHeader = 8 // payload length, CRC-32C
	// maxPayload is the largest payload a valid record has: seq, time,
	// the sender's length byte and name, and the longest text.
	maxPayload = 8 + 8 + 1 + wire.MaxWordBytes + 4*wire.MaxTextRunes
	// compactMin is how many bytes of delivered records a log may keep at
	// its start before Ack rewrites it without them (when they are also
	// at least half of it).
	compactMin = 64 << 10
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Errors of Append. Each leaves the store as it was.
var (
	// ErrQueueFull: the recipient has Options.MaxPerRecipient
	// undelivered messages.
	ErrQueueFull = errors.New("offline: the recipient's queue is full")
	// ErrStoreFull: the message would take the store past
	// Options.MaxTotalBytes.
	ErrStoreFull = errors.New("offline: the store is full")
	// ErrInvalid: a recipient or sender that is not a user name, or a
	// text longer than wire.MaxTextRunes.
	ErrInvalid = errors.New("offline: invalid message")
)

// Options shape a Store. Zero values take the defaults; the limits take
// NoLimit to turn them off.
type Options struct {
	MaxPerRecipient int   // undelivered messages per recipient
	MaxTotalBytes   int64 // bytes of all log files together
	Logger          *slog.Logger
	Now             func() time.Time // nil: time.Now
}

// Message is one stored message.
type Message struct {
	Seq    uint64    // grows per recipient
	Sent   time.Time // when it was stored (UTC)
	Sender string    // as registered
	Text   string    // as sent
}

// Store is a directory of per-recipient message queues. It is safe for
// concurrent use; operations on different recipients run in parallel.
type Store struct {
	dir  string
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	queues map[string]*queue // guarded by mu; by file name stem
	total  int64             // guarded by mu; bytes of the log files
}

// queue is one recipient's state; loaded from its files on first use.
// Lock order: queue.mu, then Store.mu.
type queue struct {
	mu     sync.Mutex
	stem   string // the file name stem: the user name in lower case
	loaded bool
	broken error // a damaged log: every operation fails with it

	size         int64  // bytes of the log file; 0: there is none
	records      int    // records in it
	lastSeq      uint64 // highest seq ever given (also after the log went)
	acked        uint64 // every record up to it is delivered
	ackedRecords int    // records with seq <= acked
	ackedEnd     int64  // offset just after them

	// Where the last Read stopped, so the next one reads on from there.
	gen       uint64 // changes whenever the log is rewritten or removed
	hintGen   uint64
	hintAfter uint64
	hintOff   int64
}

// Open opens the store in dir, creating it (0700) if needed. It removes
// temporary files a crash left and counts the bytes stored; each
// recipient's log is read on first use.
func Open(dir string, opts Options) (*Store, error) {
	if opts.MaxPerRecipient == 0 {
		opts.MaxPerRecipient = DefaultMaxPerRecipient
	}
	if opts.MaxTotalBytes == 0 {
		opts.MaxTotalBytes = DefaultMaxTotalBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("offline store: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("offline store: %w", err)
	}
	s := &Store{dir: dir, opts: opts, log: opts.Logger, queues: make(map[string]*queue)}
	for _, e := range entries {
		name := e.Name()
		switch {
		case durable.IsTemp(name):
			// durable.WriteFile's temporary file, left by a crash.
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return nil, fmt.Errorf("offline store: %w", err)
			}
		case strings.HasSuffix(name, logSuffix) && e.Type().IsRegular():
			info, err := e.Info()
			if err != nil {
				return nil, fmt.Errorf("offline store: %w", err)
			}
			s.total += info.Size()
		}
	}
	return s, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// MaxPerRecipient is the per-recipient bound in force (NoLimit: none).
func (s *Store) MaxPerRecipient() int { return s.opts.MaxPerRecipient }

// Bytes is how many bytes the log files hold together.
func (s *Store) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// stem is the file name stem of a recipient: its name in lower case,
// which must be a user name's letters, digits and '_'.
func stem(name string) (string, error) {
	k := wire.FoldName(name)
	if k == "" || len(k) > wire.MaxWordBytes {
		return "", fmt.Errorf("%w: recipient %q", ErrInvalid, name)
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return "", fmt.Errorf("%w: recipient %q", ErrInvalid, name)
		}
	}
	return k, nil
}

// queue returns the loaded, locked queue of recipient; the caller unlocks
// q.mu.
func (s *Store) queue(recipient string) (*queue, error) {
	k, err := stem(recipient)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	q := s.queues[k]
	if q == nil {
		q = &queue{stem: k}
		s.queues[k] = q
	}
	s.mu.Unlock()
	q.mu.Lock()
	if !q.loaded {
		if err := s.load(q); err != nil {
			q.broken = err
			s.log.Error("offline queue damaged", "err", err)
		}
		q.loaded = true
	}
	if q.broken != nil {
		q.mu.Unlock()
		return nil, q.broken
	}
	return q, nil
}

func (s *Store) logPath(q *queue) string { return filepath.Join(s.dir, q.stem+logSuffix) }
func (s *Store) ackPath(q *queue) string { return filepath.Join(s.dir, q.stem+ackSuffix) }

// Append stores a message from sender (as registered) to recipient and
// returns it once it is on disk (fsynced). It fails with ErrQueueFull,
// ErrStoreFull or ErrInvalid without storing anything.
func (s *Store) Append(recipient, sender, text string) (Message, error) {
	if !validSender(sender) || utf8.RuneCountInString(text) > wire.MaxTextRunes || len(text) > 4*wire.MaxTextRunes {
		return Message{}, fmt.Errorf("%w: sender %q or a text of %d bytes", ErrInvalid, sender, len(text))
	}
	q, err := s.queue(recipient)
	if err != nil {
		return Message{}, err
	}
	defer q.mu.Unlock()
	if max := s.opts.MaxPerRecipient; max > 0 && q.records-q.ackedRecords >= max {
		return Message{}, ErrQueueFull
	}
	now := s.opts.Now().UTC()
	m := Message{Seq: max(q.lastSeq+1, uint64(max(now.UnixMicro(), 1))), Sent: now, Sender: sender, Text: text}
	rec := encode(m)
	if q.size == 0 {
		rec = append([]byte(fileMagic), rec...)
	}
	s.mu.Lock()
	if s.opts.MaxTotalBytes > 0 && s.total+int64(len(rec)) > s.opts.MaxTotalBytes {
		s.mu.Unlock()
		return Message{}, ErrStoreFull
	}
	s.total += int64(len(rec))
	s.mu.Unlock()
	if err := s.write(q, rec); err != nil {
		s.mu.Lock()
		s.total -= int64(len(rec))
		s.mu.Unlock()
		return Message{}, err
	}
	if q.size == 0 {
		q.ackedEnd = int64(len(fileMagic))
	}
	q.size += int64(len(rec))
	q.records++
	q.lastSeq = m.Seq
	return m, nil
}

// write appends rec to q's log and fsyncs it (and the directory when it
// creates the log). On failure the log is cut back to its old size, so a
// half-written record never stays in front of later ones; if even that
// fails, the queue reloads from disk on its next use.
func (s *Store) write(q *queue, rec []byte) error {
	path := s.logPath(q)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("offline store: %w", err)
	}
	_, err = f.Write(rec)
	if err == nil {
		err = f.Sync()
	}
	if err == nil && q.size == 0 {
		err = durable.SyncDir(s.dir)
	}
	if err != nil {
		if terr := f.Truncate(q.size); terr != nil {
			q.loaded = false
		} else if q.size == 0 {
			os.Remove(path)
		}
		f.Close()
		return fmt.Errorf("offline store: append to %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("offline store: append to %s: %w", path, err)
	}
	return nil
}

func validSender(name string) bool {
	if name == "" || len(name) > wire.MaxWordBytes {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// encode returns m as a record.
func encode(m Message) []byte {
	n := 8 + 8 + 1 + len(m.Sender) + len(m.Text)
	b := make([]byte, recordHeader, recordHeader+n)
	b = binary.BigEndian.AppendUint64(b, m.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Sent.UnixNano()))
	b = append(b, byte(len(m.Sender)))
	b = append(b, m.Sender...)
	b = append(b, m.Text...)
	binary.BigEndian.PutUint32(b[0:4], uint32(n))
	binary.BigEndian.PutUint32(b[4:8], crc32.Checksum(b[recordHeader:], crcTable))
	return b
}

// errTorn is a record that is cut short or fails its checksum.
var errTorn = errors.New("torn or damaged record")

// readRecord reads one record from r. io.EOF: no more records.
func readRecord(r io.Reader) (Message, int64, error) {
	var h [recordHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return Message{}, 0, io.EOF
		}
		return Message{}, 0, errTorn
	}
	n := binary.BigEndian.Uint32(h[0:4])
	if n < 17 || n > maxPayload {
		return Message{}, 0, errTorn
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return Message{}, 0, errTorn
	}
	if crc32.Checksum(p, crcTable) != binary.BigEndian.Uint32(h[4:8]) {
		return Message{}, 0, errTorn
	}
	sl := int(p[16])
	if 17+sl > len(p) {
		return Message{}, 0, errTorn
	}
	m := Message{
		Seq:    binary.BigEndian.Uint64(p[0:8]),
		Sent:   time.Unix(0, int64(binary.BigEndian.Uint64(p[8:16]))).UTC(),
		Sender: string(p[17 : 17+sl]),
		Text:   string(p[17+sl:]),
	}
	return m, int64(recordHeader) + int64(n), nil
}

// load reads q's files: the delivered mark and the log, whose torn last
// record (a crash during an append) it cuts off. A damaged record with
// more than one record's worth of data after it is not a torn append: it
// is an error, and the file is left as it is.
func (s *Store) load(q *queue) error {
	q.broken = nil
	q.size, q.records, q.acked, q.ackedRecords, q.ackedEnd = 0, 0, 0, 0, 0
	q.gen++
	if b, err := os.ReadFile(s.ackPath(q)); err == nil {
		v, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if perr != nil {
			return fmt.Errorf("offline store: %s: not a sequence number", s.ackPath(q))
		}
		q.acked = v
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("offline store: %w", err)
	}
	q.lastSeq = max(q.lastSeq, q.acked)
	path := s.logPath(q)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("offline store: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("offline store: %w", err)
	}
	onDisk := info.Size()
	magic := make([]byte, len(fileMagic))
	n, _ := io.ReadFull(f, magic)
	if string(magic[:n]) != fileMagic[:n] {
		return fmt.Errorf("offline store: %s is not an offline message log", path)
	}
	if n < len(fileMagic) {
		// Cut off while it was created: nothing in it was acknowledged.
		s.log.Warn("offline queue: removing a log cut off at its creation", "file", path)
		return s.removeFiles(q, onDisk)
	}
	r := bufio.NewReader(f)
	off := int64(len(fileMagic))
	q.ackedEnd = off
	var prev uint64
	for {
		m, size, err := readRecord(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if onDisk-off > recordHeader+maxPayload {
				return fmt.Errorf("offline store: %s: damaged record at byte %d, not at the end: move the file away to go on without its messages", path, off)
			}
			s.log.Warn("offline queue: cutting off a torn last record", "file", path, "offset", off, "bytes", onDisk-off)
			if err := f.Truncate(off); err != nil {
				return fmt.Errorf("offline store: %w", err)
			}
			if err := f.Sync(); err != nil {
				return fmt.Errorf("offline store: %w", err)
			}
			break
		}
		if m.Seq <= prev || m.Seq == 0 {
			return fmt.Errorf("offline store: %s: sequence numbers out of order at byte %d", path, off)
		}
		prev = m.Seq
		off += size
		q.records++
		q.lastSeq = max(q.lastSeq, m.Seq)
		if m.Seq <= q.acked {
			q.ackedRecords++
			q.ackedEnd = off
		}
	}
	q.size = off
	if off != onDisk {
		s.mu.Lock()
		s.total -= onDisk - off
		s.mu.Unlock()
	}
	if q.records == q.ackedRecords {
		// Everything was delivered; a crash came before the files went.
		return s.removeFiles(q, q.size)
	}
	return nil
}

// removeFiles removes q's log (of size bytes) and delivered mark and
// fsyncs the directory.
func (s *Store) removeFiles(q *queue, size int64) error {
	if err := os.Remove(s.logPath(q)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("offline store: %w", err)
	}
	s.mu.Lock()
	s.total -= size
	s.mu.Unlock()
	if err := os.Remove(s.ackPath(q)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("offline store: %w", err)
	}
	if err := durable.SyncDir(s.dir); err != nil {
		return err
	}
	q.size, q.records, q.ackedRecords, q.ackedEnd = 0, 0, 0, 0
	q.gen++
	return nil
}

// Pending is how many messages for recipient are not delivered yet.
func (s *Store) Pending(recipient string) (int, error) {
	q, err := s.queue(recipient)
	if err != nil {
		return 0, err
	}
	defer q.mu.Unlock()
	return q.records - q.ackedRecords, nil
}

// Read returns up to max undelivered messages for recipient with a
// sequence number above after, oldest first. It reads on from where the
// previous Read with that after stopped, so a backlog read batch by batch
// is read once.
func (s *Store) Read(recipient string, after uint64, max int) ([]Message, error) {
	q, err := s.queue(recipient)
	if err != nil {
		return nil, err
	}
	defer q.mu.Unlock()
	after = maxU(after, q.acked)
	if q.records == q.ackedRecords || after >= q.lastSeq || max <= 0 {
		return nil, nil
	}
	off := q.ackedEnd
	if q.hintGen == q.gen && q.hintAfter == after && q.hintOff >= off {
		off = q.hintOff
	}
	f, err := os.Open(s.logPath(q))
	if err != nil {
		return nil, fmt.Errorf("offline store: %w", err)
	}
	defer f.Close()
	r := bufio.NewReader(io.NewSectionReader(f, off, q.size-off))
	var msgs []Message
	for len(msgs) < max {
		m, size, err := readRecord(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("offline store: %s: damaged record at byte %d", s.logPath(q), off)
		}
		off += size
		if m.Seq > after {
			msgs = append(msgs, m)
		}
	}
	if len(msgs) > 0 {
		q.hintGen, q.hintAfter, q.hintOff = q.gen, msgs[len(msgs)-1].Seq, off
	}
	return msgs, nil
}

func maxU(a, b uint64) uint64 { return max(a, b) }

// Ack marks every message for recipient up to and including seq as
// delivered, durably: once it returns they are never read again, also
// after a crash. A seq beyond the last message counts as the last.
// Acknowledging what is already acknowledged does nothing.
func (s *Store) Ack(recipient string, seq uint64) error {
	q, err := s.queue(recipient)
	if err != nil {
		return err
	}
	defer q.mu.Unlock()
	if q.records == q.ackedRecords || seq <= q.acked {
		return nil
	}
	seq = min(seq, q.lastSeq)
	if seq == q.lastSeq {
		if err := s.removeFiles(q, q.size); err != nil {
			q.loaded = false // find out from the disk what is left
			return err
		}
		q.acked = seq
		return nil
	}
	if err := durable.WriteFile(s.ackPath(q), 0o600, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "%d\n", seq)
		return err
	}); err != nil {
		return fmt.Errorf("offline store: %w", err)
	}
	q.acked = seq
	if err := s.advance(q); err != nil {
		q.loaded = false
		return err
	}
	return s.compact(q)
}

// advance moves q's delivered counters over the records up to q.acked.
func (s *Store) advance(q *queue) error {
	f, err := os.Open(s.logPath(q))
	if err != nil {
		return fmt.Errorf("offline store: %w", err)
	}
	defer f.Close()
	r := bufio.NewReader(io.NewSectionReader(f, q.ackedEnd, q.size-q.ackedEnd))
	for {
		m, size, err := readRecord(r)
		if errors.Is(err, io.EOF) || err == nil && m.Seq > q.acked {
			return nil
		}
		if err != nil {
			return fmt.Errorf("offline store: %s: damaged record at byte %d", s.logPath(q), q.ackedEnd)
		}
		q.ackedEnd += size
		q.ackedRecords++
	}
}

// compact rewrites q's log without its delivered records once they are
// at least compactMin bytes and half of it. A crash leaves the old log or
// the new one, both right with the delivered mark.
func (s *Store) compact(q *queue) error {
	done := q.ackedEnd - int64(len(fileMagic))
	if done < compactMin || done < (q.size-int64(len(fileMagic)))/2 {
		return nil
	}
	path := s.logPath(q)
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("offline store: %w", err)
	}
	defer f.Close()
	keep := q.size - q.ackedEnd
	if err := durable.WriteFile(path, 0o600, func(w io.Writer) error {
		if _, err := io.WriteString(w, fileMagic); err != nil {
			return err
		}
		_, err := io.Copy(w, io.NewSectionReader(f, q.ackedEnd, keep))
		return err
	}); err != nil {
		return fmt.Errorf("offline store: %w", err)
	}
	newSize := int64(len(fileMagic)) + keep
	s.mu.Lock()
	s.total -= q.size - newSize
	s.mu.Unlock()
	q.size, q.records, q.ackedRecords, q.ackedEnd = newSize, q.records-q.ackedRecords, 0, int64(len(fileMagic))
	q.gen++
	return nil
}

// RemoveAll deletes every message stored for recipient (its account was
// deleted), durably.
func (s *Store) RemoveAll(recipient string) error {
	k, err := stem(recipient)
	if err != nil {
		return err
	}
	s.mu.Lock()
	q := s.queues[k]
	if q == nil {
		q = &queue{stem: k}
		s.queues[k] = q
	}
	s.mu.Unlock()
	q.mu.Lock()
	defer q.mu.Unlock()
	size := q.size
	if !q.loaded || q.broken != nil {
		if info, err := os.Stat(s.logPath(q)); err == nil {
			size = info.Size()
		}
	}
	if err := s.removeFiles(q, size); err != nil {
		q.loaded = false
		return err
	}
	q.acked, q.broken, q.loaded = q.lastSeq, nil, true
	return nil
}
