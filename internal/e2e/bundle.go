// Package e2e is the end-to-end encryption core of SSL-Messager: the user's
// identity keys and signed prekeys, the signed key bundle a server's key
// directory holds, the sslm1 age recipient and identity (X3DH without
// one-time prekeys), sealing and opening of direct and group messages and of
// files, and the replay window. PROTOCOL.md ("End-to-end encryption") is the
// specification; this package is its implementation. The key store, the
// trust store and safety numbers live in the subpackages keystore, trust and
// safety.
//
// Cryptography comes from the standard library, golang.org/x/crypto and
// filippo.io/age only.
package e2e

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"sslmessager/internal/wire"
)

// Bundle format, version 1 (all integers big-endian):
//
//	version(1)=1 ‖ sig_key(32) ‖ dh_key(32) ‖ spk_id(4) ‖ spk(32) ‖
//	spk_expires(8, Unix seconds) ‖ user_len(1) ‖ user ‖ signature(64)
//
// The Ed25519 signature by sig_key covers BundleSigContext followed by every
// byte before the signature, so the user name and the prekey expiry are
// signed too: a server cannot relabel a bundle as another user's.
const (
	// BundleVersion is the only bundle version this package reads and writes.
	BundleVersion = 1

	// BundleSigContext is the domain-separation prefix of the signed
	// message, so an identity's signature over a bundle can never be
	// taken for a signature over anything else it signs.
	BundleSigContext = "sslm bundle v1\x00"

	// MaxSPKLifetime is the longest a signed prekey may be announced for:
	// a bundle whose prekey expires later than now+MaxSPKLifetime is not
	// fresh.
	MaxSPKLifetime = 90 * 24 * time.Hour
	// PrekeyGrace is how long after its expiry a sender still seals to a
	// signed prekey (CheckSendable): the owner keeps the secret of its
	// current prekey until it is replaced, at its next log-in, plus 37
	// days, so a message to a user who is away still opens. The cost is
	// weaker forward secrecy for such messages (PROTOCOL.md).
	PrekeyGrace = 60 * 24 * time.Hour

	bundleFixed = 1 + 32 + 32 + 4 + 32 + 8 + 1
	// MinBundleBytes and MaxBundleBytes bound the decoded bundle.
	MinBundleBytes = bundleFixed + wire.MinUserNameBytes + ed25519.SignatureSize
	MaxBundleBytes = bundleFixed + wire.MaxUserNameBytes + ed25519.SignatureSize
	// MaxBundleWordBytes bounds the encoded bundle word (base64url, no
	// padding): 252 characters (a 15-byte name; 234 for a 1-byte one).
	MaxBundleWordBytes = (MaxBundleBytes*8 + 5) / 6
)

var b64 = base64.RawURLEncoding

// decodeWord decodes a base64url word (no padding) and accepts only its
// one canonical spelling: encoding/base64 skips CR and LF even in Strict
// mode, so without this check a word with line breaks inside would parse
// as the same value (found by FuzzParseBundle).
func decodeWord(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("line break inside a base64url word")
	}
	return b64.Strict().DecodeString(s)
}

// Errors of ParseBundle and CheckFresh. ParseBundle wraps ErrBadBundle for
// every malformed bundle and ErrBundleSignature for a bad signature.
var (
	ErrBadBundle       = errors.New("e2e: malformed key bundle")
	ErrBundleSignature = errors.New("e2e: key bundle signature does not verify")
	ErrPrekeyExpired   = errors.New("e2e: signed prekey has expired")
	ErrPrekeyTooLong   = errors.New("e2e: signed prekey expires more than 90 days ahead")
)

// Bundle is a user's public keys as published in the key directory: the
// identity (SigKey for signatures, DHKey for key agreement) and the current
// signed prekey SPK with its id and expiry. A Bundle from ParseBundle has a
// valid signature; one from Identity.Bundle is signed on creation. Use
// only bundles from these two: Encode and Bytes of a Bundle built by hand
// are empty.
type Bundle struct {
	User       string            // the owner's user name, as signed
	SigKey     ed25519.PublicKey // identity signing key, 32 bytes
	DHKey      *ecdh.PublicKey   // identity X25519 key
	SPKID      uint32            // id of the signed prekey, chosen by the owner
	SPK        *ecdh.PublicKey   // signed prekey, X25519
	SPKExpires time.Time         // end of the prekey's announced life, whole seconds
	Signature  []byte            // Ed25519 signature, 64 bytes

	raw []byte // the encoded bundle, signature included
}

func bundleError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadBundle, fmt.Sprintf(format, args...))
}

// ParseBundle decodes one bundle word (base64url without padding, as
// Encode makes it) and checks it: version, exact length, the user-name
// rule of package wire, valid X25519 keys and the Ed25519 signature. It
// does not check freshness (see CheckFresh). Errors wrap ErrBadBundle or
// ErrBundleSignature; it never panics, whatever the input.
func ParseBundle(word string) (*Bundle, error) {
	if len(word) > MaxBundleWordBytes {
		return nil, bundleError("longer than %d characters", MaxBundleWordBytes)
	}
	raw, err := decodeWord(word)
	if err != nil {
		return nil, bundleError("not base64url without padding")
	}
	if len(raw) < MinBundleBytes {
		return nil, bundleError("%d bytes, at least %d needed", len(raw), MinBundleBytes)
	}
	if raw[0] != BundleVersion {
		return nil, bundleError("version %d, only %d is known", raw[0], BundleVersion)
	}
	nameLen := int(raw[bundleFixed-1])
	if want := bundleFixed + nameLen + ed25519.SignatureSize; len(raw) != want {
		return nil, bundleError("%d bytes, %d expected for a %d-byte name", len(raw), want, nameLen)
	}
	b := &Bundle{raw: raw}
	p := raw[1:]
	b.SigKey = ed25519.PublicKey(clone(p[:32]))
	if b.DHKey, err = ecdh.X25519().NewPublicKey(p[32:64]); err != nil {
		return nil, bundleError("identity DH key: %v", err)
	}
	b.SPKID = binary.BigEndian.Uint32(p[64:68])
	if b.SPK, err = ecdh.X25519().NewPublicKey(p[68:100]); err != nil {
		return nil, bundleError("signed prekey: %v", err)
	}
	exp := binary.BigEndian.Uint64(p[100:108])
	if exp > 1<<40 { // beyond year 36812: certainly not a real expiry
		return nil, bundleError("prekey expiry out of range")
	}
	b.SPKExpires = time.Unix(int64(exp), 0).UTC()
	b.User = string(raw[bundleFixed : bundleFixed+nameLen])
	if err := wire.CheckUserName(b.User); err != nil {
		return nil, bundleError("user name: %v", err)
	}
	body := raw[:bundleFixed+nameLen]
	b.Signature = clone(raw[len(body):])
	if !ed25519.Verify(b.SigKey, signedMessage(body), b.Signature) {
		return nil, ErrBundleSignature
	}
	return b, nil
}

// Encode returns the bundle as one printable word: base64url without
// padding of the signed encoding, at most MaxBundleWordBytes characters.
func (b *Bundle) Encode() string { return b64.EncodeToString(b.raw) }

// Bytes returns a copy of the bundle's signed binary encoding.
func (b *Bundle) Bytes() []byte { return clone(b.raw) }

// CheckFresh reports whether the bundle's signed prekey may be used at now:
// ErrPrekeyExpired if it expires at or before now, ErrPrekeyTooLong if it
// expires more than MaxSPKLifetime after now.
func (b *Bundle) CheckFresh(now time.Time) error {
	if !b.SPKExpires.After(now) {
		return fmt.Errorf("%w (%s)", ErrPrekeyExpired, b.SPKExpires.Format(time.RFC3339))
	}
	if b.SPKExpires.Sub(now) > MaxSPKLifetime {
		return fmt.Errorf("%w (%s)", ErrPrekeyTooLong, b.SPKExpires.Format(time.RFC3339))
	}
	return nil
}

// CheckSendable reports whether a sender may seal to the bundle's signed
// prekey at now: as CheckFresh, except that a prekey expired at most
// PrekeyGrace ago is accepted (stale reports that it has expired: the
// owner has not logged in since). A prekey expired longer ago is
// ErrPrekeyExpired.
func (b *Bundle) CheckSendable(now time.Time) (stale bool, err error) {
	err = b.CheckFresh(now)
	if errors.Is(err, ErrPrekeyExpired) && now.Sub(b.SPKExpires) <= PrekeyGrace {
		return true, nil
	}
	if errors.Is(err, ErrPrekeyExpired) {
		return false, fmt.Errorf("%w more than %d days ago (%s)", ErrPrekeyExpired, int(PrekeyGrace/(24*time.Hour)), b.SPKExpires.Format(time.RFC3339))
	}
	return false, err
}

// IdentityKey returns the identity part of the bundle, the 64 bytes
// SigKey ‖ DHKey that stay the same across prekey rotations: what a
// contact pins and what safety numbers are computed from.
func (b *Bundle) IdentityKey() []byte { return b.Identity().Bytes() }

func signedMessage(body []byte) []byte {
	return append([]byte(BundleSigContext), body...)
}

// Identity is a user's long-term secret keys: an Ed25519 key that signs
// bundles and an X25519 key for key agreement. It stays on the client.
type Identity struct {
	sig ed25519.PrivateKey
	dh  *ecdh.PrivateKey
}

// SignedPrekey is a medium-term X25519 key pair (rotated about weekly),
// announced in the bundle under ID until Expires. The private half stays
// on the client until every message sealed to it may have arrived.
type SignedPrekey struct {
	ID      uint32
	Expires time.Time // whole seconds, UTC
	key     *ecdh.PrivateKey
}

// Public returns the prekey's public half.
func (p *SignedPrekey) Public() *ecdh.PublicKey { return p.key.PublicKey() }

// NewIdentity makes an identity from 64 bytes of rand (crypto/rand.Reader
// if rand is nil): 32 for the Ed25519 seed, then 32 for the X25519 key.
// The same bytes always give the same identity.
func NewIdentity(rnd io.Reader) (*Identity, error) {
	var seed [64]byte
	if err := readRand(rnd, seed[:]); err != nil {
		return nil, err
	}
	return identityFromSeeds(seed[:32], seed[32:])
}

func identityFromSeeds(sigSeed, dhKey []byte) (*Identity, error) {
	dh, err := ecdh.X25519().NewPrivateKey(dhKey)
	if err != nil {
		return nil, err
	}
	return &Identity{sig: ed25519.NewKeyFromSeed(sigSeed), dh: dh}, nil
}

// Public returns the identity's public keys.
func (id *Identity) Public() (ed25519.PublicKey, *ecdh.PublicKey) {
	return id.sig.Public().(ed25519.PublicKey), id.dh.PublicKey()
}

// IdentityKey returns SigKey ‖ DHKey (64 bytes), as Bundle.IdentityKey.
func (id *Identity) IdentityKey() []byte { return id.PublicIdentity().Bytes() }

// NewSignedPrekey makes a prekey with the given id and expiry (cut to whole
// seconds) from 32 bytes of rand (crypto/rand.Reader if nil).
func (id *Identity) NewSignedPrekey(spkID uint32, expires time.Time, rnd io.Reader) (*SignedPrekey, error) {
	var k [32]byte
	if err := readRand(rnd, k[:]); err != nil {
		return nil, err
	}
	key, err := ecdh.X25519().NewPrivateKey(k[:])
	if err != nil {
		return nil, err
	}
	return &SignedPrekey{ID: spkID, Expires: time.Unix(expires.Unix(), 0).UTC(), key: key}, nil
}

// Bundle signs and returns the bundle announcing the identity and spk for
// user. It fails if user breaks the user-name rule or the expiry is before
// 1970.
func (id *Identity) Bundle(user string, spk *SignedPrekey) (*Bundle, error) {
	if err := wire.CheckUserName(user); err != nil {
		return nil, fmt.Errorf("e2e: bundle for %q: %w", user, err)
	}
	if spk.Expires.Unix() < 0 {
		return nil, errors.New("e2e: prekey expiry before 1970")
	}
	sigPub, dhPub := id.Public()
	body := make([]byte, 0, MaxBundleBytes)
	body = append(body, BundleVersion)
	body = append(body, sigPub...)
	body = append(body, dhPub.Bytes()...)
	body = binary.BigEndian.AppendUint32(body, spk.ID)
	body = append(body, spk.Public().Bytes()...)
	body = binary.BigEndian.AppendUint64(body, uint64(spk.Expires.Unix()))
	body = append(body, byte(len(user)))
	body = append(body, user...)
	sig := ed25519.Sign(id.sig, signedMessage(body))
	raw := append(body, sig...)
	return &Bundle{
		User: user, SigKey: sigPub, DHKey: dhPub, SPKID: spk.ID, SPK: spk.Public(),
		SPKExpires: spk.Expires, Signature: clone(sig), raw: raw,
	}, nil
}

// Secrets encoding, version 1: version(1)=1 ‖ ed25519 seed(32) ‖ x25519
// private key(32). Prekeys: version(1)=1 ‖ id(4) ‖ expires(8, Unix
// seconds) ‖ x25519 private key(32).
const (
	identitySecretsBytes = 1 + 32 + 32
	prekeySecretsBytes   = 1 + 4 + 8 + 32
)

// ErrBadSecrets is returned when identity or prekey secrets do not decode.
var ErrBadSecrets = errors.New("e2e: malformed key secrets")

// MarshalBinary returns the identity's secrets (65 bytes). Whoever holds
// them is the user: store them only encrypted (package keystore).
func (id *Identity) MarshalBinary() ([]byte, error) {
	out := []byte{1}
	out = append(out, id.sig.Seed()...)
	return append(out, id.dh.Bytes()...), nil
}

// UnmarshalIdentity decodes secrets from Identity.MarshalBinary.
func UnmarshalIdentity(b []byte) (*Identity, error) {
	if len(b) != identitySecretsBytes || b[0] != 1 {
		return nil, ErrBadSecrets
	}
	return identityFromSeeds(b[1:33], b[33:])
}

// MarshalBinary returns the prekey's id, expiry and private key (45 bytes).
func (p *SignedPrekey) MarshalBinary() ([]byte, error) {
	out := []byte{1}
	out = binary.BigEndian.AppendUint32(out, p.ID)
	out = binary.BigEndian.AppendUint64(out, uint64(p.Expires.Unix()))
	return append(out, p.key.Bytes()...), nil
}

// UnmarshalSignedPrekey decodes secrets from SignedPrekey.MarshalBinary.
func UnmarshalSignedPrekey(b []byte) (*SignedPrekey, error) {
	if len(b) != prekeySecretsBytes || b[0] != 1 {
		return nil, ErrBadSecrets
	}
	exp := binary.BigEndian.Uint64(b[5:13])
	if exp > 1<<40 {
		return nil, ErrBadSecrets
	}
	key, err := ecdh.X25519().NewPrivateKey(b[13:])
	if err != nil {
		return nil, ErrBadSecrets
	}
	return &SignedPrekey{ID: binary.BigEndian.Uint32(b[1:5]), Expires: time.Unix(int64(exp), 0).UTC(), key: key}, nil
}

func readRand(r io.Reader, p []byte) error {
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, p); err != nil {
		return fmt.Errorf("e2e: reading randomness: %w", err)
	}
	return nil
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
