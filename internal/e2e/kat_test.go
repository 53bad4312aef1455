package e2e

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/cryptotest"
	"time"

	"filippo.io/age"
)

// The known-answer vectors under testdata/e2e/v1 at the repository root.
// go test -run KnownAnswer -update rewrites them; check.py beside them
// recomputes the bundle and stanza vectors with Python's cryptography.
var update = flag.Bool("update", false, "rewrite the known-answer vectors in testdata/e2e/v1")

const katDir = "../../testdata/e2e/v1"

var spkID = map[string]uint32{"alice": 0x0a0b0c0d, "bob": 0x01020304}

type katKeys struct {
	Name        string `json:"name"`
	SigSeed     string `json:"sig_seed"`
	SigPublic   string `json:"sig_public"`
	DHPrivate   string `json:"dh_private"`
	DHPublic    string `json:"dh_public"`
	IdentityKey string `json:"identity_key"`
	SPKID       uint32 `json:"spk_id"`
	SPKPrivate  string `json:"spk_private"`
	SPKPublic   string `json:"spk_public"`
	SPKExpires  int64  `json:"spk_expires"`
}

type katBundle struct {
	Comment       string  `json:"comment"`
	Keys          katKeys `json:"keys"`
	SigContext    string  `json:"sig_context"`
	SignedMessage string  `json:"signed_message"`
	Signature     string  `json:"signature"`
	Bundle        string  `json:"bundle"`
}

type katStanza struct {
	Comment   string  `json:"comment"`
	Sender    katKeys `json:"sender"`
	Recipient katKeys `json:"recipient"`
	Context   string  `json:"context"`
	FileKey   string  `json:"file_key"`
	EKPrivate string  `json:"ephemeral_private"`
	EKPublic  string  `json:"ephemeral_public"`
	DH1       string  `json:"dh1"`
	DH2       string  `json:"dh2"`
	DH3       string  `json:"dh3"`
	IKM       string  `json:"hkdf_ikm"`
	Salt      string  `json:"hkdf_salt"`
	Info      string  `json:"hkdf_info"`
	Key       string  `json:"hkdf_output"`
	Hint      string  `json:"hint"`
	Body      string  `json:"body"`
	Stanza    string  `json:"stanza"`
}

type katNegative struct {
	Name string `json:"name"`
	From string `json:"from"`
	Word string `json:"word"`
	Want string `json:"want"`
}

type katDM struct {
	Comment    string        `json:"comment"`
	RandomSeed uint64        `json:"crypto_rand_seed"`
	Stanza     katStanza     `json:"stanza"`
	Record     string        `json:"record"`
	AgeFile    string        `json:"age_file"`
	Word       string        `json:"word"`
	Body       string        `json:"body"`
	Seq        uint64        `json:"seq"`
	SentMillis int64         `json:"sent_ms"`
	MsgID      string        `json:"msg_id"`
	Negative   []katNegative `json:"negative"`
}

func katParty(t *testing.T, name string, spkExp time.Time) (*party, katKeys) {
	id, err := NewIdentity(seeded("kat-id-" + name))
	if err != nil {
		t.Fatal(err)
	}
	spk, err := id.NewSignedPrekey(spkID[name], spkExp, seeded("kat-spk-"+name))
	if err != nil {
		t.Fatal(err)
	}
	b, err := id.Bundle(name, spk)
	if err != nil {
		t.Fatal(err)
	}
	sig, dh := id.Public()
	k := katKeys{
		Name: name, SigSeed: hex.EncodeToString(id.sig.Seed()), SigPublic: hex.EncodeToString(sig),
		DHPrivate: hex.EncodeToString(id.dh.Bytes()), DHPublic: hex.EncodeToString(dh.Bytes()),
		IdentityKey: hex.EncodeToString(id.IdentityKey()), SPKID: spk.ID,
		SPKPrivate: hex.EncodeToString(spk.key.Bytes()), SPKPublic: hex.EncodeToString(spk.Public().Bytes()),
		SPKExpires: spk.Expires.Unix(),
	}
	return &party{name: name, id: id, spk: spk, b: b, s: &Sealer{Self: id, Name: name, Rand: seeded("kat-eph-" + name)},
		o: &Opener{Self: id, Name: name, Prekeys: Prekeys(spk)}}, k
}

func h(b []byte) string { return hex.EncodeToString(b) }

// stanzaVector wraps fileKey from a to b and records every intermediate.
func stanzaVector(t *testing.T, a, b *party, ka, kb katKeys, fileKey []byte) (katStanza, []*age.Stanza) {
	var tr kdfTrace
	r := &Recipient{Self: a.id, Name: a.name, To: b.b, Context: ContextMessage, Rand: seeded("kat-ek"), trace: &tr}
	st, err := r.Wrap(fileKey)
	if err != nil {
		t.Fatal(err)
	}
	ekPub := st[0].Args[0]
	ekRaw, _ := stdB64.DecodeString(ekPub)
	v := katStanza{
		Comment: "sslm1 stanza: alice seals a 16-byte file key to bob (context msg). See PROTOCOL.md, End-to-end encryption.",
		Sender:  ka, Recipient: kb, Context: ContextMessage, FileKey: h(fileKey),
		EKPrivate: h(r.ek), EKPublic: h(ekRaw),
		DH1: h(tr.DH1), DH2: h(tr.DH2), DH3: h(tr.DH3), IKM: h(tr.IKM), Salt: h(tr.Salt), Info: h(tr.Info),
		Key: h(tr.Key), Hint: h(a.id.PublicIdentity().Hint()), Body: h(st[0].Body),
		Stanza: "-> " + st[0].Type + " " + strings.Join(st[0].Args, " ") + "\n" + stdB64.EncodeToString(st[0].Body) + "\n",
	}
	return v, st
}

func TestKnownAnswers(t *testing.T) {
	exp := time.Unix(1767225600, 0) // 2026-01-01
	alice, ka := katParty(t, "alice", exp)
	bob, kb := katParty(t, "bob", exp)

	// Bundle.
	body := alice.b.Bytes()
	body = body[:len(body)-64]
	bv := katBundle{
		Comment:    "alice's signed key bundle: signature = Ed25519(sig_seed, sig_context || bundle bytes before the signature)",
		Keys:       ka,
		SigContext: h([]byte(BundleSigContext)), SignedMessage: h(signedMessage(body)),
		Signature: h(alice.b.Signature), Bundle: alice.b.Encode(),
	}

	// Stanza.
	fileKey := bytes.Repeat([]byte{0x42}, 16)
	sv, _ := stanzaVector(t, alice, bob, ka, kb, fileKey)

	// A whole DM, with age's own randomness fixed.
	const seed = 20261130
	cryptotest.SetGlobalRandom(t, seed)
	var tr kdfTrace
	r := &Recipient{Self: alice.id, Name: "alice", To: bob.b, Context: ContextMessage, Rand: seeded("kat-ek"), trace: &tr}
	var fk []byte
	msg := &Message{Kind: KindText, Seq: 3, Sent: time.UnixMilli(1764504000000), Peer: "bob", Body: []byte("hello bob"),
		ID: MsgID{0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf, 0xb0}, Parts: 1}
	rec, err := msg.marshal()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	aw, err := age.Encrypt(&buf, capture{r, &fk})
	if err != nil {
		t.Fatal(err)
	}
	aw.Write(rec)
	aw.Close()
	dsv, _ := stanzaVector(t, alice, bob, ka, kb, fk) // same EK source: the same stanza
	word := WordPrefix + b64.EncodeToString(buf.Bytes())
	dv := katDM{
		Comment:    "a DM word from alice to bob; age's file key and nonce come from testing/cryptotest.SetGlobalRandom(crypto_rand_seed)",
		RandomSeed: seed, Stanza: dsv, Record: h(rec), AgeFile: h(buf.Bytes()), Word: word,
		Body: string(msg.Body), Seq: msg.Seq, SentMillis: msg.Sent.UnixMilli(), MsgID: h(msg.ID[:]),
	}
	flip := bytes.Clone(buf.Bytes())
	flip[len(flip)-20] ^= 1
	dv.Negative = []katNegative{
		{"flipped payload byte", "alice", WordPrefix + b64.EncodeToString(flip), "decrypt"},
		{"wrong sender name", "mallory", word, "unwrap"},
		{"swapped prekey id", "alice", swapStanzaArg(t, word, 1, "01020305"), "prekey"},
		{"truncated", "alice", WordPrefix + b64.EncodeToString(buf.Bytes()[:buf.Len()-20]), "decrypt"},
		{"extra stanza", "alice", addStanza(t, alice, bob, word), "stanza"},
	}

	files := map[string]any{"bundle.json": bv, "stanza.json": sv, "dm.json": dv}
	if *update {
		if err := os.MkdirAll(katDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, v := range files {
			b := katJSON(v)
			if err := os.WriteFile(filepath.Join(katDir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, v := range files {
		want, err := os.ReadFile(filepath.Join(katDir, name))
		if err != nil {
			t.Fatalf("%v (go test -run KnownAnswers -update makes it)", err)
		}
		got := katJSON(v)
		if !bytes.Equal(want, got) {
			t.Errorf("%s: computed vector differs from the stored one:\n%s", name, got)
		}
	}

	// The stored vectors also open, and every negative one fails at the
	// step its want names.
	var stored katDM
	b, _ := os.ReadFile(filepath.Join(katDir, "dm.json"))
	if err := json.Unmarshal(b, &stored); err != nil {
		t.Fatal(err)
	}
	m, err := bob.o.Open(stored.Word, "alice", alice.key())
	if err != nil || string(m.Body) != "hello bob" || m.Seq != 3 {
		t.Fatalf("stored DM: %v", err)
	}
	for _, n := range stored.Negative {
		_, err := bob.o.Open(n.Word, n.From, alice.key())
		if err == nil {
			t.Errorf("negative vector %q opened", n.Name)
		} else if !failsAt(err, n.Want) {
			t.Errorf("negative vector %q (want %s) failed elsewhere: %v", n.Name, n.Want, err)
		}
	}
	var sb katBundle
	b, _ = os.ReadFile(filepath.Join(katDir, "bundle.json"))
	if err := json.Unmarshal(b, &sb); err != nil {
		t.Fatal(err)
	}
	if pb, err := ParseBundle(sb.Bundle); err != nil || pb.User != "alice" {
		t.Fatalf("stored bundle: %v", err)
	}
}

// failsAt reports whether err is the failure a negative vector's want
// names: "stanza", "prekey" and "unwrap" are the header checks' errors;
// "decrypt" is age's payload authentication, past every one of them.
func failsAt(err error, want string) bool {
	steps := map[string]error{"stanza": ErrStanza, "prekey": ErrUnknownPrekey, "unwrap": ErrUnwrap}
	if want != "decrypt" {
		return steps[want] != nil && errors.Is(err, steps[want])
	}
	for _, e := range []error{ErrEnvelope, ErrStanza, ErrSenderKey, ErrUnknownPrekey, ErrUnwrap} {
		if errors.Is(err, e) {
			return false
		}
	}
	return true
}

// capture records the file key age hands the recipient.
type capture struct {
	r  *Recipient
	fk *[]byte
}

func (c capture) WrapWithLabels(fk []byte) ([]*age.Stanza, []string, error) {
	*c.fk = bytes.Clone(fk)
	return c.r.WrapWithLabels(fk)
}

func (c capture) Wrap(fk []byte) ([]*age.Stanza, error) {
	s, _, err := c.WrapWithLabels(fk)
	return s, err
}

func katJSON(v any) []byte {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	e.SetIndent("", "  ")
	if err := e.Encode(v); err != nil {
		panic(err)
	}
	return b.Bytes()
}
