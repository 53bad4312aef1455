package messenger

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"sslmessager/internal/e2e"
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
	if next, _ := k2.reserveSeq("bob", 1); next != first+3 {
		t.Fatalf("second handle got seq %x after %x+3", next, first)
	}
	if next, _ := k.reserveSeq("bob", 1); next != first+4 {
		t.Fatalf("first handle got seq %x, want %x", next, first+4)
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
