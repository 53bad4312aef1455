package e2e

import (
	"bytes"
	"io"
	"testing"
)

// BenchmarkDM is one direct message sealed and opened (100-byte body).
func BenchmarkDM(b *testing.B) {
	alice, bob := newParty(b, "alice"), newParty(b, "bob")
	body := bytes.Repeat([]byte("x"), 100)
	b.Run("seal", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := alice.s.Seal(bob.b, &Message{Kind: KindText, Seq: uint64(i + 1), Peer: "bob", Body: body}); err != nil {
				b.Fatal(err)
			}
		}
	})
	w, _ := alice.s.Seal(bob.b, &Message{Kind: KindText, Seq: 1, Peer: "bob", Body: body})
	b.Run("open", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := bob.o.Open(w, "alice", alice.key()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("seal+open", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			w, err := alice.s.Seal(bob.b, &Message{Kind: KindText, Seq: uint64(i + 1), Peer: "bob", Body: body})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := bob.o.Open(w, "alice", alice.key()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkFile is encryption and decryption of an 8 MiB file; MB/s is
// of plaintext.
func BenchmarkFile(b *testing.B) {
	alice, bob := newParty(b, "alice"), newParty(b, "bob")
	const n = 8 << 20
	content := randomBytes(n, 1)
	ct := encryptFile(b, alice, bob, FileMeta{Name: "f", Size: n}, content)
	b.Run("encrypt", func(b *testing.B) {
		b.SetBytes(n)
		for b.Loop() {
			w, err := alice.s.EncryptFile(io.Discard, FileMeta{Name: "f", Size: n}, bob.b)
			if err != nil {
				b.Fatal(err)
			}
			w.Write(content)
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decrypt", func(b *testing.B) {
		b.SetBytes(n)
		for b.Loop() {
			_, r, err := bob.o.DecryptFile(bytes.NewReader(ct), "alice", alice.key())
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
