package e2e

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"

	"sslmessager/internal/wire"
)

// The sslm1 stanza wraps an age file key from one user to another with
// X3DH without one-time prekeys. A (sender) to B (recipient):
//
//	DH1 = X25519(IK_dh_A, SPK_B)
//	DH2 = X25519(EK, IK_dh_B)
//	DH3 = X25519(EK, SPK_B)
//	k   = HKDF-SHA256(ikm  = DH1 ‖ DH2 ‖ DH3,
//	                  salt = EK ‖ SPK_B,
//	                  info = lp("sslm1") ‖ lp(context) ‖ lp(fold(A)) ‖ lp(fold(B)) ‖
//	                         lp(IK_A) ‖ lp(IK_B) ‖ spk_id(4), 32 bytes)
//	body = ChaCha20-Poly1305(k, nonce = 12 zero bytes, file key, no AD)
//
// where EK is a fresh ephemeral X25519 key per stanza, IK_X is the 64-byte
// identity key SigKey ‖ DHKey, lp(x) is a 2-byte big-endian length then x,
// and fold is wire.FoldName. The stanza is
//
//	-> sslm1 <EK, base64 std unpadded> <spk_id, 8 lower-case hex> <hint>
//	<body, 32 bytes, base64 std unpadded>
//
// with hint the first 8 bytes of SHA-256(IK_A), base64 std unpadded: it
// lets the recipient tell "sealed by another key than the one I hold for
// this sender" (a key change) from plain corruption. k is used once.
const (
	// StanzaType is the age stanza type of this package.
	StanzaType = "sslm1"

	// ContextMessage and ContextFile are the contexts bound into the key
	// derivation, so a message envelope never opens as a file or back.
	ContextMessage = "msg"
	ContextFile    = "file"

	hintBytes  = 8
	fileKeyLen = 16
)

var stdB64 = base64.RawStdEncoding.Strict()

// Errors of unwrapping. ErrStanza wraps every malformed or unexpected
// header; ErrSenderKey means the envelope names a different sender
// identity than the one given to open it; ErrUnknownPrekey that the
// prekey it was sealed to is not (or no longer) held; ErrUnwrap that the
// key derivation did not authenticate (wrong sender name, wrong keys,
// swapped prekey id or tampering).
var (
	ErrStanza        = errors.New("e2e: header is not exactly one valid sslm1 stanza")
	ErrSenderKey     = errors.New("e2e: sealed by another identity key than the sender's known one")
	ErrUnknownPrekey = errors.New("e2e: cannot decrypt: prekey expired or unknown")
	ErrUnwrap        = errors.New("e2e: cannot decrypt: not sealed by this sender to this recipient")
)

// PublicIdentity is the public half of an identity: what a contact pins.
type PublicIdentity struct {
	SigKey ed25519.PublicKey
	DHKey  *ecdh.PublicKey
}

// Bytes returns SigKey ‖ DHKey, 64 bytes.
func (p PublicIdentity) Bytes() []byte { return append(clone(p.SigKey), p.DHKey.Bytes()...) }

// Equal reports whether p and q are the same identity.
func (p PublicIdentity) Equal(q PublicIdentity) bool {
	return p.SigKey.Equal(q.SigKey) && p.DHKey != nil && q.DHKey != nil && p.DHKey.Equal(q.DHKey)
}

// ParsePublicIdentity decodes the 64 bytes of PublicIdentity.Bytes.
func ParsePublicIdentity(b []byte) (PublicIdentity, error) {
	if len(b) != 64 {
		return PublicIdentity{}, errors.New("e2e: identity key is not 64 bytes")
	}
	dh, err := ecdh.X25519().NewPublicKey(b[32:])
	if err != nil {
		return PublicIdentity{}, err
	}
	return PublicIdentity{SigKey: ed25519.PublicKey(clone(b[:32])), DHKey: dh}, nil
}

// Identity returns the bundle's identity part.
func (b *Bundle) Identity() PublicIdentity { return PublicIdentity{SigKey: b.SigKey, DHKey: b.DHKey} }

// PublicIdentity returns the identity's public half.
func (id *Identity) PublicIdentity() PublicIdentity {
	s, d := id.Public()
	return PublicIdentity{SigKey: s, DHKey: d}
}

// Hint returns the 8-byte identity hint carried in sslm1 stanzas.
func (p PublicIdentity) Hint() []byte {
	h := sha256.Sum256(p.Bytes())
	return h[:hintBytes]
}

// kdfTrace is every intermediate value of one key derivation; the
// known-answer vectors record it.
type kdfTrace struct {
	DH1, DH2, DH3, IKM, Salt, Info, Key []byte
}

func stanzaInfo(context, sender, recipient string, ikA, ikB []byte, spkID uint32) []byte {
	var info []byte
	for _, f := range [][]byte{[]byte(StanzaType), []byte(context),
		[]byte(wire.FoldName(sender)), []byte(wire.FoldName(recipient)), ikA, ikB} {
		info = binary.BigEndian.AppendUint16(info, uint16(len(f)))
		info = append(info, f...)
	}
	return binary.BigEndian.AppendUint32(info, spkID)
}

func deriveKey(dh1, dh2, dh3, ek, spk, info []byte) kdfTrace {
	t := kdfTrace{DH1: dh1, DH2: dh2, DH3: dh3, Info: info}
	t.IKM = append(append(append([]byte(nil), dh1...), dh2...), dh3...)
	t.Salt = append(clone(ek), spk...)
	k, err := hkdf.Key(sha256.New, t.IKM, t.Salt, string(info), chacha20poly1305.KeySize)
	if err != nil { // only for lengths far beyond ours
		panic(err)
	}
	t.Key = k
	return t
}

// Recipient is the sslm1 age recipient: it seals a file key from the user
// Name holding Self to the holder of the bundle To, in Context
// (ContextMessage or ContextFile). Rand supplies the ephemeral key
// (crypto/rand if nil). It must be age's only recipient.
type Recipient struct {
	Self    *Identity
	Name    string
	To      *Bundle
	Context string
	Rand    io.Reader

	trace *kdfTrace // set by wrap when non-nil, for the vectors
	ek    []byte
}

// Wrap implements age.Recipient.
func (r *Recipient) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	if len(fileKey) != fileKeyLen {
		return nil, fmt.Errorf("e2e: file key of %d bytes", len(fileKey))
	}
	var ekBytes [32]byte
	if err := readRand(r.Rand, ekBytes[:]); err != nil {
		return nil, err
	}
	ek, err := ecdh.X25519().NewPrivateKey(ekBytes[:])
	if err != nil {
		return nil, err
	}
	dh1, err := r.Self.dh.ECDH(r.To.SPK)
	if err != nil {
		return nil, fmt.Errorf("e2e: DH with %s's prekey: %w", r.To.User, err)
	}
	dh2, err := ek.ECDH(r.To.DHKey)
	if err != nil {
		return nil, fmt.Errorf("e2e: DH with %s's identity: %w", r.To.User, err)
	}
	dh3, err := ek.ECDH(r.To.SPK)
	if err != nil {
		return nil, fmt.Errorf("e2e: DH with %s's prekey: %w", r.To.User, err)
	}
	epk := ek.PublicKey().Bytes()
	info := stanzaInfo(r.Context, r.Name, r.To.User, r.Self.IdentityKey(), r.To.IdentityKey(), r.To.SPKID)
	t := deriveKey(dh1, dh2, dh3, epk, r.To.SPK.Bytes(), info)
	aead, err := chacha20poly1305.New(t.Key)
	if err != nil {
		return nil, err
	}
	body := aead.Seal(nil, make([]byte, chacha20poly1305.NonceSize), fileKey, nil)
	if r.trace != nil {
		*r.trace = t
		r.ek = ekBytes[:]
	}
	return []*age.Stanza{{
		Type: StanzaType,
		Args: []string{stdB64.EncodeToString(epk), fmt.Sprintf("%08x", r.To.SPKID),
			stdB64.EncodeToString(r.Self.PublicIdentity().Hint())},
		Body: body,
	}}, nil
}

// WrapWithLabels implements age.RecipientWithLabels with a label no other
// recipient carries, so age refuses to mix an sslm1 stanza with any other.
func (r *Recipient) WrapWithLabels(fileKey []byte) ([]*age.Stanza, []string, error) {
	s, err := r.Wrap(fileKey)
	return s, []string{"sslm1-alone"}, err
}

// stanzaArgs is a parsed sslm1 stanza.
type stanzaArgs struct {
	EK    *ecdh.PublicKey
	SPKID uint32
	Hint  []byte
	Body  []byte
}

// parseStanzas checks a header's stanzas: exactly one, of type sslm1, with
// three well-formed arguments and a 32-byte body. Errors wrap ErrStanza.
func parseStanzas(stanzas []*age.Stanza) (*stanzaArgs, error) {
	if len(stanzas) != 1 {
		return nil, fmt.Errorf("%w: %d stanzas", ErrStanza, len(stanzas))
	}
	s := stanzas[0]
	if s.Type != StanzaType {
		return nil, fmt.Errorf("%w: type %.32q", ErrStanza, s.Type)
	}
	if len(s.Args) != 3 {
		return nil, fmt.Errorf("%w: %d arguments", ErrStanza, len(s.Args))
	}
	ek, err := stdB64.DecodeString(s.Args[0])
	if err != nil || len(ek) != 32 {
		return nil, fmt.Errorf("%w: ephemeral key", ErrStanza)
	}
	a := &stanzaArgs{}
	if a.EK, err = ecdh.X25519().NewPublicKey(ek); err != nil {
		return nil, fmt.Errorf("%w: ephemeral key", ErrStanza)
	}
	id, err := hex.DecodeString(s.Args[1])
	if err != nil || len(id) != 4 || s.Args[1] != hex.EncodeToString(id) {
		return nil, fmt.Errorf("%w: prekey id", ErrStanza)
	}
	a.SPKID = binary.BigEndian.Uint32(id)
	if a.Hint, err = stdB64.DecodeString(s.Args[2]); err != nil || len(a.Hint) != hintBytes {
		return nil, fmt.Errorf("%w: identity hint", ErrStanza)
	}
	if len(s.Body) != fileKeyLen+chacha20poly1305.Overhead {
		return nil, fmt.Errorf("%w: body of %d bytes", ErrStanza, len(s.Body))
	}
	a.Body = s.Body
	return a, nil
}

// PrekeyFunc returns the held prekey with the given id, or nil.
type PrekeyFunc func(id uint32) *SignedPrekey

// Prekeys returns a PrekeyFunc over a fixed set.
func Prekeys(spks ...*SignedPrekey) PrekeyFunc {
	return func(id uint32) *SignedPrekey {
		for _, p := range spks {
			if p.ID == id {
				return p
			}
		}
		return nil
	}
}

// Unwrapper is the sslm1 age identity: it opens file keys sealed to the
// user Name (holding Self and the prekeys Prekeys finds) by the user From
// whose identity is FromKey, in Context. Any other sender, context or
// prekey id fails.
type Unwrapper struct {
	Self    *Identity
	Name    string
	Prekeys PrekeyFunc
	From    string
	FromKey PublicIdentity
	Context string
}

// Unwrap implements age.Identity. It rejects any header that is not exactly
// one sslm1 stanza (ErrStanza), a stanza whose hint is not FromKey's
// (ErrSenderKey), an unknown prekey id (ErrUnknownPrekey) and a body that
// does not authenticate (ErrUnwrap). None of these wraps
// age.ErrIncorrectIdentity, so age reports them as they are.
func (u *Unwrapper) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	a, err := parseStanzas(stanzas)
	if err != nil {
		return nil, err
	}
	if u.Self == nil || u.FromKey.DHKey == nil || len(u.FromKey.SigKey) != ed25519.PublicKeySize || u.Prekeys == nil {
		return nil, errors.New("e2e: Unwrapper without own identity, prekeys or sender key")
	}
	if string(a.Hint) != string(u.FromKey.Hint()) {
		return nil, fmt.Errorf("%w (%s)", ErrSenderKey, u.From)
	}
	spk := u.Prekeys(a.SPKID)
	if spk == nil {
		return nil, fmt.Errorf("%w (id %08x)", ErrUnknownPrekey, a.SPKID)
	}
	dh1, err1 := spk.key.ECDH(u.FromKey.DHKey)
	dh2, err2 := u.Self.dh.ECDH(a.EK)
	dh3, err3 := spk.key.ECDH(a.EK)
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnwrap, err)
	}
	info := stanzaInfo(u.Context, u.From, u.Name, u.FromKey.Bytes(), u.Self.IdentityKey(), a.SPKID)
	t := deriveKey(dh1, dh2, dh3, a.EK.Bytes(), spk.Public().Bytes(), info)
	aead, err := chacha20poly1305.New(t.Key)
	if err != nil {
		return nil, err
	}
	fk, err := aead.Open(nil, make([]byte, chacha20poly1305.NonceSize), a.Body, nil)
	if err != nil {
		return nil, ErrUnwrap
	}
	return fk, nil
}
