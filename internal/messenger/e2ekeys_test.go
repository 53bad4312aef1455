package messenger

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"sslmessager/internal/e2e"
	"sslmessager/internal/e2e/keystore"
	"sslmessager/internal/e2e/trust"
)

// TestKeysStateAndSchedule: a store keeps prekeys, counters, windows and
// pins across opens (as a second process sees them); a prekey near its end
// is replaced and the old secret kept SPKKeep, then dropped; a second
// handle on the same store never gets a sequence number the first got; a
// wrong passphrase is ErrKeyPassphrase; the state parser refuses every
// truncation.
func TestKeysStateAndSchedule(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cert", "alice")
	if _, err := OpenKeys(dir, "alice", "pw", false); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("open without a store: %v", err)
	}
	k, err := OpenKeys(dir, "alice", "pw", true)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	k.now = func() time.Time { return now }
	b1, rotated, err := k.bundle("alice")
	if err != nil || !rotated || b1.SPKExpires.Sub(now) < SPKLifetime-time.Second {
		t.Fatalf("first bundle: rotated %v, expires %v, %v", rotated, b1.SPKExpires, err)
	}
	if _, rotated, _ := k.bundle("alice"); rotated {
		t.Fatal("a fresh prekey was replaced")
	}
	first, err := k.reserveSeq("Bob", 3)
	if err != nil || first&seqCounterMask != 1 || uint32(first>>seqDeviceShift) != k.device() {
		t.Fatalf("first seq %x, %v", first, err)
	}
	if err := k.trustDo(func(s *trust.Store) error { _, err := s.Observe("bob", safetyKeyOf(b1.Identity())); return err }); err != nil {
		t.Fatal(err)
	}
	m := &e2e.Message{Seq: first, ID: e2e.MsgID{1}}
	if _, err := k.checkReplay("bob", b1.Identity(), m); err != nil {
		t.Fatal(err)
	}
	if err := k.flushWindows(); err != nil {
		t.Fatal(err)
	}

	// Another process: wrong passphrase, then the right one.
	if _, err := OpenKeys(dir, "alice", "nope", true); !errors.Is(err, ErrKeyPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	k2, err := OpenKeys(dir, "alice", "pw", false)
	if err != nil {
		t.Fatal(err)
	}
	// k holds the block 1..64: k2 takes the next block, and k, whose
	// block is no longer the latest, the one after.
	if next, _ := k2.reserveSeq("bob", 1); next != first+e2e.SeqBlock {
		t.Fatalf("second handle got seq %x after %x", next, first)
	}
	if next, _ := k.reserveSeq("bob", 1); next != first+2*e2e.SeqBlock {
		t.Fatalf("first handle got seq %x, want %x", next, first+2*e2e.SeqBlock)
	}
	if _, ok := k2.pinnedIdentity("BOB"); !ok {
		t.Fatal("the pin was not kept")
	}
	if _, err := k2.checkReplay("bob", b1.Identity(), m); !errors.Is(err, e2e.ErrReplay) {
		t.Fatalf("replay after reopening: %v", err)
	}

	// Rotation, retention, deletion.
	now = now.Add(SPKLifetime - SPKRotateBefore + time.Minute)
	b2, rotated, err := k.bundle("alice")
	if err != nil || !rotated || b2.SPKID == b1.SPKID {
		t.Fatalf("rotation: %v %v", rotated, err)
	}
	if k.prekey(b1.SPKID) == nil || k.prekey(b2.SPKID) == nil {
		t.Fatal("a prekey secret is missing after rotation")
	}
	now = now.Add(SPKKeep + time.Minute)
	if _, _, err := k.bundle("alice"); err != nil {
		t.Fatal(err)
	}
	if k.prekey(b1.SPKID) != nil {
		t.Fatal("a prekey secret outlived SPKKeep")
	}

	var enc []byte
	k.view(func(st *keyState) { enc = st.encode() })
	if _, err := decodeKeyState(enc); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(enc); i++ {
		if _, err := decodeKeyState(enc[:i]); err == nil {
			t.Fatalf("a state cut to %d of %d bytes parsed", i, len(enc))
		}
	}
}

// TestSeqBlocks: a session's sequence numbers to a peer are reserved on
// disk once per block of e2e.SeqBlock (the state file is replaced once for
// 64 messages); a process that ends without giving its block back (a
// crash) makes the next one start at the next block, never reusing a
// number, and the recipient's window reports no gap for that jump; a
// clean end (releaseSeqs) gives the rest back, so nothing is skipped; a
// one-shot reservation takes exactly what it needs.
func TestSeqBlocks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cert", "alice")
	k, err := OpenKeys(dir, "alice", "pw", true)
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, keystore.StateFile)
	stat := func() os.FileInfo {
		fi, err := os.Stat(state)
		if err != nil {
			t.Fatal(err)
		}
		return fi
	}
	var w e2e.Window
	recv := func(seq uint64) uint64 {
		t.Helper()
		gap, err := w.Check(seq, e2e.MsgID{byte(seq), byte(seq >> 8), 7})
		if err != nil {
			t.Fatalf("seq %x: %v", seq, err)
		}
		return gap
	}
	first, err := k.reserveSeq("bob", 1)
	if err != nil || first&seqCounterMask != 1 {
		t.Fatalf("first %x %v", first, err)
	}
	recv(first)
	before := stat()
	for i := uint64(2); i <= e2e.SeqBlock; i++ {
		s, err := k.reserveSeq("bob", 1)
		if err != nil || s != first+i-1 {
			t.Fatalf("seq %x, want %x: %v", s, first+i-1, err)
		}
		if i < 10 && recv(s) != 0 {
			t.Fatal("gap inside a block")
		}
	}
	if !os.SameFile(before, stat()) {
		t.Fatal("the state was written again inside a block")
	}
	s, _ := k.reserveSeq("bob", 1) // a new block: one write
	if s != first+e2e.SeqBlock || os.SameFile(before, stat()) {
		t.Fatalf("block 2 starts at %x (want %x), or was not written", s, first+e2e.SeqBlock)
	}

	// A crash: k is dropped with 63 numbers of its second block unused.
	k2, err := OpenKeys(dir, "alice", "pw", false)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := k2.reserveSeq("bob", 1)
	if s2 != first+2*e2e.SeqBlock {
		t.Fatalf("after a crash: %x, want %x", s2, first+2*e2e.SeqBlock)
	}
	recv(s)
	if gap := recv(s2); gap != 0 {
		t.Fatalf("the jump to a new block after a restart is a gap of %d", gap)
	}
	// A clean end gives the rest back: the next process goes on.
	k2.reserveSeq("bob", 2)
	if err := k2.releaseSeqs(); err != nil {
		t.Fatal(err)
	}
	k3, err := OpenKeys(dir, "alice", "pw", false)
	if err != nil {
		t.Fatal(err)
	}
	firsts, err := k3.reserveSeqs(false, seqRequest{"bob", 1})
	if err != nil || firsts[0] != s2+3 {
		t.Fatalf("after a clean end: %x, want %x (%v)", firsts[0], s2+3, err)
	}
	var onDisk uint64
	k3.view(func(st *keyState) { onDisk = st.seqs["bob"] })
	if onDisk != (s2+3)&seqCounterMask {
		t.Fatalf("a one-shot reserved up to %d, want exactly %d", onDisk, (s2+3)&seqCounterMask)
	}
}

func TestTrustInfoLabel(t *testing.T) {
	for _, c := range []struct {
		info trustInfo
		want string
	}{
		{trustInfo{}, ""},
		{trustInfo{Fetched: true}, "plain"},
		{trustInfo{Fetched: true, Keyed: true, State: trust.StateUnverified}, "e2e, unverified"},
		{trustInfo{Fetched: true, Keyed: true, State: trust.StateVerified}, "e2e, verified"},
		{trustInfo{Fetched: true, Keyed: true, State: trust.StateChanged, Blocked: true}, "e2e, KEY CHANGED – blocked"},
		{trustInfo{Fetched: true, State: trust.StateUnverified, Withheld: true}, "key withdrawn"},
	} {
		if got := c.info.Label(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.info, got, c.want)
		}
	}
}
