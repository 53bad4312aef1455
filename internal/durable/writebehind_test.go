package durable

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// Data written through a WriteBehind, across several steps and with the
// written ranges dropped from the cache, reads back byte for byte, with
// odd-sized writes that straddle the step boundaries.
func TestWriteBehindKeepsEveryByte(t *testing.T) {
	for _, drop := range []bool{false, true} {
		p := filepath.Join(t.TempDir(), "f")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]byte, 5*WriteBehindStep+12345)
		for i := range want {
			want[i] = byte(i*131 + i>>13)
		}
		w := NewWriteBehind(f, drop)
		for rest := want; len(rest) > 0; {
			k := min(len(rest), 300_007)
			n, err := w.Write(rest[:k])
			if err != nil || n != k {
				t.Fatalf("drop %v: Write = %d, %v; want %d", drop, n, err, k)
			}
			rest = rest[k:]
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("drop %v: read back %d bytes that differ from the %d written", drop, len(got), len(want))
		}
	}
}
