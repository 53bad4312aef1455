package messenger

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"sslmessager/internal/e2e"
	"sslmessager/internal/e2e/keystore"
	"sslmessager/internal/e2e/safety"
	"sslmessager/internal/e2e/trust"
	"sslmessager/internal/wire"
)

// The key store of one user on one server (see e2e.go for how a session
// uses it). Keys wraps a keystore.Store: the identity secrets are unlocked
// once; the state (prekey secrets, sequence counters, replay windows, the
// trust store) is one encrypted file that every change rewrites through a
// transaction: take the directory's lock file, read the state from disk,
// change it, write it back. So two processes of the same user on one
// machine (a chat and a one-shot send) never hand out the same sequence
// number or lose each other's pins.

// Prekey schedule.
const (
	// SPKLifetime is how long a new signed prekey is announced for.
	SPKLifetime = 14 * 24 * time.Hour
	// SPKRotateBefore: a prekey with less than this left is replaced (at
	// log-in, or before a message is sent in a long session).
	SPKRotateBefore = 7 * 24 * time.Hour
	// SPKKeep is how long a replaced prekey's secret is kept, for the
	// messages sealed to it that wait in the offline queue: the 7 days it
	// was still announced plus the queue's 30-day life.
	SPKKeep = 37 * 24 * time.Hour
)

// Limits of the state.
const (
	// maxWindows bounds the replay windows kept (one per sender device);
	// the least recently used goes first.
	maxWindows = 4096
	// seqDeviceShift: a sequence number is device<<seqDeviceShift | n.
	seqDeviceShift = 40
	seqCounterMask = 1<<seqDeviceShift - 1
	maxDevice      = 1<<23 - 1
	stateMagic     = "sslm-cs\x01"
	// lockFile is the lock the state transactions take, in the store's
	// directory.
	lockFile = "lock"
)

// Errors of the key store.
var (
	// ErrKeyPassphrase is OpenKeys' error for a passphrase that does not
	// open the store.
	ErrKeyPassphrase = errors.New("the key passphrase does not open the end-to-end key store")
	errStateFormat   = errors.New("end-to-end state: malformed")
)

// Keys is a user's unlocked end-to-end keys and state on one server. It is
// safe for concurrent use and may serve several sessions in turn (a
// reconnecting chat keeps it).
type Keys struct {
	store *keystore.Store
	id    *e2e.Identity
	user  string // as given to OpenKeys; bundles carry the name the server registered
	now   func() time.Time

	mu     sync.Mutex // guards st and blocks, and serializes transactions in this process
	st     *keyState
	blocks map[string]seqBlock // by folded peer: sequence numbers reserved by this process (reserveSeqs)
}

// keyState is what state.bin holds.
type keyState struct {
	device  uint32                 // this copy of the identity (random; a new one after import)
	prekeys []heldPrekey           // newest last
	seqs    map[string]uint64      // by folded peer: the last counter value reserved (the end of the latest block)
	windows map[string]*heldWindow // by windowKey
	trust   *trust.Store
}

type heldPrekey struct {
	spk     *e2e.SignedPrekey
	retired time.Time // zero: the current one
}

type heldWindow struct {
	w    e2e.Window
	used time.Time // whole seconds
}

// KeyStoreDir is the key store directory of user on the server whose
// certificate has the SHA-256 fingerprint certSHA256 (hex), inside the
// configuration directory configDir: configDir/<certSHA256>/<user
// folded>. "" when configDir is "".
func KeyStoreDir(configDir, certSHA256, user string) string {
	if configDir == "" {
		return ""
	}
	return filepath.Join(configDir, certSHA256, wire.FoldName(user))
}

// ServerCertSHA256 is the SHA-256 of the server's leaf certificate, in
// lower-case hex: the key store is per server.
func (c *Conn) ServerCertSHA256() string {
	certs := c.tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return ""
	}
	sum := sha256.Sum256(certs[0].Raw)
	return hex.EncodeToString(sum[:])
}

// OpenKeys opens the key store in dir with passphrase, or, when dir holds
// none and create is true, makes a new identity there (the directory is
// created 0700). It unlocks the identity (scrypt: about a second) and reads
// the state. Errors: ErrKeyPassphrase; keystore.ErrNoIdentity when there
// is none and create is false; the key store's errors for a damaged or
// unsafe store (its permissions, say), each naming what is wrong.
func OpenKeys(dir, user, passphrase string, create bool) (*Keys, error) {
	if dir == "" {
		return nil, errors.New("no configuration directory for the end-to-end keys")
	}
	st, err := keystore.Open(dir, passphrase)
	switch {
	case errors.Is(err, keystore.ErrPassphrase):
		return nil, ErrKeyPassphrase
	case errors.Is(err, keystore.ErrNoIdentity) && create:
		id, err := e2e.NewIdentity(nil)
		if err != nil {
			return nil, err
		}
		secrets, err := id.MarshalBinary()
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
			return nil, err
		}
		if st, err = keystore.Create(dir, passphrase, secrets); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	}
	return newKeys(st, user)
}

func newKeys(st *keystore.Store, user string) (*Keys, error) {
	id, err := e2e.UnmarshalIdentity(st.Secrets())
	if err != nil {
		return nil, fmt.Errorf("end-to-end identity in %s: %w", st.Dir(), err)
	}
	k := &Keys{store: st, id: id, user: user, now: time.Now, blocks: map[string]seqBlock{}}
	if err := k.update(func(*keyState) error { return nil }); err != nil {
		return nil, err
	}
	return k, nil
}

// ExportKeys writes the key store in dir (opened with passphrase) to w,
// encrypted to exportPassphrase: what `client keys export` writes.
func ExportKeys(dir, passphrase string, w io.Writer, exportPassphrase string) error {
	st, err := keystore.Open(dir, passphrase)
	if errors.Is(err, keystore.ErrPassphrase) {
		return ErrKeyPassphrase
	}
	if err != nil {
		return err
	}
	return st.Export(w, exportPassphrase)
}

// ImportKeys installs an export read from r (encrypted to
// exportPassphrase) as the key store in dir under passphrase; force
// replaces a store already there. The imported copy gets a device number
// of its own and fresh sequence counters, so its messages and the other
// copy's are told apart by their recipients' replay windows.
func ImportKeys(r io.Reader, exportPassphrase, dir, user, passphrase string, force bool) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return err
	}
	st, err := keystore.Import(r, exportPassphrase, dir, passphrase, force)
	if err != nil {
		return err
	}
	k, err := newKeys(st, user)
	if err != nil {
		return err
	}
	return k.update(func(s *keyState) error {
		d, err := newDevice(s.device)
		s.device, s.seqs = d, map[string]uint64{}
		return err
	})
}

// Identity returns the unlocked identity.
func (k *Keys) Identity() *e2e.Identity { return k.id }

// Dir is the key store's directory.
func (k *Keys) Dir() string { return k.store.Dir() }

// Fingerprint is this identity's half of every safety number with it, for
// user (30 digits): what :fingerprint: prints.
func (k *Keys) Fingerprint(user string) string {
	return safety.Half(k.safetyKey(), user)
}

// safetyKey is the identity's key in the safety-number encoding.
func (k *Keys) safetyKey() []byte {
	pub := k.id.PublicIdentity()
	b, _ := safety.EncodeIdentityKey(pub.SigKey, pub.DHKey.Bytes())
	return b
}

// newDevice draws a device number other than old.
func newDevice(old uint32) (uint32, error) {
	for {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return 0, err
		}
		d := binary.BigEndian.Uint32(b[:]) & maxDevice
		if d != 0 && d != old {
			return d, nil
		}
	}
}

// update runs fn on the state as it is on disk, under the store's lock,
// and writes the result back; the in-memory copy is then that result. An
// error from fn leaves the disk as it was.
func (k *Keys) update(fn func(*keyState) error) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	unlock, err := lockDir(filepath.Join(k.store.Dir(), lockFile))
	if err != nil {
		return fmt.Errorf("lock the end-to-end key store: %w", err)
	}
	defer unlock()
	b, err := k.store.LoadState()
	if err != nil {
		return err
	}
	st, err := decodeKeyState(b)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(k.store.Dir(), keystore.StateFile), err)
	}
	if st.device == 0 {
		if st.device, err = newDevice(0); err != nil {
			return err
		}
	}
	// Replay windows: this process keeps its own, read once when it
	// opened the store, so two processes of the user that both receive a
	// message (two sessions) each show it once. On disk, a window moves
	// on to the furthest either process saw.
	var mine map[string]*heldWindow
	if k.st != nil {
		mine = k.st.windows
		for key, w := range mine {
			if d, ok := st.windows[key]; !ok || w.w.Highest() >= d.w.Highest() {
				st.windows[key] = w
			}
		}
	}
	if err := fn(st); err != nil {
		return err
	}
	st.prune(k.now())
	if err := k.store.SaveState(st.encode()); err != nil {
		return err
	}
	if mine != nil {
		st.windows = mine
	}
	k.st = st
	return nil
}

// view runs fn on the in-memory state (no disk access).
func (k *Keys) view(fn func(*keyState)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	fn(k.st)
}

// currentPrekey returns the prekey to announce, making a new one (and
// retiring the old) when none is left with SPKRotateBefore to live. rotated
// says a new one was made: it must be published.
func (k *Keys) currentPrekey() (spk *e2e.SignedPrekey, rotated bool, err error) {
	now := k.now()
	k.view(func(st *keyState) {
		if p := st.current(); p != nil && p.Expires.Sub(now) > SPKRotateBefore {
			spk = p
		}
	})
	if spk != nil {
		return spk, false, nil
	}
	err = k.update(func(st *keyState) error {
		if p := st.current(); p != nil && p.Expires.Sub(now) > SPKRotateBefore {
			spk = p // another process rotated meanwhile
			return nil
		}
		var id uint32 = 1
		for _, h := range st.prekeys {
			id = max(id, h.spk.ID+1)
		}
		p, err := k.id.NewSignedPrekey(id, now.Add(SPKLifetime), nil)
		if err != nil {
			return err
		}
		for i := range st.prekeys {
			if st.prekeys[i].retired.IsZero() {
				st.prekeys[i].retired = now
			}
		}
		st.prekeys = append(st.prekeys, heldPrekey{spk: p})
		spk, rotated = p, true
		return nil
	})
	return spk, rotated, err
}

// bundle returns the signed bundle announcing the current prekey for user
// (the name as the server registered it), and whether the prekey is new.
func (k *Keys) bundle(user string) (*e2e.Bundle, bool, error) {
	spk, rotated, err := k.currentPrekey()
	if err != nil {
		return nil, false, err
	}
	b, err := k.id.Bundle(user, spk)
	return b, rotated, err
}

// prekey finds a held prekey by id (e2e.PrekeyFunc).
func (k *Keys) prekey(id uint32) *e2e.SignedPrekey {
	var p *e2e.SignedPrekey
	k.view(func(st *keyState) {
		for _, h := range st.prekeys {
			if h.spk.ID == id {
				p = h.spk
			}
		}
	})
	return p
}

// reserveSeq reserves n consecutive sequence numbers for messages to peer
// and returns the first. Each number is covered by a reservation on disk
// before it returns (see reserveSeqs).
func (k *Keys) reserveSeq(peer string, n int) (uint64, error) {
	first, err := k.reserveSeqs(true, seqRequest{peer, n})
	if err != nil {
		return 0, err
	}
	return first[0], nil
}

// seqRequest asks for n sequence numbers for messages to peer.
type seqRequest struct {
	peer string
	n    int
}

// seqBlock is a run of counter values reserved on disk by this process
// for one peer: next is the next to hand out, end the last reserved.
type seqBlock struct{ next, end uint64 }

// reserveSeqs reserves sequence numbers for several peers (a message and
// its self-copy) and returns the first of each.
//
// Counters are reserved on disk in blocks ending at a multiple of
// e2e.SeqBlock (64): the state records the end of the last block any
// process of the user reserved, written with an fsync once per block. A
// message takes the next numbers of this process's block after checking,
// under the store's lock and without writing, that no other process
// reserved a block since (the state's end is still this block's end);
// otherwise, or when the block is used up, a new block starts after the
// state's end. So no number is used twice, across processes and crashes,
// and numbers to a peer always increase. A crash skips at most the rest of
// a block; releaseSeqs gives the rest back at a clean end. With block
// false (a one-shot command, which sends once), exactly the numbers needed
// are reserved, in one write, as before blocks.
func (k *Keys) reserveSeqs(block bool, reqs ...seqRequest) ([]uint64, error) {
	first := make([]uint64, len(reqs))
	// fits: every request fits this process's blocks, still the latest
	// on disk.
	fits := func(st *keyState) bool {
		need := map[string]uint64{}
		for _, r := range reqs {
			key := wire.FoldName(r.peer)
			need[key] += uint64(r.n)
			b, ok := k.blocks[key]
			if r.n < 1 || !ok || b.end != st.seqs[key] || b.end-b.next+1 < need[key] {
				return false
			}
		}
		return true
	}
	// take hands the numbers out, starting new blocks where needed (in st,
	// which must then be written).
	take := func(st *keyState) error {
		for i, r := range reqs {
			key := wire.FoldName(r.peer)
			onDisk := st.seqs[key]
			b, ok := k.blocks[key]
			if !ok || b.end != onDisk || b.end-b.next+1 < uint64(r.n) {
				end := onDisk + uint64(r.n)
				if block {
					end = (end + e2e.SeqBlock - 1) / e2e.SeqBlock * e2e.SeqBlock
				}
				if r.n < 1 || end > seqCounterMask {
					return errors.New("end-to-end sequence numbers used up for " + r.peer)
				}
				b = seqBlock{next: onDisk + 1, end: end}
				st.seqs[key] = end
			}
			first[i] = uint64(st.device)<<seqDeviceShift | b.next
			b.next += uint64(r.n)
			k.blocks[key] = b
		}
		return nil
	}
	// First without a write: every request fits a block still ours.
	ok, err := k.peek(func(st *keyState) (bool, error) {
		if !fits(st) {
			return false, nil
		}
		return true, take(st)
	})
	if err != nil || ok {
		return first, err
	}
	err = k.update(take)
	return first, err
}

// releaseSeqs gives back the unused rest of this process's blocks whose
// reservation is still the latest on disk, so a clean end skips no
// numbers. Called at the end of a session or one-shot command.
func (k *Keys) releaseSeqs() error {
	k.mu.Lock()
	unused := false
	for _, b := range k.blocks {
		if b.next <= b.end {
			unused = true
		}
	}
	k.mu.Unlock()
	if !unused {
		return nil
	}
	return k.update(func(st *keyState) error {
		for key, b := range k.blocks {
			if st.seqs[key] == b.end && b.next <= b.end {
				st.seqs[key] = b.next - 1
			}
			delete(k.blocks, key)
		}
		return nil
	})
}

// peek runs fn on the state as it is on disk, under the store's lock,
// without writing it (fn must not change what is saved): true from fn
// means it was done. The in-memory state is not replaced.
func (k *Keys) peek(fn func(*keyState) (bool, error)) (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	unlock, err := lockDir(filepath.Join(k.store.Dir(), lockFile))
	if err != nil {
		return false, fmt.Errorf("lock the end-to-end key store: %w", err)
	}
	defer unlock()
	b, err := k.store.LoadState()
	if err != nil {
		return false, err
	}
	st, err := decodeKeyState(b)
	if err != nil {
		return false, fmt.Errorf("%s: %w", filepath.Join(k.store.Dir(), keystore.StateFile), err)
	}
	if st.device == 0 || (k.st != nil && st.device != k.st.device) {
		return false, nil // a new device (import): reserve afresh
	}
	return fn(st)
}

// device is this copy's device number.
func (k *Keys) device() uint32 {
	var d uint32
	k.view(func(st *keyState) { d = st.device })
	return d
}

// checkReplay runs the replay window of the sender from (identity from,
// device in the high bits of m.Seq) on m, in memory; flushWindows saves.
func (k *Keys) checkReplay(from string, fromKey e2e.PublicIdentity, m *e2e.Message) (gap uint64, err error) {
	key := windowKey(from, fromKey, m.Seq)
	k.view(func(st *keyState) {
		h := st.windows[key]
		if h == nil {
			h = &heldWindow{}
			st.windows[key] = h
		}
		gap, err = h.w.Check(m.Seq, m.ID)
		h.used = k.now().Truncate(time.Second)
		st.evictWindows()
	})
	return gap, err
}

// flushWindows writes the replay windows moved on since the last write.
func (k *Keys) flushWindows() error { return k.update(func(*keyState) error { return nil }) }

func windowKey(from string, fromKey e2e.PublicIdentity, seq uint64) string {
	var d [4]byte
	binary.BigEndian.PutUint32(d[:], uint32(seq>>seqDeviceShift))
	return wire.FoldName(from) + "\x00" + string(fromKey.Bytes()) + string(d[:])
}

// trustDo runs fn on the trust store inside a transaction.
func (k *Keys) trustDo(fn func(*trust.Store) error) error {
	return k.update(func(st *keyState) error { return fn(st.trust) })
}

// contact returns the trust store's entry for user.
func (k *Keys) contact(user string) (trust.Contact, bool) {
	var c trust.Contact
	var ok bool
	k.view(func(st *keyState) { c, ok = st.trust.Contact(user) })
	return c, ok
}

// pinnedIdentity returns the identity pinned for user, if any.
func (k *Keys) pinnedIdentity(user string) (e2e.PublicIdentity, bool) {
	c, ok := k.contact(user)
	if !ok {
		return e2e.PublicIdentity{}, false
	}
	p, err := identityFromSafetyKey(c.Key)
	return p, err == nil
}

// safetyKeyOf is a bundle's identity in the safety-number encoding (what
// the trust store pins).
func safetyKeyOf(p e2e.PublicIdentity) []byte {
	b, _ := safety.EncodeIdentityKey(p.SigKey, p.DHKey.Bytes())
	return b
}

func identityFromSafetyKey(b []byte) (e2e.PublicIdentity, error) {
	if len(b) != safety.IdentityKeySize || b[0] != safety.IdentityKeyType {
		return e2e.PublicIdentity{}, errStateFormat
	}
	return e2e.ParsePublicIdentity(b[1:])
}

// current returns the prekey being announced, or nil.
func (st *keyState) current() *e2e.SignedPrekey {
	for i := len(st.prekeys) - 1; i >= 0; i-- {
		if st.prekeys[i].retired.IsZero() {
			return st.prekeys[i].spk
		}
	}
	return nil
}

// prune drops prekey secrets kept SPKKeep past their retirement.
func (st *keyState) prune(now time.Time) {
	kept := st.prekeys[:0]
	for _, h := range st.prekeys {
		if h.retired.IsZero() || now.Sub(h.retired) < SPKKeep {
			kept = append(kept, h)
		}
	}
	st.prekeys = kept
	st.evictWindows()
}

func (st *keyState) evictWindows() {
	for len(st.windows) > maxWindows {
		var oldest string
		var at time.Time
		for key, h := range st.windows {
			if oldest == "" || h.used.Before(at) {
				oldest, at = key, h.used
			}
		}
		delete(st.windows, oldest)
	}
}

// State encoding (big-endian):
//
//	magic "sslm-cs\x01" ‖ device(4)
//	‖ prekeys(2) × { secrets_len(1) secrets ‖ retired(8, Unix s, 0 current) }
//	‖ seqs(4) × { name_len(1) name ‖ last(8) }
//	‖ windows(4) × { key_len(1) key ‖ used(8, Unix s) ‖ len(2) window }
//	‖ trust_len(4) trust.Store.Marshal
//
// An empty input (a new store) is an empty state.
func (st *keyState) encode() []byte {
	b := []byte(stateMagic)
	b = binary.BigEndian.AppendUint32(b, st.device)
	b = binary.BigEndian.AppendUint16(b, uint16(len(st.prekeys)))
	for _, h := range st.prekeys {
		s, _ := h.spk.MarshalBinary()
		b = append(b, byte(len(s)))
		b = append(b, s...)
		var r int64
		if !h.retired.IsZero() {
			r = h.retired.Unix()
		}
		b = binary.BigEndian.AppendUint64(b, uint64(r))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(st.seqs)))
	for _, name := range sortedKeys(st.seqs) {
		b = append(b, byte(len(name)))
		b = append(b, name...)
		b = binary.BigEndian.AppendUint64(b, st.seqs[name])
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(st.windows)))
	for _, key := range sortedKeys(st.windows) {
		h := st.windows[key]
		w, _ := h.w.MarshalBinary()
		b = append(b, byte(len(key)))
		b = append(b, key...)
		b = binary.BigEndian.AppendUint64(b, uint64(h.used.Unix()))
		b = binary.BigEndian.AppendUint16(b, uint16(len(w)))
		b = append(b, w...)
	}
	t := st.trust.Marshal()
	b = binary.BigEndian.AppendUint32(b, uint32(len(t)))
	return append(b, t...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// stateReader reads the encoding; the first short read sets err.
type stateReader struct {
	b   []byte
	err error
}

func (r *stateReader) take(n int) []byte {
	if r.err != nil || n > len(r.b) {
		r.err = errStateFormat
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *stateReader) u8() int {
	b := r.take(1)
	if b == nil {
		return 0
	}
	return int(b[0])
}
func (r *stateReader) u16() int {
	b := r.take(2)
	if b == nil {
		return 0
	}
	return int(binary.BigEndian.Uint16(b))
}
func (r *stateReader) u32() uint32 {
	b := r.take(4)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}
func (r *stateReader) u64() uint64 {
	b := r.take(8)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func decodeKeyState(b []byte) (*keyState, error) {
	st := &keyState{seqs: map[string]uint64{}, windows: map[string]*heldWindow{}, trust: trust.New()}
	if len(b) == 0 {
		return st, nil
	}
	if !bytes.HasPrefix(b, []byte(stateMagic)) {
		return nil, errStateFormat
	}
	r := &stateReader{b: b[len(stateMagic):]}
	st.device = r.u32() & maxDevice
	for n := r.u16(); n > 0 && r.err == nil; n-- {
		s := r.take(r.u8())
		retired := int64(r.u64())
		if r.err != nil {
			break
		}
		p, err := e2e.UnmarshalSignedPrekey(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errStateFormat, err)
		}
		h := heldPrekey{spk: p}
		if retired != 0 {
			h.retired = time.Unix(retired, 0)
		}
		st.prekeys = append(st.prekeys, h)
	}
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		name := string(r.take(r.u8()))
		st.seqs[name] = r.u64()
	}
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		key := string(r.take(r.u8()))
		used := int64(r.u64())
		wb := r.take(r.u16())
		if r.err != nil {
			break
		}
		h := &heldWindow{used: time.Unix(used, 0)}
		if err := h.w.UnmarshalBinary(wb); err != nil {
			return nil, fmt.Errorf("%w: %v", errStateFormat, err)
		}
		st.windows[key] = h
	}
	tb := r.take(int(r.u32()))
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: trailing bytes", errStateFormat)
	}
	t, err := trust.Unmarshal(tb)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errStateFormat, err)
	}
	st.trust = t
	return st, nil
}
