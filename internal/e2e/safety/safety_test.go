package safety

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// libsignal's test vector (rust/protocol/src/fingerprint.rs,
// fingerprint_test_v1): two Curve25519 identity keys in libsignal's own
// encoding (type 0x05 ‖ 32 bytes) and phone numbers as stable identifiers.
const (
	aliceKeyHex = "0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868"
	bobKeyHex   = "05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b"
	aliceID     = "+14152222222"
	bobID       = "+14153333333"
	vector      = "300354477692869396892869876765458257569162576843440918079131"
	// The scannable fingerprints of the same test carry the first 32
	// bytes of each side's iterated hash: an intermediate value.
	aliceHash32 = "1e301a0353dce3dbe7684cb8336e85136cdc0ee96219494ada305d62a7bd61df"
	bobHash32   = "d62cbf73a11592015b6b9f1682ac306fea3aaf3885b84d12bca631e9d4fb3a4d"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLibsignalVector reproduces libsignal's published displayable
// fingerprint from both sides, and the intermediate hashes its scannable
// fingerprints reveal.
func TestLibsignalVector(t *testing.T) {
	a, b := mustHex(t, aliceKeyHex), mustHex(t, bobKeyHex)
	if got := hex.EncodeToString(fingerprint(a, []byte(aliceID), Iterations)[:32]); got != aliceHash32 {
		t.Errorf("alice hash %s, want %s", got, aliceHash32)
	}
	if got := hex.EncodeToString(fingerprint(b, []byte(bobID), Iterations)[:32]); got != bobHash32 {
		t.Errorf("bob hash %s, want %s", got, bobHash32)
	}
	if got := Number(a, aliceID, b, bobID); got != vector {
		t.Errorf("alice's view %s, want %s", got, vector)
	}
	if got := Number(b, bobID, a, aliceID); got != vector {
		t.Errorf("bob's view %s, want %s", got, vector)
	}
	// The vector's halves are alice's and bob's, in sorted order.
	ha, hb := Half(a, aliceID), Half(b, bobID)
	if !(ha+hb == vector || hb+ha == vector) || len(ha) != HalfDigits {
		t.Errorf("halves %s %s do not make up the vector", ha, hb)
	}
}

func testKey(t testing.TB, fill byte) []byte {
	sig, dh := bytes.Repeat([]byte{fill}, 32), bytes.Repeat([]byte{fill ^ 0xff}, 32)
	k, err := EncodeIdentityKey(sig, dh)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestEncodeIdentityKey(t *testing.T) {
	sig, dh := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	k, err := EncodeIdentityKey(sig, dh)
	if err != nil || len(k) != IdentityKeySize || k[0] != IdentityKeyType ||
		!bytes.Equal(k[1:33], sig) || !bytes.Equal(k[33:], dh) {
		t.Fatalf("EncodeIdentityKey = %x, %v", k, err)
	}
	for _, c := range [][2]int{{31, 32}, {32, 31}, {0, 0}, {33, 32}} {
		if _, err := EncodeIdentityKey(make([]byte, c[0]), make([]byte, c[1])); err == nil {
			t.Errorf("lengths %v accepted", c)
		}
	}
}

// TestEveryKeyPartChangesTheNumber: a server that swaps the signing key or
// the DH key (even one bit) or relabels the key to another name changes
// the number the users compare.
func TestEveryKeyPartChangesTheNumber(t *testing.T) {
	a, b := testKey(t, 0x11), testKey(t, 0x22)
	base := Number(a, "alice", b, "bob")
	for _, i := range []int{0, 1, 32, 33, 64} {
		m := bytes.Clone(b)
		m[i] ^= 1
		if Number(a, "alice", m, "bob") == base {
			t.Errorf("flip at byte %d of bob's key left the number unchanged", i)
		}
	}
	if Number(a, "alice", b, "carol") == base {
		t.Error("another name gave the same number")
	}
	if Number(b, "bob", a, "alice") != base {
		t.Error("the two sides disagree")
	}
}

func TestHalfFoldsName(t *testing.T) {
	k := testKey(t, 0x33)
	if Half(k, "Alice") != Half(k, "alice") || Half(k, "ALICE") != Half(k, "alice") {
		t.Fatal("case of the name changes the half")
	}
	if h := Half(k, "alice"); len(h) != HalfDigits || !allDigits(h) {
		t.Fatalf("half %q", h)
	}
}

func TestFormat(t *testing.T) {
	got := Format(vector)
	want := "30035 44776 92869 39689 28698 76765 45825 75691 62576 84344 09180 79131"
	if got != want {
		t.Fatalf("Format = %q", got)
	}
	if Format("12345") != "12345" || Format("1234x") != "1234x" || Format("1234") != "1234" {
		t.Fatal("Format changed an input it should leave")
	}
}

func TestCheckHalf(t *testing.T) {
	k := testKey(t, 0x44)
	h := Half(k, "bob")
	for _, in := range []string{h, Format(h), " " + Format(h) + "\n", strings.ReplaceAll(Format(h), " ", "\t")} {
		ok, err := CheckHalf(in, k, "Bob")
		if !ok || err != nil {
			t.Errorf("CheckHalf(%q) = %v, %v", in, ok, err)
		}
	}
	// One wrong digit anywhere is a mismatch, not an error.
	for i := 0; i < HalfDigits; i++ {
		b := []byte(h)
		b[i] = '0' + (b[i]-'0'+1)%10
		if ok, err := CheckHalf(string(b), k, "bob"); ok || err != nil {
			t.Errorf("digit %d changed: %v, %v", i, ok, err)
		}
	}
	if ok, _ := CheckHalf(h, testKey(t, 0x45), "bob"); ok {
		t.Error("another key matched")
	}
	for _, in := range []string{"", h[:29], h + "1", h[:29] + "x", h[:15] + "-" + h[15:], Number(k, "bob", k, "bob")} {
		if ok, err := CheckHalf(in, k, "bob"); ok || !errors.Is(err, ErrDigits) {
			t.Errorf("CheckHalf(%q) = %v, %v; want ErrDigits", in, ok, err)
		}
	}
}

func TestCheckNumber(t *testing.T) {
	a, b := mustHex(t, aliceKeyHex), mustHex(t, bobKeyHex)
	if ok, err := CheckNumber(Format(vector), a, aliceID, b, bobID); !ok || err != nil {
		t.Fatalf("vector: %v, %v", ok, err)
	}
	if ok, err := CheckNumber(vector, a, aliceID, a, bobID); ok || err != nil {
		t.Fatalf("other key: %v, %v", ok, err)
	}
	if _, err := CheckNumber(vector[:30], a, aliceID, b, bobID); !errors.Is(err, ErrDigits) {
		t.Fatalf("half as number: %v", err)
	}
}

func BenchmarkHalf(b *testing.B) {
	k := testKey(b, 0x55)
	b.ReportAllocs()
	for b.Loop() {
		Half(k, "alice")
	}
}
