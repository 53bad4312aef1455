package e2e

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// seeded returns a reader of deterministic bytes for key generation.
func seeded(tag string) *bytes.Reader {
	var b []byte
	for i := 0; len(b) < 4096; i++ {
		b = append(b, []byte(tag)...)
		b = append(b, byte(i), byte(i>>8))
	}
	return bytes.NewReader(b)
}

var testNow = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func testBundle(t testing.TB, user string) (*Identity, *SignedPrekey, *Bundle) {
	t.Helper()
	id, err := NewIdentity(seeded("id-" + user))
	if err != nil {
		t.Fatal(err)
	}
	spk, err := id.NewSignedPrekey(7, testNow.Add(7*24*time.Hour), seeded("spk-"+user))
	if err != nil {
		t.Fatal(err)
	}
	b, err := id.Bundle(user, spk)
	if err != nil {
		t.Fatal(err)
	}
	return id, spk, b
}

func TestBundleRoundTrip(t *testing.T) {
	id, spk, b := testBundle(t, "alice")
	w := b.Encode()
	if len(w) > MaxBundleWordBytes || strings.ContainsAny(w, " +/=") {
		t.Fatalf("word %q: not one base64url word within %d", w, MaxBundleWordBytes)
	}
	got, err := ParseBundle(w)
	if err != nil {
		t.Fatal(err)
	}
	sig, dh := id.Public()
	if got.User != "alice" || !got.SigKey.Equal(sig) || !got.DHKey.Equal(dh) || got.SPKID != 7 ||
		!got.SPK.Equal(spk.Public()) || !got.SPKExpires.Equal(spk.Expires) || got.Encode() != w {
		t.Fatalf("parsed %+v, want the bundle made", got)
	}
	if err := got.CheckFresh(testNow); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.IdentityKey(), id.IdentityKey()) {
		t.Fatal("identity key differs")
	}
}

// Every single-byte change of a bundle, every cut and every extension is
// refused with ErrBadBundle or ErrBundleSignature.
func TestBundleTamperFails(t *testing.T) {
	_, _, b := testBundle(t, "alice")
	raw := b.Bytes()
	for i := range raw {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			m := bytes.Clone(raw)
			m[i] ^= x
			if _, err := ParseBundle(b64.EncodeToString(m)); !errors.Is(err, ErrBadBundle) && !errors.Is(err, ErrBundleSignature) {
				t.Fatalf("byte %d ^%#x: err %v", i, x, err)
			}
		}
	}
	for n := 0; n < len(raw); n++ {
		if _, err := ParseBundle(b64.EncodeToString(raw[:n])); err == nil {
			t.Fatalf("cut to %d bytes accepted", n)
		}
	}
	if _, err := ParseBundle(b64.EncodeToString(append(bytes.Clone(raw), 0))); err == nil {
		t.Fatal("extra byte accepted")
	}
	for _, w := range []string{"", "!!!", b.Encode() + "=", strings.Repeat("A", 5000), " " + b.Encode()} {
		if _, err := ParseBundle(w); !errors.Is(err, ErrBadBundle) {
			t.Fatalf("%.20q: err %v", w, err)
		}
	}
}

// A bundle signed by one identity but relabelled for another user fails:
// the user name is under the signature.
func TestBundleRelabelFails(t *testing.T) {
	_, _, b := testBundle(t, "alice")
	raw := b.Bytes()
	i := bundleFixed
	copy(raw[i:], "bobby")
	if _, err := ParseBundle(b64.EncodeToString(raw)); !errors.Is(err, ErrBundleSignature) {
		t.Fatalf("relabelled bundle: err %v", err)
	}
}

func TestBundleBadNames(t *testing.T) {
	id, spk, _ := testBundle(t, "alice")
	for _, u := range []string{"", "quit", "a b", strings.Repeat("x", 16), "é"} {
		if _, err := id.Bundle(u, spk); err == nil {
			t.Fatalf("bundle for %q made", u)
		}
	}
}

func TestBundleCheckFresh(t *testing.T) {
	id, _, _ := testBundle(t, "alice")
	for _, c := range []struct {
		exp  time.Time
		want error
	}{
		{testNow.Add(-time.Second), ErrPrekeyExpired},
		{testNow, ErrPrekeyExpired},
		{testNow.Add(time.Second), nil},
		{testNow.Add(MaxSPKLifetime), nil},
		{testNow.Add(MaxSPKLifetime + time.Second), ErrPrekeyTooLong},
	} {
		spk, err := id.NewSignedPrekey(1, c.exp, seeded("x"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := id.Bundle("alice", spk)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.CheckFresh(testNow); !errors.Is(err, c.want) && !(err == nil && c.want == nil) {
			t.Fatalf("expiry %v: err %v, want %v", c.exp, err, c.want)
		}
	}
}

// TestBundleCheckSendable: a sender may seal to a prekey expired up to
// PrekeyGrace ago (reported stale), not to one expired longer ago, nor to
// one announced too far ahead.
func TestBundleCheckSendable(t *testing.T) {
	id, _, _ := testBundle(t, "alice")
	for _, c := range []struct {
		exp   time.Time
		stale bool
		want  error
	}{
		{testNow.Add(time.Hour), false, nil},
		{testNow, true, nil},
		{testNow.Add(-20 * 24 * time.Hour), true, nil},
		{testNow.Add(-PrekeyGrace), true, nil},
		{testNow.Add(-PrekeyGrace - time.Second), false, ErrPrekeyExpired},
		{testNow.Add(MaxSPKLifetime + time.Second), false, ErrPrekeyTooLong},
	} {
		spk, err := id.NewSignedPrekey(1, c.exp, seeded("x"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := id.Bundle("alice", spk)
		if err != nil {
			t.Fatal(err)
		}
		stale, err := b.CheckSendable(testNow)
		if stale != c.stale || !errors.Is(err, c.want) && !(err == nil && c.want == nil) {
			t.Fatalf("expiry %v: stale %v err %v, want %v %v", c.exp, stale, err, c.stale, c.want)
		}
	}
}

func TestSecretsRoundTrip(t *testing.T) {
	id, spk, b := testBundle(t, "alice")
	sb, _ := id.MarshalBinary()
	id2, err := UnmarshalIdentity(sb)
	if err != nil || !bytes.Equal(id2.IdentityKey(), id.IdentityKey()) {
		t.Fatalf("identity round trip: %v", err)
	}
	pb, _ := spk.MarshalBinary()
	spk2, err := UnmarshalSignedPrekey(pb)
	if err != nil || spk2.ID != spk.ID || !spk2.Expires.Equal(spk.Expires) || !spk2.Public().Equal(spk.Public()) {
		t.Fatalf("prekey round trip: %v", err)
	}
	b2, err := id2.Bundle("alice", spk2)
	if err != nil || b2.Encode() != b.Encode() {
		t.Fatalf("bundle from restored secrets differs: %v", err)
	}
	for _, bad := range [][]byte{nil, sb[:64], append(bytes.Clone(sb), 0), append([]byte{2}, sb[1:]...)} {
		if _, err := UnmarshalIdentity(bad); !errors.Is(err, ErrBadSecrets) {
			t.Fatalf("%x: err %v", bad, err)
		}
	}
	if _, err := UnmarshalSignedPrekey(pb[:10]); !errors.Is(err, ErrBadSecrets) {
		t.Fatal("short prekey accepted")
	}
}

func FuzzParseBundle(f *testing.F) {
	_, _, b := testBundle(f, "alice")
	f.Add(b.Encode())
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, w string) {
		got, err := ParseBundle(w)
		if err != nil {
			return
		}
		if got.Encode() != w {
			t.Fatalf("accepted %q re-encodes as %q", w, got.Encode())
		}
		if _, err := ParseBundle(got.Encode()); err != nil {
			t.Fatal(err)
		}
	})
}
