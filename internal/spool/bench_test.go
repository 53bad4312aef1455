package spool

import (
	"fmt"
	"testing"
)

// BenchmarkUploadWrite measures Upload.Write in small writes, as an
// upload without a declared size arrives (split at every newline of the
// data), against one with a declared size: the limits' accounting must
// not make the small writes costly.
func BenchmarkUploadWrite(b *testing.B) {
	for _, size := range []int{256, 16 << 10} {
		for _, known := range []bool{true, false} {
			b.Run(fmt.Sprintf("write=%d/known=%v", size, known), func(b *testing.B) {
				s, err := Open(b.TempDir(), Options{MaxFileSize: 1 << 40, Quota: 1 << 40})
				if err != nil {
					b.Fatal(err)
				}
				declared := int64(-1)
				if known {
					declared = int64(b.N) * int64(size)
				}
				u, err := s.Begin("bob", "alice", "bench", declared)
				if err != nil {
					b.Fatal(err)
				}
				defer u.Abort()
				p := make([]byte, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if _, err := u.Write(p); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
