package spool

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"
)

// A reader opened on an upload in progress sees each byte once Write has
// returned it, keeps reading the same data after Commit moved it into the
// queue, and no new reader can be opened once the upload is finished.
func TestNewReaderFollowsUpload(t *testing.T) {
	s := openSpool(t, t.TempDir(), Options{})
	data := make([]byte, 300<<10)
	rand.Read(data)
	u, err := s.Begin("alice", "bob", "f.bin", int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	r, err := u.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := u.Write(data[:100<<10]); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 100<<10)
	if _, err := r.ReadAt(got, 0); err != nil || !bytes.Equal(got, data[:100<<10]) {
		t.Fatalf("first part: %v, equal %v", err, bytes.Equal(got, data[:100<<10]))
	}
	if _, err := u.Write(data[100<<10:]); err != nil {
		t.Fatal(err)
	}
	m, err := u.Commit("")
	if err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(io.NewSectionReader(r, 0, int64(len(data))))
	if err != nil || !bytes.Equal(all, data) {
		t.Fatalf("after commit: %v, equal %v", err, bytes.Equal(all, data))
	}
	if m.SHA256 != hexSum(data) {
		t.Fatalf("sha256 %s", m.SHA256)
	}
	if _, err := u.NewReader(); !errors.Is(err, ErrUploadFinished) {
		t.Fatalf("NewReader after Commit: %v, want ErrUploadFinished", err)
	}
}

// A reader of an aborted upload still reads what was written (the file is
// unlinked, not truncated), and nothing stays in the queue.
func TestNewReaderAfterAbort(t *testing.T) {
	s := openSpool(t, t.TempDir(), Options{})
	u, err := s.Begin("alice", "bob", "f.bin", 10)
	if err != nil {
		t.Fatal(err)
	}
	r, err := u.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	u.Write([]byte("hello"))
	u.Abort()
	b := make([]byte, 5)
	if _, err := r.ReadAt(b, 0); err != nil || string(b) != "hello" {
		t.Fatalf("read after abort: %q, %v", b, err)
	}
	if _, err := u.NewReader(); !errors.Is(err, ErrUploadFinished) {
		t.Fatalf("NewReader after Abort: %v", err)
	}
	if n := s.Queued("bob"); n != 0 {
		t.Fatalf("%d queued after abort", n)
	}
}
