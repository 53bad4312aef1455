package relay_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"
	"time"

	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

// BenchmarkStreamedFile measures one file going from a sender to an online
// recipient that asked for pushes, end to end: from BEGINF to the
// recipient holding every byte and the STREAMEND (it hashes what it
// reads, as a client does, and writes nothing). Bytes/s is the file rate.
func BenchmarkStreamedFile(b *testing.B) {
	const size = 64 << 20
	h := relaytest.Start(b, relaytest.Options{})
	alice := h.Dial(b)
	alice.SignUp("alice")
	bob := h.DialExt(b)
	bob.SignUp("bob")
	bob.Send(wire.Push{Token: bob.Token})
	bob.Send(wire.Ping{Nonce: "1", Token: bob.Token})
	bob.Expect(wire.Pong{Nonce: "1"})
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	want := sha256.Sum256(data)
	buf := make([]byte, wire.MaxChunkBytes)
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		done := make(chan error, 1)
		go func() {
			alice.Send(wire.Upload{Name: "f", Target: "bob", Size: size, Token: alice.Token})
			alice.Conn.SetWriteDeadline(time.Now().Add(60 * time.Second))
			// PROCEED is read after the data: the sender does not wait for it.
			_, err := alice.Conn.Write(data)
			alice.Send(wire.UploadEnd{Token: alice.Token})
			done <- err
		}()
		hs := sha256.New()
		for {
			q := bob.MustNext()
			if c, ok := q.(wire.Chunk); ok {
				bob.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.ReadFull(bob.R, buf[:c.Size]); err != nil {
					b.Fatal(err)
				}
				hs.Write(buf[:c.Size])
				continue
			}
			if e, ok := q.(wire.StreamEnd); ok {
				if e.SHA256 != hex.EncodeToString(want[:]) || hex.EncodeToString(hs.Sum(nil)) != e.SHA256 {
					b.Fatal("sha256 differs")
				}
				bob.Send(wire.AckFile{ID: e.ID, Token: bob.Token})
				break
			}
			if _, ok := q.(wire.StreamHeader); !ok {
				b.Fatalf("got %v", q)
			}
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		alice.Expect(wire.Proceed{})
		alice.Expect(wire.Notice{Text: wire.NoticeUploadComplete})
	}
}
