package e2e

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"sslmessager/internal/wire"
)

// party is one user's keys, sealer and opener.
type party struct {
	name string
	id   *Identity
	spk  *SignedPrekey
	b    *Bundle
	s    *Sealer
	o    *Opener
}

func newParty(t testing.TB, name string) *party {
	id, spk, b := testBundle(t, name)
	return &party{name: name, id: id, spk: spk, b: b,
		s: &Sealer{Self: id, Name: name},
		o: &Opener{Self: id, Name: name, Prekeys: Prekeys(spk)}}
}

func (p *party) key() PublicIdentity { return p.id.PublicIdentity() }

func TestDMRoundTrip(t *testing.T) {
	alice, bob := newParty(t, "alice"), newParty(t, "bob")
	sent := time.UnixMilli(1764500000123).UTC()
	w, err := alice.s.Seal(bob.b, &Message{Kind: KindText, Seq: 5, Sent: sent, Peer: "bob", Body: []byte("hello bob")})
	if err != nil {
		t.Fatal(err)
	}
	if !IsWord(w) || strings.ContainsAny(w, " \t\r\n\\") || wire.Escape(w) != w || wire.EscapeWord(w) != w {
		t.Fatalf("word %q is not one printable word the server leaves alone", w)
	}
	got, err := bob.o.Open(w, "alice", alice.key())
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Body) != "hello bob" || got.Seq != 5 || !got.Sent.Equal(sent) || got.Kind != KindText ||
		got.SelfCopy || got.Peer != "bob" || got.From != "alice" || got.ID == (MsgID{}) {
		t.Fatalf("opened %+v", got.Message)
	}
	// The name on the RELAY line may differ in case only.
	if _, err := bob.o.Open(w, "ALICE", alice.key()); err != nil {
		t.Fatalf("case-folded sender: %v", err)
	}
}

// A copy for the sender's own other sessions is sealed to the sender's own
// bundle and opens as a self-copy naming the conversation partner.
func TestDMSelfCopy(t *testing.T) {
	alice := newParty(t, "alice")
	w, err := alice.s.Seal(alice.b, &Message{Kind: KindText, Seq: 1, Peer: "bob", Body: []byte("to bob")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := alice.o.Open(w, "alice", alice.key())
	if err != nil {
		t.Fatal(err)
	}
	if !got.SelfCopy || got.Peer != "bob" || string(got.Body) != "to bob" {
		t.Fatalf("self-copy opened as %+v", got)
	}
}

func TestDMFailsClosed(t *testing.T) {
	alice, bob, carol := newParty(t, "alice"), newParty(t, "bob"), newParty(t, "carol")
	msg := func() *Message { return &Message{Kind: KindText, Seq: 1, Peer: "bob", Body: []byte("secret")} }
	w, err := alice.s.Seal(bob.b, msg())
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := b64.DecodeString(w[len(WordPrefix):])

	// Every single-byte flip of the age file, in every bit position.
	for i := range ct {
		for bit := 0; bit < 8; bit++ {
			m := bytes.Clone(ct)
			m[i] ^= 1 << bit
			if got, err := bob.o.Open(WordPrefix+b64.EncodeToString(m), "alice", alice.key()); err == nil {
				t.Fatalf("byte %d bit %d flipped: opened %q", i, bit, got.Body)
			}
		}
	}
	// Every character of the word replaced.
	for i := range w {
		c := byte('A')
		if w[i] == 'A' {
			c = 'B'
		}
		m := w[:i] + string(c) + w[i+1:]
		if _, err := bob.o.Open(m, "alice", alice.key()); err == nil {
			t.Fatalf("character %d replaced: opened", i)
		}
	}
	// Every cut, and one byte more.
	for n := 0; n < len(ct); n++ {
		if _, err := bob.o.Open(WordPrefix+b64.EncodeToString(ct[:n]), "alice", alice.key()); err == nil {
			t.Fatalf("cut to %d bytes: opened", n)
		}
	}
	if _, err := bob.o.Open(WordPrefix+b64.EncodeToString(append(bytes.Clone(ct), 0)), "alice", alice.key()); err == nil {
		t.Fatal("extended: opened")
	}

	// Wrong sender name with the right key: the name is in the KDF.
	if _, err := bob.o.Open(w, "mallory", alice.key()); !errors.Is(err, ErrUnwrap) {
		t.Fatalf("wrong sender name: %v", err)
	}
	// Another sender's key for the name: the hint tells.
	if _, err := bob.o.Open(w, "alice", carol.key()); !errors.Is(err, ErrSenderKey) {
		t.Fatalf("wrong sender key: %v", err)
	}
	// Carol cannot open what was sealed to bob, even claiming to be bob.
	carol.name = "bob"
	carol.o.Name = "bob"
	if _, err := carol.o.Open(w, "alice", alice.key()); err == nil {
		t.Fatal("another recipient opened it")
	}
	// Sealed by carol under the name alice (a server relabelling the
	// sender): opened as alice it fails.
	forged := &Sealer{Self: carol.id, Name: "alice"}
	fw, err := forged.Seal(bob.b, msg())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.o.Open(fw, "alice", alice.key()); err == nil {
		t.Fatal("forged sender opened")
	}

	// A prekey bob does not hold, and a swapped prekey id.
	if _, err := (&Opener{Self: bob.id, Name: "bob", Prekeys: Prekeys()}).Open(w, "alice", alice.key()); !errors.Is(err, ErrUnknownPrekey) {
		t.Fatalf("unknown prekey: %v", err)
	}
	other, _ := bob.id.NewSignedPrekey(8, testNow.Add(time.Hour), seeded("other"))
	swapped := *bob.spk
	swapped.ID = 8
	ob := &Opener{Self: bob.id, Name: "bob", Prekeys: Prekeys(other, &swapped)}
	sw := swapStanzaArg(t, w, 1, "00000008")
	if _, err := ob.Open(sw, "alice", alice.key()); !errors.Is(err, ErrUnwrap) {
		t.Fatal("swapped prekey id opened")
	}

	// An extra stanza, whatever its type.
	if _, err := bob.o.Open(addStanza(t, alice, bob, w), "alice", alice.key()); !errors.Is(err, ErrStanza) {
		t.Fatalf("extra stanza: %v", err)
	}
	// A message word opened as a file, and a message meant for someone else.
	if _, _, err := bob.o.DecryptFile(bytes.NewReader(ct), "alice", alice.key()); !errors.Is(err, ErrUnwrap) {
		t.Fatalf("message opened as a file: %v", err)
	}
	bad, err := alice.s.Seal(bob.b, &Message{Kind: KindText, Seq: 1, Peer: "carol", Body: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.o.Open(bad, "alice", alice.key()); !errors.Is(err, ErrWrongPeer) {
		t.Fatalf("peer carol: %v", err)
	}
}

// swapStanzaArg rewrites argument i of the word's stanza, keeping the
// header MAC as it was (the MAC then fails, or the unwrap before it).
func swapStanzaArg(t *testing.T, w string, i int, v string) string {
	t.Helper()
	ct, _ := b64.DecodeString(w[len(WordPrefix):])
	lines := strings.SplitN(string(ct), "\n", 3)
	f := strings.Split(lines[1], " ")
	f[2+i] = v
	lines[1] = strings.Join(f, " ")
	return WordPrefix + b64.EncodeToString([]byte(strings.Join(lines, "\n")))
}

// addStanza seals the same plaintext to bob with a second, valid stanza
// of another recipient in front, by building the header with age itself.
func addStanza(t *testing.T, alice, bob *party, w string) string {
	t.Helper()
	x, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	r := alice.s.recipient(bob.b, ContextMessage)
	aw, err := age.Encrypt(&buf, x.Recipient(), plainRecipient{r})
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := (&Message{Kind: KindText, Seq: 1, Peer: "bob", Body: []byte("x")}).marshal()
	aw.Write(rec)
	aw.Close()
	return WordPrefix + b64.EncodeToString(buf.Bytes())
}

// plainRecipient hides WrapWithLabels so age lets it mix with others.
type plainRecipient struct{ r *Recipient }

func (p plainRecipient) Wrap(fk []byte) ([]*age.Stanza, error) { return p.r.Wrap(fk) }

// age refuses to put an sslm1 stanza beside another recipient's.
func TestRecipientUsedAlone(t *testing.T) {
	alice, bob := newParty(t, "alice"), newParty(t, "bob")
	x, _ := age.GenerateX25519Identity()
	if _, err := age.Encrypt(&bytes.Buffer{}, alice.s.recipient(bob.b, ContextMessage), x.Recipient()); err == nil {
		t.Fatal("age mixed sslm1 with an X25519 recipient")
	}
}

// The longest text part gives a word that fits a MSG text, also behind
// the "[sent ...] " prefix of a stored message.
func TestWordFitsMSG(t *testing.T) {
	alice, bob := newParty(t, "alice"), newParty(t, "bob")
	long := strings.Repeat("é", MaxPartBody/2)
	w, err := alice.s.Seal(bob.b, &Message{Kind: KindText, Seq: 1, Peer: "abcdefghijklmno", Body: []byte(long)})
	if err != nil {
		t.Fatal(err)
	}
	prefix := wire.OriginalSentPrefix(testNow, testNow.AddDate(1, 0, 0))
	if len(w) > MaxWordBytes || len(prefix)+len(w) > wire.MaxTextRunes {
		t.Fatalf("word of %d characters (max %d), %d with prefix, text cap %d", len(w), MaxWordBytes, len(prefix)+len(w), wire.MaxTextRunes)
	}
	ct, _ := b64.DecodeString(w[len(WordPrefix):])
	hdr := bytes.Index(ct, []byte("\n--- ")) + 5 + 43 + 1
	if hdr+16 != HeaderBytes {
		t.Fatalf("header and nonce are %d bytes, HeaderBytes says %d", hdr+16, HeaderBytes)
	}
	t.Logf("longest word: %d characters", len(w))
}

func TestSealTextSplitsAndRejoins(t *testing.T) {
	alice, bob := newParty(t, "alice"), newParty(t, "bob")
	text := strings.Repeat("žluťoučký kůň ", 700) // 2-byte runes across cuts
	words, err := alice.s.SealText(bob.b, KindText, "bob", text, 10, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(words) != PartsFor(text) || len(words) < 3 {
		t.Fatalf("%d words, PartsFor says %d", len(words), PartsFor(text))
	}
	var a Assembler
	var win Window
	// Deliver in reverse order: only the last delivered completes it.
	for i := len(words) - 1; i >= 0; i-- {
		if len(words[i]) > wire.MaxTextRunes {
			t.Fatalf("part %d: %d characters", i, len(words[i]))
		}
		m, err := bob.o.Open(words[i], "alice", alice.key())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := win.Check(m.Seq, m.ID); err != nil {
			t.Fatal(err)
		}
		got, done, err := a.Add("alice", m.Message, testNow)
		if err != nil {
			t.Fatal(err)
		}
		if done != (i == 0) {
			t.Fatalf("part %d: done=%v", i, done)
		}
		if done && string(got) != text {
			t.Fatal("rejoined text differs")
		}
	}
	if a.Pending() != 0 {
		t.Fatal("assembler keeps state after completion")
	}
	if _, err := alice.s.SealText(bob.b, KindText, "bob", strings.Repeat("x", MaxParts*MaxPartBody+1), 1, time.Time{}); err == nil {
		t.Fatal("text over MaxParts parts sealed")
	}
}

func TestAssemblerBounds(t *testing.T) {
	a := Assembler{MaxPending: 2, TTL: time.Minute}
	part := func(seq uint64) *Message {
		return &Message{Kind: KindText, Seq: seq, Part: 0, Parts: 2, Body: []byte("a")}
	}
	for i := uint64(1); i <= 5; i++ {
		if _, done, err := a.Add("bob", part(i*10), testNow); done || err != nil {
			t.Fatal(done, err)
		}
	}
	if a.Pending() != 2 {
		t.Fatalf("%d pending, cap 2", a.Pending())
	}
	a.Add("bob", part(100), testNow.Add(2*time.Minute))
	if a.Pending() != 1 {
		t.Fatalf("%d pending after TTL, want 1", a.Pending())
	}
	if _, _, err := a.Add("bob", &Message{Kind: KindGroup, Seq: 101, Part: 1, Parts: 2}, testNow.Add(2*time.Minute)); err == nil {
		t.Fatal("part of another kind joined")
	}
}

func TestSealGroupPairwise(t *testing.T) {
	alice, bob, carol := newParty(t, "alice"), newParty(t, "bob"), newParty(t, "carol")
	seqs := map[string]uint64{"bob": 4, "carol": 1}
	env, err := alice.s.SealGroup([]*Bundle{bob.b, carol.b}, "hi all", time.Time{}, func(u string, n int) uint64 {
		s := seqs[u]
		seqs[u] += uint64(n)
		return s
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(env) != 2 || env[0].To != "bob" || env[1].To != "carol" || seqs["bob"] != 5 {
		t.Fatalf("envelopes %+v, seqs %v", env, seqs)
	}
	for i, p := range []*party{bob, carol} {
		m, err := p.o.Open(env[i].Words[0], "alice", alice.key())
		if err != nil || m.Kind != KindGroup || string(m.Body) != "hi all" {
			t.Fatalf("%s: %v %+v", p.name, err, m)
		}
		// Each member's envelope is its own: the other cannot open it.
		if _, err := []*party{carol, bob}[i].o.Open(env[i].Words[0], "alice", alice.key()); err == nil {
			t.Fatal("member opened another member's envelope")
		}
	}
}

func TestWindow(t *testing.T) {
	var w Window
	id := func(i byte) MsgID { return MsgID{i, 1} }
	check := func(seq uint64, i byte, wantGap uint64, wantErr error) {
		t.Helper()
		gap, err := w.Check(seq, id(i))
		if !errors.Is(err, wantErr) || (wantErr == nil && err != nil) || gap != wantGap {
			t.Fatalf("seq %d: gap %d err %v, want gap %d err %v", seq, gap, err, wantGap, wantErr)
		}
	}
	check(5, 1, 0, nil) // first message: no gap known
	check(6, 2, 0, nil)
	check(6, 3, 0, ErrReplay) // same seq
	check(9, 2, 0, ErrReplay) // same id
	check(9, 4, 2, nil)       // 7 and 8 missing
	check(7, 5, 0, nil)       // late, inside the window
	check(7, 6, 0, ErrReplay)
	check(200, 7, 190, nil)
	check(136, 8, 0, ErrTooOld)
	check(137, 9, 0, nil)
	check(0, 10, 0, ErrNoSeq)
	b, _ := w.MarshalBinary()
	var w2 Window
	if err := w2.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if _, err := w2.Check(137, id(11)); !errors.Is(err, ErrReplay) {
		t.Fatalf("restored window forgot seq 137: %v", err)
	}
	if err := w2.UnmarshalBinary(b[:10]); err == nil {
		t.Fatal("short window accepted")
	}
}

// TestWindowBlockBoundary: a jump to the start of a sender's next block
// (the rest of a block skipped by a restart) is no gap; a jump elsewhere,
// or of a whole block or more, is.
func TestWindowBlockBoundary(t *testing.T) {
	var w Window
	n := byte(0)
	check := func(seq, wantGap uint64) {
		t.Helper()
		n++
		if gap, err := w.Check(seq, MsgID{n}); err != nil || gap != wantGap {
			t.Fatalf("seq %d: gap %d err %v, want gap %d", seq, gap, err, wantGap)
		}
	}
	check(1, 0)
	check(10, 8)             // 2..9 skipped inside a block: may be missing
	check(SeqBlock+1, 0)     // 11..64 skipped: the start of the next block
	check(2*SeqBlock+3, 65)  // 66..130 skipped: not at a block's start
	check(4*SeqBlock+1, 125) // more than a block skipped, even at a start
	dev := uint64(5) << 40   // a device's numbers start at device<<40 | 1
	var w2 Window
	w2.Check(dev|1, MsgID{1})
	if gap, _ := w2.Check(dev|(SeqBlock+1), MsgID{2}); gap != 0 {
		t.Fatalf("device block start: gap %d", gap)
	}
}

// A replayed envelope opens (it is authentic) but the window refuses it.
func TestDMReplayRefused(t *testing.T) {
	alice, bob := newParty(t, "alice"), newParty(t, "bob")
	w, _ := alice.s.Seal(bob.b, &Message{Kind: KindText, Seq: 1, Peer: "bob", Body: []byte("once")})
	var win Window
	for i, want := range []error{nil, ErrReplay} {
		m, err := bob.o.Open(w, "alice", alice.key())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := win.Check(m.Seq, m.ID); !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Fatalf("delivery %d: %v", i, err)
		}
	}
}

func FuzzOpen(f *testing.F) {
	alice, bob := newParty(f, "alice"), newParty(f, "bob")
	w, _ := alice.s.Seal(bob.b, &Message{Kind: KindText, Seq: 1, Peer: "bob", Body: []byte("seed")})
	f.Add(w)
	f.Add(WordPrefix)
	f.Add(WordPrefix + b64.EncodeToString([]byte("age-encryption.org/v1\n-> sslm1 a b c\n\n--- x\n")))
	f.Fuzz(func(t *testing.T, w string) {
		m, err := bob.o.Open(w, "alice", alice.key())
		if err == nil && m.Seq == 0 {
			t.Fatal("opened a record without seq")
		}
	})
}

func FuzzRecord(f *testing.F) {
	rec, _ := (&Message{Kind: KindText, Seq: 1, Parts: 1, Peer: "bob", Body: []byte("seed")}).marshal()
	f.Add(rec)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := unmarshalMessage(b)
		if err != nil {
			return
		}
		again, err := m.marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("record %x re-encodes as %x (%v)", b, again, err)
		}
	})
}

func FuzzStanza(f *testing.F) {
	alice, bob := newParty(f, "alice"), newParty(f, "bob")
	s, _ := alice.s.recipient(bob.b, ContextMessage).Wrap(make([]byte, 16))
	f.Add(s[0].Type, s[0].Args[0], s[0].Args[1], s[0].Args[2], s[0].Body)
	f.Fuzz(func(t *testing.T, typ, a0, a1, a2 string, body []byte) {
		st := []*age.Stanza{{Type: typ, Args: []string{a0, a1, a2}, Body: body}}
		if _, err := parseStanzas(st); err != nil {
			return
		}
		u := bob.o.unwrapper("alice", alice.key(), ContextMessage)
		if fk, err := u.Unwrap(st); err == nil && len(fk) != 16 {
			t.Fatalf("file key of %d bytes", len(fk))
		}
	})
}

// A word accepts only its canonical spelling: encoding/base64 would skip a
// CR or LF inside it (found by FuzzParseBundle), so a bundle or an envelope
// with one must be refused, not read as the same value.
func TestWordsWithLineBreaksRefused(t *testing.T) {
	alice, bob := newParty(t, "alice"), newParty(t, "bob")
	w, err := alice.s.Seal(bob.b, &Message{Kind: KindText, Seq: 1, Peer: "bob", Body: []byte("hi")})
	if err != nil {
		t.Fatal(err)
	}
	bw := bob.b.Encode()
	for _, br := range []string{"\n", "\r", "\r\n"} {
		at := len(bw) / 2
		if _, err := ParseBundle(bw[:at] + br + bw[at:]); err == nil {
			t.Errorf("bundle with %q inside accepted", br)
		}
		at = len(w) / 2
		if _, err := bob.o.Open(w[:at]+br+w[at:], "alice", alice.key()); err == nil {
			t.Errorf("envelope with %q inside opened", br)
		}
	}
	if _, err := ParseBundle(bw); err != nil {
		t.Fatalf("the canonical bundle: %v", err)
	}
}
