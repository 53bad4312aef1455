// Package bans is the server's ban list: users, IP addresses and CIDR
// prefixes that may not connect or log in, each forever or until a time,
// kept in a CSV file (bans.csv) beside users.csv.
//
// Reads (AddrBanned, UserBanned) take no lock and never touch the disk:
// they look at an immutable snapshot that each change or Reload replaces
// atomically, so the accept loop can ask on every connection. Changes
// rewrite the whole file atomically (durable.WriteFile) before the new
// snapshot is published: a ban that Add returned nil for survives a crash.
// A ban whose time has passed stops applying at once and is dropped from
// the file at the next write.
package bans

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gocarina/gocsv"

	"sslmessager/internal/durable"
	"sslmessager/internal/wire"
)

// Kind is what a ban applies to.
type Kind string

// Kinds of ban, as stored in the kind column.
const (
	KindUser Kind = "user" // a user name, in any case
	KindIP   Kind = "ip"   // one IP address
	KindCIDR Kind = "cidr" // every address in a prefix
)

// MaxReasonBytes bounds a ban's reason.
const MaxReasonBytes = 200

// Errors of the store. Test with errors.Is.
var (
	ErrTarget    = errors.New("bans: want a user name, an IP address or a CIDR prefix (10.0.0.0/8)")
	ErrReason    = fmt.Errorf("bans: a reason is at most %d bytes", MaxReasonBytes)
	ErrNotBanned = errors.New("bans: not banned")
)

// Ban is one entry of the list.
type Ban struct {
	Kind    Kind
	Value   string    // a user name as given, a canonical IP address or a masked prefix
	Until   time.Time // zero: forever
	Reason  string    // free text as the operator typed it; may be empty
	Created time.Time
}

// Active reports whether b applies at now.
func (b Ban) Active(now time.Time) bool { return b.Until.IsZero() || now.Before(b.Until) }

// row is one line of bans.csv. Times are RFC 3339 in UTC; an empty until
// is forever.
type row struct {
	Kind    string `csv:"kind"`
	Value   string `csv:"value"`
	Until   string `csv:"until"`
	Reason  string `csv:"reason"`
	Created string `csv:"created"`
}

var header = []string{"kind", "value", "until", "reason", "created"}

// ParseTarget reads the target of a ban as an operator types it: a CIDR
// prefix (it has a '/'; stored masked: 10.1.2.3/8 is 10.0.0.0/8), an IP
// address (IPv4-mapped IPv6 addresses become IPv4), or a user name.
// It returns the kind and the canonical value, or ErrTarget.
func ParseTarget(s string) (Kind, string, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return "", "", fmt.Errorf("%w: %v", ErrTarget, err)
		}
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return "", "", fmt.Errorf("%w: %s", ErrTarget, s)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return KindCIDR, p.Masked().String(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return KindIP, a.Unmap().WithZone("").String(), nil
	}
	if err := wire.CheckUserName(s); err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrTarget, err)
	}
	return KindUser, s, nil
}

// snapshot is the list as the readers see it; never changed once
// published.
type snapshot struct {
	bans  []Ban          // every entry as loaded or written, expired ones too
	users map[string]int // wire.FoldName(name) -> index in bans
	addrs map[netip.Addr]int
	// cidrs holds the prefix bans by prefix length, so that a lookup
	// masks the address once per length in use (at most 33 for IPv4, 129
	// for IPv6) however many prefixes are banned.
	cidrs map[int]map[netip.Prefix]int
	bits  []int // the lengths in cidrs
}

func newSnapshot(bans []Ban) *snapshot {
	s := &snapshot{bans: bans, users: map[string]int{}, addrs: map[netip.Addr]int{}, cidrs: map[int]map[netip.Prefix]int{}}
	for i, b := range bans {
		switch b.Kind {
		case KindUser:
			s.users[wire.FoldName(b.Value)] = i
		case KindIP:
			s.addrs[netip.MustParseAddr(b.Value)] = i
		case KindCIDR:
			p := netip.MustParsePrefix(b.Value)
			if s.cidrs[p.Bits()] == nil {
				s.cidrs[p.Bits()] = map[netip.Prefix]int{}
				s.bits = append(s.bits, p.Bits())
			}
			s.cidrs[p.Bits()][p] = i
		}
	}
	return s
}

// Store is an open ban list. Its methods are safe for concurrent use.
type Store struct {
	path string
	now  func() time.Time

	mu   sync.Mutex // serializes Add, Remove and Reload (which do I/O)
	snap atomic.Pointer[snapshot]
}

// Open loads the ban list at path; a missing file is an empty list (the
// file is created by the first ban). A malformed file is an error naming
// the file and line.
func Open(path string) (*Store, error) {
	s := &Store{path: path, now: time.Now}
	if err := durable.RemoveTemps(path); err != nil && !errors.Is(err, fs.ErrNotExist) { // a crash's leftovers
		return nil, fmt.Errorf("bans: %w", err)
	}
	bans, err := load(path)
	if err != nil {
		return nil, err
	}
	s.snap.Store(newSnapshot(bans))
	return s, nil
}

// Path is the file the store reads and writes.
func (s *Store) Path() string { return s.path }

// Reload reads the file again and makes it the list in force. If the file
// is malformed the list in force stays as it was and the error says why.
// It returns how many active bans the new list has.
func (s *Store) Reload() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	bans, err := load(s.path)
	if err != nil {
		return 0, err
	}
	s.snap.Store(newSnapshot(bans))
	return len(s.List()), nil
}

// AddrBanned reports whether a is banned, by address or by prefix.
// IPv4-mapped IPv6 addresses count as IPv4. It takes no lock.
func (s *Store) AddrBanned(a netip.Addr) bool {
	_, ok := s.AddrBan(a)
	return ok
}

// AddrBan returns the active ban that covers a, if any.
func (s *Store) AddrBan(a netip.Addr) (Ban, bool) {
	a = a.Unmap().WithZone("")
	snap := s.snap.Load()
	now := s.now()
	if i, ok := snap.addrs[a]; ok && snap.bans[i].Active(now) {
		return snap.bans[i], true
	}
	for _, bits := range snap.bits {
		p, err := a.Prefix(bits)
		if err != nil {
			continue // a length of the other address family
		}
		if i, ok := snap.cidrs[bits][p]; ok && snap.bans[i].Active(now) {
			return snap.bans[i], true
		}
	}
	return Ban{}, false
}

// UserBanned reports whether the user name (any case) is banned, and the
// ban's reason as the operator typed it (escape it before sending it).
func (s *Store) UserBanned(name string) (reason string, banned bool) {
	snap := s.snap.Load()
	if i, ok := snap.users[wire.FoldName(name)]; ok && snap.bans[i].Active(s.now()) {
		return snap.bans[i].Reason, true
	}
	return "", false
}

// List returns the active bans in the order they were made.
func (s *Store) List() []Ban {
	now := s.now()
	var out []Ban
	for _, b := range s.snap.Load().bans {
		if b.Active(now) {
			out = append(out, b)
		}
	}
	return out
}

// Add bans target (see ParseTarget) until until (zero: forever) and
// returns the ban as stored. A ban of the same target is replaced. The
// file is rewritten before Add returns; on error nothing changed.
func (s *Store) Add(target string, until time.Time, reason string) (Ban, error) {
	kind, value, err := ParseTarget(target)
	if err != nil {
		return Ban{}, err
	}
	if len(reason) > MaxReasonBytes {
		return Ban{}, ErrReason
	}
	now := s.now()
	b := Ban{Kind: kind, Value: value, Until: until.UTC(), Reason: reason, Created: now.UTC().Truncate(time.Second)}
	if !until.IsZero() && !until.After(now) {
		return Ban{}, errors.New("bans: the end of a ban must lie in the future")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.kept(func(o Ban) bool { return !same(o, b) })
	next = append(next, b)
	if err := s.save(next); err != nil {
		return Ban{}, err
	}
	return b, nil
}

// Remove lifts the ban of target (see ParseTarget); ErrNotBanned if there
// is no active one. The file is rewritten before Remove returns.
func (s *Store) Remove(target string) (Ban, error) {
	kind, value, err := ParseTarget(target)
	if err != nil {
		return Ban{}, err
	}
	key := Ban{Kind: kind, Value: value}
	s.mu.Lock()
	defer s.mu.Unlock()
	var found Ban
	ok := false
	next := s.kept(func(o Ban) bool {
		if same(o, key) {
			found, ok = o, true
			return false
		}
		return true
	})
	if !ok {
		return Ban{}, ErrNotBanned
	}
	if err := s.save(next); err != nil {
		return Ban{}, err
	}
	return found, nil
}

// kept returns the active bans that keep says to keep. Must hold s.mu.
func (s *Store) kept(keep func(Ban) bool) []Ban {
	now := s.now()
	var out []Ban
	for _, b := range s.snap.Load().bans {
		if b.Active(now) && keep(b) {
			out = append(out, b)
		}
	}
	return out
}

func same(a, b Ban) bool {
	if a.Kind != b.Kind {
		return false
	}
	if a.Kind == KindUser {
		return wire.FoldName(a.Value) == wire.FoldName(b.Value)
	}
	return a.Value == b.Value
}

// save writes bans to the file atomically, then publishes them. Must hold
// s.mu.
func (s *Store) save(bans []Ban) error {
	rows := make([]row, len(bans))
	for i, b := range bans {
		rows[i] = row{Kind: string(b.Kind), Value: b.Value, Reason: b.Reason, Created: b.Created.UTC().Format(time.RFC3339)}
		if !b.Until.IsZero() {
			rows[i].Until = b.Until.UTC().Format(time.RFC3339)
		}
	}
	err := durable.WriteFile(s.path, 0o600, func(w io.Writer) error {
		if len(rows) == 0 {
			cw := csv.NewWriter(w)
			cw.Write(header)
			cw.Flush()
			return cw.Error()
		}
		return gocsv.MarshalCSV(rows, gocsv.NewSafeCSVWriter(csv.NewWriter(w)))
	})
	if err != nil {
		return fmt.Errorf("bans: %w", err)
	}
	s.snap.Store(newSnapshot(bans))
	return nil
}

// load reads and checks the file at path; a missing file is no bans.
func load(path string) ([]Ban, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bans: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	first, err := csv.NewReader(bytes.NewReader(data)).Read()
	if err != nil {
		return nil, fmt.Errorf("bans: %s: %w", path, err)
	}
	if !slices.Equal(first, header) {
		return nil, fmt.Errorf("bans: %s: line 1: want the header %s", path, strings.Join(header, ","))
	}
	var rows []row
	if err := gocsv.UnmarshalBytes(data, &rows); err != nil {
		return nil, fmt.Errorf("bans: %s: %w", path, err)
	}
	bans := make([]Ban, 0, len(rows))
	for i, r := range rows {
		b, err := r.ban()
		if err != nil {
			return nil, fmt.Errorf("bans: %s: line %d: %w", path, i+2, err) // the header is line 1; bans are one line each
		}
		bans = append(bans, b)
	}
	return bans, nil
}

func (r row) ban() (Ban, error) {
	kind, value, err := ParseTarget(r.Value)
	if err != nil {
		return Ban{}, err
	}
	if string(kind) != r.Kind {
		return Ban{}, fmt.Errorf("kind %q does not fit the value %q (want %s)", r.Kind, r.Value, kind)
	}
	b := Ban{Kind: kind, Value: value, Reason: r.Reason}
	if r.Until != "" {
		if b.Until, err = time.Parse(time.RFC3339, r.Until); err != nil {
			return Ban{}, fmt.Errorf("until: %w", err)
		}
	}
	if r.Created != "" {
		if b.Created, err = time.Parse(time.RFC3339, r.Created); err != nil {
			return Ban{}, fmt.Errorf("created: %w", err)
		}
	}
	if len(b.Reason) > MaxReasonBytes {
		return Ban{}, ErrReason
	}
	return b, nil
}
