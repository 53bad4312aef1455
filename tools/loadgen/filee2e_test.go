package main

import (
	"testing"

	"sslmessager/internal/e2e"
)

func TestPlainFitting(t *testing.T) {
	for _, size := range []int64{1 << 30, 16 << 20, 65536, 1000, 1} {
		p := plainFitting(size)
		if (p > 0 && e2e.FileCiphertextSize(p) > size) || e2e.FileCiphertextSize(p+1) <= size {
			t.Errorf("plainFitting(%d) = %d: ciphertext %d, next %d", size, p, e2e.FileCiphertextSize(p), e2e.FileCiphertextSize(p+1))
		}
	}
}
