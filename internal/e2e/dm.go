package e2e

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"filippo.io/age"

	"sslmessager/internal/wire"
)

// A direct message travels as one word in the MSG text: WordPrefix, then
// the age file (one sslm1 stanza, context "msg") in base64url without
// padding. base64url is printable ASCII without spaces, so the server's
// escaping leaves the word as it is.
//
// The age plaintext is the record (integers big-endian):
//
//	version(1)=1 ‖ kind(1) ‖ msg_id(16) ‖ sent(8, Unix ms) ‖ seq(8) ‖
//	part(2) ‖ parts(2) ‖ peer_len(1) ‖ peer ‖ body_len(2) ‖ body ‖
//	zero padding to a multiple of 32 bytes
//
// peer is the conversation partner the message was addressed to: the
// recipient's own name for a message sealed to the recipient, the other
// party for a self-copy (see Opened.SelfCopy), empty for the self-copy of
// a group message. The padding must be zero; a record is checked whole.
const (
	// WordPrefix starts every encrypted message word.
	WordPrefix = "e2e1."

	// RecordVersion is the version of the plaintext record.
	RecordVersion = 1

	// MaxPartBody is the most body bytes one envelope carries. With the
	// record, padding, the age header and base64url the word is at most
	// MaxWordBytes characters, under wire.MaxTextRunes even with the
	// "[sent ...] " prefix a server puts before a stored message for an
	// original client (TestWordFitsMSG proves it).
	MaxPartBody = 2560

	// MaxWordBytes is the longest message word Seal makes.
	MaxWordBytes = len(WordPrefix) + (wordOverhead+(maxRecord/RecordPadding)*RecordPadding)*4/3 + 1

	// MaxParts bounds the parts of one split text: a text is at most
	// MaxParts*MaxPartBody bytes (80 KiB).
	MaxParts = 32

	// RecordPadding is the block the record is padded to.
	RecordPadding = 32

	recordFixed = 1 + 1 + 16 + 8 + 8 + 2 + 2 + 1 + 2
	maxRecord   = recordFixed + wire.MaxUserNameBytes + MaxPartBody + RecordPadding
	// maxWordBytes bounds an incoming word before any decoding.
	maxWordBytes = wire.MaxTextRunes
)

// Kind says what a message is.
type Kind byte

// Kinds of messages.
const (
	KindText       Kind = 1 // a direct text message
	KindGroup      Kind = 2 // a group text message, sealed pairwise
	KindFileNotice Kind = 3 // announces an encrypted file (body: client-defined)
	KindVerify     Kind = 4 // key verification traffic (body: client-defined)
)

func (k Kind) String() string {
	switch k {
	case KindText:
		return "text"
	case KindGroup:
		return "group"
	case KindFileNotice:
		return "file"
	case KindVerify:
		return "verify"
	}
	return fmt.Sprintf("kind(%d)", byte(k))
}

func (k Kind) valid() bool { return k >= KindText && k <= KindVerify }

// MsgID identifies one envelope; random, 16 bytes.
type MsgID [16]byte

// Message is the plaintext record of one envelope.
type Message struct {
	Kind  Kind
	ID    MsgID
	Sent  time.Time // millisecond precision
	Seq   uint64    // per (sender, recipient) counter, from 1
	Part  uint16    // 0-based index of this part of a split text
	Parts uint16    // number of parts, 1 for a whole text
	Peer  string    // see the record description above
	Body  []byte    // at most MaxPartBody bytes
}

// Errors of opening a message word. ErrEnvelope wraps every malformed
// word or record; decryption failures are the unwrap errors of stanza.go
// or age's.
var (
	ErrEnvelope  = errors.New("e2e: malformed encrypted message")
	ErrWrongPeer = errors.New("e2e: message addressed to someone else")
)

func envelopeError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrEnvelope, fmt.Sprintf(format, args...))
}

// IsWord reports whether a message text is an encrypted message word (by
// its prefix only; Open checks the rest).
func IsWord(text string) bool { return strings.HasPrefix(text, WordPrefix) }

func (m *Message) marshal() ([]byte, error) {
	if !m.Kind.valid() {
		return nil, fmt.Errorf("e2e: unknown kind %d", m.Kind)
	}
	if len(m.Body) > MaxPartBody {
		return nil, fmt.Errorf("e2e: body of %d bytes, at most %d", len(m.Body), MaxPartBody)
	}
	if len(m.Peer) > wire.MaxUserNameBytes {
		return nil, fmt.Errorf("e2e: peer name %q too long", m.Peer)
	}
	if m.Parts == 0 || m.Part >= m.Parts || m.Parts > MaxParts {
		return nil, fmt.Errorf("e2e: part %d of %d", m.Part, m.Parts)
	}
	b := make([]byte, 0, maxRecord)
	b = append(b, RecordVersion, byte(m.Kind))
	b = append(b, m.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Sent.UnixMilli()))
	b = binary.BigEndian.AppendUint64(b, m.Seq)
	b = binary.BigEndian.AppendUint16(b, m.Part)
	b = binary.BigEndian.AppendUint16(b, m.Parts)
	b = append(b, byte(len(m.Peer)))
	b = append(b, m.Peer...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Body)))
	b = append(b, m.Body...)
	for len(b)%RecordPadding != 0 {
		b = append(b, 0)
	}
	return b, nil
}

func unmarshalMessage(b []byte) (*Message, error) {
	if len(b) < recordFixed || len(b)%RecordPadding != 0 {
		return nil, envelopeError("record of %d bytes", len(b))
	}
	if b[0] != RecordVersion {
		return nil, envelopeError("record version %d", b[0])
	}
	m := &Message{Kind: Kind(b[1])}
	if !m.Kind.valid() {
		return nil, envelopeError("unknown kind %d", b[1])
	}
	copy(m.ID[:], b[2:18])
	ms := binary.BigEndian.Uint64(b[18:26])
	if ms > 1<<52 {
		return nil, envelopeError("time out of range")
	}
	m.Sent = time.UnixMilli(int64(ms)).UTC()
	m.Seq = binary.BigEndian.Uint64(b[26:34])
	m.Part = binary.BigEndian.Uint16(b[34:36])
	m.Parts = binary.BigEndian.Uint16(b[36:38])
	if m.Seq == 0 || m.Parts == 0 || m.Part >= m.Parts || m.Parts > MaxParts {
		return nil, envelopeError("seq %d, part %d of %d", m.Seq, m.Part, m.Parts)
	}
	rest := b[38:]
	n := int(rest[0])
	if n > wire.MaxUserNameBytes || len(rest) < 1+n+2 {
		return nil, envelopeError("peer name")
	}
	m.Peer = string(rest[1 : 1+n])
	if n > 0 && wire.CheckUserName(m.Peer) != nil {
		return nil, envelopeError("peer name")
	}
	rest = rest[1+n:]
	bl := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if bl > MaxPartBody || bl > len(rest) {
		return nil, envelopeError("body length %d", bl)
	}
	m.Body = clone(rest[:bl])
	pad := rest[bl:]
	if len(pad) >= RecordPadding || bytes.Count(pad, []byte{0}) != len(pad) {
		return nil, envelopeError("padding")
	}
	return m, nil
}

// Sealer seals messages and files from the user Name holding Self. Rand
// supplies ephemeral keys and message ids (crypto/rand if nil); age draws
// its file key and nonce from crypto/rand.
type Sealer struct {
	Self *Identity
	Name string
	Rand io.Reader
}

func (s *Sealer) recipient(to *Bundle, context string) *Recipient {
	return &Recipient{Self: s.Self, Name: s.Name, To: to, Context: context, Rand: s.Rand}
}

// Seal encrypts m to the holder of to and returns the message word. The
// caller sets Kind, Seq, Peer, Body and Parts/Part (Parts 0 means 1 of 1);
// a zero ID is filled from Rand, a zero Sent with time.Now(). Check
// to.CheckFresh before sealing: Seal does not look at the clock.
func (s *Sealer) Seal(to *Bundle, m *Message) (string, error) {
	w, _, err := s.seal(to, m)
	return w, err
}

func (s *Sealer) seal(to *Bundle, m *Message) (string, *Recipient, error) {
	if err := s.check(to); err != nil {
		return "", nil, err
	}
	if m.Parts == 0 {
		m.Parts = 1
	}
	if m.ID == (MsgID{}) {
		if err := readRand(s.Rand, m.ID[:]); err != nil {
			return "", nil, err
		}
	}
	if m.Sent.IsZero() {
		m.Sent = time.Now()
	}
	if m.Seq == 0 {
		return "", nil, errors.New("e2e: message without seq")
	}
	rec, err := m.marshal()
	if err != nil {
		return "", nil, err
	}
	r := s.recipient(to, ContextMessage)
	var buf bytes.Buffer
	buf.Grow(wordOverhead + len(rec))
	aw, err := age.Encrypt(&buf, r)
	if err != nil {
		return "", nil, err
	}
	if _, err := aw.Write(rec); err != nil {
		return "", nil, err
	}
	if err := aw.Close(); err != nil {
		return "", nil, err
	}
	return WordPrefix + b64.EncodeToString(buf.Bytes()), r, nil
}

func (s *Sealer) check(to *Bundle) error {
	if s.Self == nil || to == nil || to.DHKey == nil || to.SPK == nil || len(to.SigKey) != 32 {
		return errors.New("e2e: sealing needs the sender's identity and the recipient's bundle")
	}
	return nil
}

// wordOverhead is the age header, nonce and tag around a record.
const wordOverhead = HeaderBytes + 16

// SealText splits text (UTF-8, cut on rune boundaries) into parts of at
// most MaxPartBody bytes and seals each to the holder of to with the given
// kind (KindText or KindGroup) and peer (see Message.Peer). Part i gets
// seq firstSeq+i, so the caller reserves len(result) sequence numbers.
// Every word is at most wire.MaxTextRunes characters. An empty text is one
// empty part; a text over MaxParts parts is refused.
func (s *Sealer) SealText(to *Bundle, kind Kind, peer, text string, firstSeq uint64, sent time.Time) ([]string, error) {
	parts := splitText(text)
	if len(parts) > MaxParts {
		return nil, fmt.Errorf("e2e: text of %d bytes, at most %d", len(text), MaxParts*MaxPartBody)
	}
	if sent.IsZero() {
		sent = time.Now()
	}
	words := make([]string, len(parts))
	for i, p := range parts {
		w, err := s.Seal(to, &Message{Kind: kind, Seq: firstSeq + uint64(i), Sent: sent, Peer: peer,
			Part: uint16(i), Parts: uint16(len(parts)), Body: []byte(p)})
		if err != nil {
			return nil, err
		}
		words[i] = w
	}
	return words, nil
}

// PartsFor returns how many parts (and sequence numbers) SealText uses
// for text.
func PartsFor(text string) int { return len(splitText(text)) }

func splitText(text string) []string {
	if len(text) <= MaxPartBody {
		return []string{text}
	}
	var parts []string
	for len(text) > MaxPartBody {
		n := MaxPartBody
		for n > 0 && !utf8.RuneStart(text[n]) {
			n--
		}
		if n == 0 { // not UTF-8: cut anyway
			n = MaxPartBody
		}
		parts = append(parts, text[:n])
		text = text[n:]
	}
	return append(parts, text)
}

// GroupEnvelope is a group message sealed to one member.
type GroupEnvelope struct {
	To    string
	Words []string
}

// SealGroup seals text to each member separately (pairwise fan-out) with
// kind KindGroup; reserve(user, n) must return the first of n sequence
// numbers reserved for that member. Members are sealed in the order given;
// the first error stops it.
func (s *Sealer) SealGroup(members []*Bundle, text string, sent time.Time, reserve func(user string, n int) uint64) ([]GroupEnvelope, error) {
	n := PartsFor(text)
	out := make([]GroupEnvelope, 0, len(members))
	for _, b := range members {
		words, err := s.SealText(b, KindGroup, b.User, text, reserve(b.User, n), sent)
		if err != nil {
			return out, fmt.Errorf("e2e: sealing to %s: %w", b.User, err)
		}
		out = append(out, GroupEnvelope{To: b.User, Words: words})
	}
	return out, nil
}

// Opener opens messages and files sealed to the user Name, who holds Self
// and the prekeys Prekeys finds.
type Opener struct {
	Self    *Identity
	Name    string
	Prekeys PrekeyFunc
}

// Opened is an opened message.
type Opened struct {
	*Message
	From string // the sender the word was opened as coming from
	// SelfCopy is true when the sender is the opener's own user (From
	// folds to Name): a copy one of the user's sessions sealed for the
	// others. Its Peer is the conversation partner (empty for a group
	// message); for any other message Peer is the opener's own name.
	SelfCopy bool
}

func (o *Opener) unwrapper(from string, fromKey PublicIdentity, context string) *Unwrapper {
	return &Unwrapper{Self: o.Self, Name: o.Name, Prekeys: o.Prekeys, From: from, FromKey: fromKey, Context: context}
}

// Open decrypts a message word said (by the RELAY line) to come from the
// user from, whose pinned identity is fromKey. It fails closed: a word
// that is malformed (ErrEnvelope), sealed by someone else or under another
// name (ErrSenderKey, ErrUnwrap), to an unknown prekey (ErrUnknownPrekey),
// with more than one stanza (ErrStanza), altered, cut or extended fails
// and returns no message. Replays are the caller's to catch with a Window.
func (o *Opener) Open(word, from string, fromKey PublicIdentity) (*Opened, error) {
	if len(word) > maxWordBytes {
		return nil, envelopeError("longer than %d characters", maxWordBytes)
	}
	if !strings.HasPrefix(word, WordPrefix) {
		return nil, envelopeError("no %q prefix", WordPrefix)
	}
	ct, err := decodeWord(word[len(WordPrefix):])
	if err != nil {
		return nil, envelopeError("not base64url")
	}
	r, err := age.Decrypt(bytes.NewReader(ct), o.unwrapper(from, fromKey, ContextMessage))
	if err != nil {
		return nil, err
	}
	rec, err := io.ReadAll(io.LimitReader(r, maxRecord+1))
	if err != nil {
		return nil, err
	}
	if len(rec) > maxRecord {
		return nil, envelopeError("record over %d bytes", maxRecord)
	}
	m, err := unmarshalMessage(rec)
	if err != nil {
		return nil, err
	}
	op := &Opened{Message: m, From: from, SelfCopy: wire.FoldName(from) == wire.FoldName(o.Name)}
	if !op.SelfCopy && wire.FoldName(m.Peer) != wire.FoldName(o.Name) {
		return nil, fmt.Errorf("%w (%q)", ErrWrongPeer, m.Peer)
	}
	return op, nil
}
