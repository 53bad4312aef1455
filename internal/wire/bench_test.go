package wire

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func BenchmarkParseClientMsg(b *testing.B) {
	for _, size := range []int{16, 100, 1000} {
		line := []byte("MSG bob alice " + strings.Repeat("x", size) + "\n " + tok + " ")
		b.Run(byteSize(size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				if _, err := ParseClient(line); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkFormatRelay(b *testing.B) {
	for _, size := range []int{16, 100, 1000} {
		q := Relay{Target: "bob", Sender: "alice", Text: strings.Repeat("x", size)}
		buf := make([]byte, 0, 2048)
		b.Run(byteSize(size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				var err error
				if buf, err = q.AppendTo(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReadLine(b *testing.B) {
	line := []byte("MSG bob alice " + strings.Repeat("x", 100) + "\n " + tok + " \r\n")
	stream := bytes.Repeat(line, 1000)
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		r := NewReader(bytes.NewReader(stream), 4096)
		for range 1000 {
			if _, err := r.ReadLine(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func byteSize(n int) string { return fmt.Sprintf("%dB", n) }
