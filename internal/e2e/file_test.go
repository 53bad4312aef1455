package e2e

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func encryptFile(t testing.TB, from, to *party, meta FileMeta, content []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := from.s.EncryptFile(&out, meta, to.b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func decryptAll(o *Opener, ct []byte, from *party) (FileMeta, []byte, error) {
	meta, r, err := o.DecryptFile(bytes.NewReader(ct), from.name, from.key())
	if err != nil {
		return meta, nil, err
	}
	b, err := io.ReadAll(r)
	return meta, b, err
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed)})
	r.Read(b)
	return b
}

// Files of 0 B, one chunk exactly, around chunk boundaries and a few MiB
// arrive byte-exact, through a real file, and the ciphertext is exactly
// FileCiphertextSize.
func TestFileRoundTrip(t *testing.T) {
	alice, bob := newParty(t, "alice"), newParty(t, "bob")
	mtime := time.UnixMilli(1764500000123).UTC()
	for _, n := range []int{0, 1, ChunkBytes - MetaBytes, ChunkBytes - MetaBytes + 1, 65536, 3<<20 + 17} {
		content := randomBytes(n, uint64(n))
		ct := encryptFile(t, alice, bob, FileMeta{Name: "../report 1.pdf", Size: int64(n), ModTime: mtime}, content)
		if int64(len(ct)) != FileCiphertextSize(int64(n)) {
			t.Fatalf("%d B: ciphertext %d B, FileCiphertextSize says %d", n, len(ct), FileCiphertextSize(int64(n)))
		}
		path := filepath.Join(t.TempDir(), "x.e2e")
		if err := os.WriteFile(path, ct, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		meta, r, err := bob.o.DecryptFile(f, "alice", alice.key())
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		f.Close()
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("%d B: err %v, content equal %v", n, err, bytes.Equal(got, content))
		}
		if meta.Name != "report 1.pdf" || meta.Size != int64(n) || !meta.ModTime.Equal(mtime) {
			t.Fatalf("meta %+v", meta)
		}
		if bytes.Contains(ct, []byte("report")) {
			t.Fatal("name visible in the ciphertext")
		}
	}
}

// A file truncated exactly on a 64 KiB chunk boundary (and anywhere else),
// flipped, extended, or sealed by another sender fails, and fails before
// the reader reports a clean end.
func TestFileFailsClosed(t *testing.T) {
	alice, bob, carol := newParty(t, "alice"), newParty(t, "bob"), newParty(t, "carol")
	n := 3*ChunkBytes - MetaBytes // three full chunks of plaintext
	content := randomBytes(n, 9)
	ct := encryptFile(t, alice, bob, FileMeta{Name: "a.bin", Size: int64(n)}, content)
	chunk := ChunkBytes + chunkTag
	cuts := []int{HeaderBytes + chunk, HeaderBytes + 2*chunk, HeaderBytes + 3*chunk - 1, HeaderBytes, HeaderBytes + 1, 100, 0}
	for _, c := range cuts {
		if _, _, err := decryptAll(bob.o, ct[:c], alice); err == nil {
			t.Fatalf("cut at %d opened", c)
		}
	}
	if _, _, err := decryptAll(bob.o, append(bytes.Clone(ct), 0), alice); err == nil {
		t.Fatal("extended file opened")
	}
	for _, i := range []int{0, 30, HeaderBytes - 20, HeaderBytes - 1, HeaderBytes, HeaderBytes + 500, HeaderBytes + chunk + 7, len(ct) - 1} {
		m := bytes.Clone(ct)
		m[i] ^= 0x40
		if _, _, err := decryptAll(bob.o, m, alice); err == nil {
			t.Fatalf("flip at %d opened", i)
		}
	}
	// A chunk swapped with another: authenticated with its position.
	m := bytes.Clone(ct)
	copy(m[HeaderBytes:], ct[HeaderBytes+chunk:HeaderBytes+2*chunk])
	copy(m[HeaderBytes+chunk:], ct[HeaderBytes:HeaderBytes+chunk])
	if _, _, err := decryptAll(bob.o, m, alice); err == nil {
		t.Fatal("swapped chunks opened")
	}
	if _, _, err := decryptAll(bob.o, ct, carol); !errors.Is(err, ErrSenderKey) {
		t.Fatalf("wrong sender: %v", err)
	}
	if _, _, err := bob.o.DecryptFile(bytes.NewReader(ct), "mallory", alice.key()); !errors.Is(err, ErrUnwrap) {
		t.Fatalf("wrong sender name: %v", err)
	}
	// A file opened as a message word fails on the context.
	if _, err := bob.o.Open(WordPrefix+b64.EncodeToString(ct[:HeaderBytes+100]), "alice", alice.key()); !errors.Is(err, ErrUnwrap) {
		t.Fatalf("file as message: %v", err)
	}
}

func TestFileWrongSize(t *testing.T) {
	alice, bob := newParty(t, "alice"), newParty(t, "bob")
	w, _ := alice.s.EncryptFile(io.Discard, FileMeta{Name: "a", Size: 3}, bob.b)
	w.Write([]byte("ab"))
	if err := w.Close(); !errors.Is(err, ErrFileSize) {
		t.Fatalf("short content closed: %v", err)
	}
	w, _ = alice.s.EncryptFile(io.Discard, FileMeta{Name: "a", Size: 1}, bob.b)
	if _, err := w.Write([]byte("ab")); !errors.Is(err, ErrFileSize) {
		t.Fatalf("long content written: %v", err)
	}
	if _, err := alice.s.EncryptFile(io.Discard, FileMeta{Size: -1}, bob.b); err == nil {
		t.Fatal("negative size accepted")
	}
}

func TestWireFileName(t *testing.T) {
	a, err := WireFileName(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := WireFileName(nil)
	if a == b || len(a) != 36 || !strings.HasSuffix(a, WireFileSuffix) || strings.Trim(a[:32], "0123456789abcdef") != "" {
		t.Fatalf("names %q %q", a, b)
	}
}

func TestMetaRefusesGarbage(t *testing.T) {
	m, _ := FileMeta{Name: "x", Size: 1}.marshal()
	bad := bytes.Clone(m)
	bad[MetaBytes-1] = 1
	if _, err := unmarshalMeta(bad); !errors.Is(err, ErrFileMeta) {
		t.Fatal("non-zero padding accepted")
	}
	bad = bytes.Clone(m)
	bad[17] = 255
	bad[18+1] = 'y'
	if _, err := unmarshalMeta(bad[:MetaBytes-1]); !errors.Is(err, ErrFileMeta) {
		t.Fatal("short metadata accepted")
	}
}

// Every single-byte flip of a small encrypted file fails.
func TestFileEveryFlipFails(t *testing.T) {
	alice, bob := newParty(t, "alice"), newParty(t, "bob")
	ct := encryptFile(t, alice, bob, FileMeta{Name: "n.txt", Size: 5}, []byte("hello"))
	for i := range ct {
		m := bytes.Clone(ct)
		m[i] ^= 0x01
		if _, got, err := decryptAll(bob.o, m, alice); err == nil {
			t.Fatalf("flip at %d opened: %q", i, got)
		}
	}
}
