package messenger

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"sslmessager/internal/relay/relaytest"
)

// lineSignal is an output that hands every complete line to a channel.
type lineSignal struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines chan string
}

func (l *lineSignal) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for {
		i := bytes.IndexByte(l.buf.Bytes(), '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(l.buf.Next(i + 1))
		select {
		case l.lines <- line:
		default:
		}
	}
}

// BenchmarkDirectRoundTrip: one direct message typed into alice's session
// until bob's session printed it, over real TLS to a real server on
// loopback; encrypted (e2e) and as plaintext (off). Both clients run in
// this process.
func BenchmarkDirectRoundTrip(b *testing.B) {
	for _, policy := range []E2EPolicy{E2EPrefer, E2EOff} {
		name := map[E2EPolicy]string{E2EPrefer: "e2e", E2EOff: "plain"}[policy]
		b.Run(name, func(b *testing.B) {
			s, _ := startKeyRelay(b)
			dir := b.TempDir()
			open := func(user string) *Keys {
				k, err := OpenKeys(KeyStoreDir(dir, "bench", user), user, "pw-of-"+user, true)
				if err != nil {
					b.Fatal(err)
				}
				return k
			}
			ka, kb := open("alice"), open("bob")
			join := func(user string) *Conn {
				c, err := Dial(b.Context(), s.Addr, s.CAFile)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { c.Close() })
				if err := c.Login(user, "pw-of-"+user, true); err != nil {
					b.Fatal(err)
				}
				return c
			}
			out := &lineSignal{lines: make(chan string, 16)}
			cb := join("bob")
			bin, bw := io.Pipe()
			defer bw.Close()
			go cb.Run(b.Context(), bin, out, Options{Target: "alice", NoTimestamps: true, Keys: kb, E2E: policy})
			relaytest.CheckFor(b, waitLimit, func() error {
				if _, ok := s.Keys.Get("bob"); !ok && policy != E2EOff {
					return fmt.Errorf("no key for bob")
				}
				return nil
			})
			ca := join("alice")
			ain, aw := io.Pipe()
			defer aw.Close()
			go ca.Run(b.Context(), ain, io.Discard, Options{Target: "bob", NoTimestamps: true, Keys: ka, E2E: policy})
			send := func(i int) {
				want := fmt.Sprintf("alice: m%d\n", i)
				fmt.Fprintf(aw, "m%d\n", i)
				deadline := time.After(waitLimit)
				for {
					select {
					case l := <-out.lines:
						if l == want {
							return
						}
					case <-deadline:
						b.Fatalf("message %d did not arrive", i)
					}
				}
			}
			send(-1) // key fetched, conversation set up
			b.ResetTimer()
			for i := range b.N {
				send(i)
			}
		})
	}
}
