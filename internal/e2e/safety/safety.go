// Package safety computes safety numbers: the numeric fingerprints two
// users compare (by phone, in person) to make sure the identity keys their
// clients pinned are each other's, and not a key the server slipped in.
//
// The algorithm is Signal's displayable fingerprint, format version 0 (as
// libsignal computes it for its scannable versions 1 and 2 alike):
//
//	h_0 = SHA-512(0x00 0x00 ‖ key ‖ id ‖ key)
//	h_i = SHA-512(h_{i-1} ‖ key)          for i = 1 … Iterations-1
//
// then the first 30 bytes of h are read as six big-endian 40-bit numbers,
// each taken mod 100 000 and printed as 5 digits: a 30-digit half. A pair's
// safety number is the two halves, the smaller first: 60 digits, the same
// on both sides.
//
// What we feed it:
//   - key is the identity key in its safety-number encoding (see
//     EncodeIdentityKey): type byte 0x01 ‖ Ed25519 signing public key (32
//     bytes) ‖ X25519 DH public key (32 bytes), 65 bytes. Both halves of the
//     identity are covered, so a server that swaps either one changes the
//     number.
//   - id is the user name on this server, folded with wire.FoldName
//     (Alice and alice are one user, and get one number).
package safety

import (
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"sslmessager/internal/wire"
)

// Iterations is the number of SHA-512 invocations per half, Signal's
// value: it makes a search for a key with a chosen half 5200 times dearer.
const Iterations = 5200

// HalfDigits and NumberDigits are the lengths of a half (one user's
// published part) and of a whole safety number.
const (
	HalfDigits   = 30
	NumberDigits = 2 * HalfDigits
)

// IdentityKeyType is the first byte of an identity key's safety-number
// encoding; IdentityKeySize is the length of that encoding in bytes.
const (
	IdentityKeyType = 0x01
	IdentityKeySize = 1 + 32 + 32
)

// fingerprintVersion is the 2-byte version prefix of the first hash input.
var fingerprintVersion = [2]byte{0, 0}

// ErrDigits is returned for a published half or number that is not made
// of exactly the expected number of ASCII digits (spaces aside).
var ErrDigits = errors.New("safety number: wrong number of digits")

// EncodeIdentityKey returns the safety-number encoding of an identity:
// IdentityKeyType ‖ sig (Ed25519 public key, 32 bytes) ‖ dh (X25519 public
// key, 32 bytes), IdentityKeySize bytes. It fails when a key has the wrong
// length.
func EncodeIdentityKey(sig, dh []byte) ([]byte, error) {
	if len(sig) != 32 || len(dh) != 32 {
		return nil, fmt.Errorf("safety number: identity keys are 32+32 bytes, got %d+%d", len(sig), len(dh))
	}
	k := make([]byte, 0, IdentityKeySize)
	k = append(k, IdentityKeyType)
	k = append(k, sig...)
	return append(k, dh...), nil
}

// Half returns the 30-digit half of a safety number that belongs to the
// user id with identity key key (see the package comment for what both
// are): what ":fingerprint:" prints and what a user may publish. It costs
// Iterations SHA-512 invocations (about 2 ms on one core).
func Half(key []byte, id string) string {
	return encodeHalf(fingerprint(key, []byte(wire.FoldName(id)), Iterations))
}

// fingerprint returns the iterated hash h_{iterations-1}.
func fingerprint(key, id []byte, iterations int) []byte {
	h := sha512.New()
	h.Write(fingerprintVersion[:])
	h.Write(key)
	h.Write(id)
	h.Write(key)
	sum := h.Sum(nil)
	for i := 1; i < iterations; i++ {
		h.Reset()
		h.Write(sum)
		h.Write(key)
		sum = h.Sum(sum[:0])
	}
	return sum
}

// encodeHalf turns the first 30 bytes of a fingerprint hash into 30 digits.
func encodeHalf(sum []byte) string {
	var b strings.Builder
	b.Grow(HalfDigits)
	var buf [8]byte
	for i := 0; i < 6; i++ {
		copy(buf[3:], sum[5*i:5*i+5])
		fmt.Fprintf(&b, "%05d", binary.BigEndian.Uint64(buf[:])%100000)
	}
	return b.String()
}

// Number returns the 60-digit safety number of two users: both halves,
// the smaller first, so both sides compute the same digits. Arguments are
// as for Half.
func Number(localKey []byte, localID string, remoteKey []byte, remoteID string) string {
	return combine(Half(localKey, localID), Half(remoteKey, remoteID))
}

func combine(local, remote string) string {
	if local < remote {
		return local + remote
	}
	return remote + local
}

// Format groups a safety number (or a half) into blocks of 5 digits
// separated by spaces: 12 groups for a number, 6 for a half. Any other
// input is returned as it is.
func Format(digits string) string {
	if len(digits)%5 != 0 || !allDigits(digits) {
		return digits
	}
	var b strings.Builder
	for i := 0; i < len(digits); i += 5 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(digits[i : i+5])
	}
	return b.String()
}

// CheckHalf reports whether published, a 30-digit half as the other user
// published it (spaces, tabs and line breaks anywhere are ignored), is the
// half of key and id. The comparison takes the same time wherever the
// digits differ. ErrDigits when published is not 30 digits.
func CheckHalf(published string, key []byte, id string) (bool, error) {
	return checkDigits(published, HalfDigits, Half(key, id))
}

// CheckNumber is CheckHalf for a whole 60-digit number, as read out by the
// other user: whether it equals Number(localKey, localID, remoteKey,
// remoteID).
func CheckNumber(number string, localKey []byte, localID string, remoteKey []byte, remoteID string) (bool, error) {
	return checkDigits(number, NumberDigits, Number(localKey, localID, remoteKey, remoteID))
}

func checkDigits(in string, n int, want string) (bool, error) {
	got := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, in)
	if len(got) != n || !allDigits(got) {
		return false, ErrDigits
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
