package messenger

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sslmessager/internal/e2e"
	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

// publishKey publishes c's user's bundle (SETKEY) and waits for the OK.
func publishKey(t *testing.T, c *Conn, k *Keys) {
	t.Helper()
	b, _, err := k.bundle(c.User())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.send(wire.SetKey{Bundle: b.Encode(), Token: c.token}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.expect(KeyTimeout, func(q wire.Query) bool {
		ok, is := q.(wire.OK)
		return is && ok.Text == wire.ReasonKeySaved
	}); err != nil {
		t.Fatalf("publish %s's key: %v", c.User(), err)
	}
}

// marker returns a random printable marker string.
func marker(t *testing.T) string {
	var b [16]byte
	rand.Read(b[:])
	return "MARK" + hex.EncodeToString(b[:])
}

// contentWith returns size bytes of random data with the markers written
// at spread-out places (as many as fit).
func contentWith(size int, markers []string) []byte {
	b := make([]byte, size)
	rand.Read(b)
	for i, m := range markers {
		at := (i * size) / max(1, len(markers))
		if at+len(m) <= size {
			copy(b[at:], m)
		}
	}
	return b
}

// spoolFiles returns every regular file under the server's spool.
func spoolFiles(t *testing.T, s *relayServer) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(s.Dir, "spool"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// e2eUploadOneShot uploads paths from user to to with a fresh connection.
func e2eUploadOneShot(t *testing.T, s *relayServer, ring *testKeyring, user, to string, policy E2EPolicy, paths ...string) (string, error) {
	t.Helper()
	c := s.join(t, user, false)
	var out bytes.Buffer
	err := Upload(t.Context(), c, to, paths, TransferOptions{Out: &out, Keys: ring.get(t, c.User()), E2E: policy})
	return out.String(), err
}

// e2eDownloadOneShot downloads user's files into dir with a fresh
// connection.
func e2eDownloadOneShot(t *testing.T, s *relayServer, ring *testKeyring, user, dir string) (string, error) {
	t.Helper()
	c := s.join(t, user, false)
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	err := Download(ctx, c, dir, TransferOptions{Out: &out, Keys: ring.get(t, c.User()), E2E: E2EPrefer})
	return out.String(), err
}

// checkNoParts fails if dir holds a temporary download file.
func checkNoParts(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if isPartName(e.Name()) {
			t.Errorf("temporary file %s left in %s", e.Name(), dir)
		}
	}
}

// TestE2EFilesOneShot: files of 0 B, 65 536 B and 64 MiB uploaded end to
// end with the one-shot commands arrive byte-exact under their real names
// and times, the bob who never saw alice's key gets it on the way; every
// file of the spool holds neither a name nor any of the markers in the
// contents, and the wire names are random .e2e names.
func TestE2EFilesOneShot(t *testing.T) {
	s, logs := startKeyRelay(t)
	ring := newKeyring(t)
	ca := s.join(t, "alice", true)
	cb := s.join(t, "bob", true)
	ring.get(t, ca.User())
	publishKey(t, cb, ring.get(t, cb.User()))
	ca.Close()
	cb.Close()

	var markers []string
	for range 100 {
		markers = append(markers, marker(t))
	}
	src := t.TempDir()
	sizes := []int{0, 65536, 64 << 20}
	want := map[string][]byte{}
	var paths []string
	mtime := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	for i, size := range sizes {
		name := "secret-" + markers[i] + ".bin"
		data := contentWith(size, markers[3:])
		p := filepath.Join(src, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, mtime, mtime)
		want[name] = data
		paths = append(paths, p)
	}
	out, err := e2eUploadOneShot(t, s, ring, "alice", "bob", E2EPrefer, paths...)
	if err != nil {
		t.Fatalf("upload: %v\n%s", err, out)
	}
	if n := strings.Count(out, "[e2e]"); n != 3 {
		t.Errorf("want 3 uploads marked [e2e], got %d:\n%s", n, out)
	}

	// The server's disk: no name, no marker, only random .e2e names.
	files := spoolFiles(t, s)
	if len(files) < 6 {
		t.Fatalf("spool holds %d files, want 3 data and 3 metadata: %v", len(files), files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range markers {
			if bytes.Contains(b, []byte(m)) {
				t.Fatalf("spool file %s holds marker %s", f, m)
			}
		}
		if bytes.Contains(b, []byte("secret-")) {
			t.Fatalf("spool file %s holds the file name", f)
		}
		if strings.HasSuffix(f, ".json") {
			var m struct {
				Name string `json:"name"`
				Size int64  `json:"size"`
			}
			json.Unmarshal(b, &m)
			if !isWireFileName(m.Name) {
				t.Errorf("spool metadata %s: name %q is not a random .e2e name", f, m.Name)
			}
		}
	}

	// Nor does the server's log.
	for _, m := range append(markers, "secret-") {
		if strings.Contains(logs.String(), m) {
			t.Fatalf("the server's log holds %s", m)
		}
	}

	dir := t.TempDir()
	out, err = e2eDownloadOneShot(t, s, ring, "bob", dir)
	if err != nil {
		t.Fatalf("download: %v\n%s", err, out)
	}
	t.Log(out)
	for name, data := range want {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s not saved: %v\n%s", name, err, out)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%s: %d bytes differ from the %d sent", name, len(got), len(data))
		}
		if st, _ := os.Stat(filepath.Join(dir, name)); !st.ModTime().Equal(mtime) {
			t.Errorf("%s: mtime %v, want %v", name, st.ModTime(), mtime)
		}
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if _, ok := want[e.Name()]; !ok && !strings.HasPrefix(e.Name(), ".") {
			t.Errorf("unexpected file %s in the download directory", e.Name())
		}
	}
	checkNoParts(t, dir)
	if q, _ := s.Spool.List("bob", 10); len(q) != 0 {
		t.Errorf("%d files still queued for bob after the download", len(q))
	}
}

// tamperSpool rewrites every queued file of recipient with edit and fixes
// its size and SHA-256 in the metadata: a hostile server, whose
// checksum then matches.
func tamperSpool(t *testing.T, s *relayServer, recipient string, edit func(i int, b []byte) []byte) {
	t.Helper()
	metas, err := s.Spool.List(recipient, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range metas {
		dir := filepath.Join(s.Dir, "spool", recipient)
		dp, jp := filepath.Join(dir, m.ID+".data"), filepath.Join(dir, m.ID+".json")
		b, err := os.ReadFile(dp)
		if err != nil {
			t.Fatal(err)
		}
		b = edit(i, b)
		if err := os.WriteFile(dp, b, 0o600); err != nil {
			t.Fatal(err)
		}
		jb, err := os.ReadFile(jp)
		if err != nil {
			t.Fatal(err)
		}
		var j map[string]any
		if err := json.Unmarshal(jb, &j); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		j["sha256"] = hex.EncodeToString(sum[:])
		j["size"] = len(b)
		jb, _ = json.Marshal(j)
		if err := os.WriteFile(jp, jb, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestE2EFileTamperedRefused: a flipped byte and a file cut at a chunk
// boundary, with the spool's checksum fixed up by a hostile server, are
// refused by the recipient: nothing is named, no temporary file is left,
// and the refused files are confirmed (they leave the queue) as
// PROTOCOL.md says.
func TestE2EFileTamperedRefused(t *testing.T) {
	s, _ := startKeyRelay(t)
	ring := newKeyring(t)
	ca := s.join(t, "alice", true)
	cb := s.join(t, "bob", true)
	ring.get(t, ca.User())
	publishKey(t, cb, ring.get(t, cb.User()))
	ca.Close()
	cb.Close()
	src := t.TempDir()
	var paths []string
	for _, name := range []string{"flipped.txt", "cut.txt"} {
		p := filepath.Join(src, name)
		os.WriteFile(p, contentWith(3*e2e.ChunkBytes+100, nil), 0o600)
		paths = append(paths, p)
	}
	if out, err := e2eUploadOneShot(t, s, ring, "alice", "bob", E2EPrefer, paths...); err != nil {
		t.Fatalf("upload: %v\n%s", err, out)
	}
	tamperSpool(t, s, "bob", func(i int, b []byte) []byte {
		if i == 0 {
			b[len(b)/2] ^= 0x01
			return b
		}
		// Cut after the second whole chunk: every chunk left
		// authenticates, but the last one is missing.
		return b[:e2e.HeaderBytes+2*(e2e.ChunkBytes+16)]
	})
	dir := t.TempDir()
	out, err := e2eDownloadOneShot(t, s, ring, "bob", dir)
	t.Log(out)
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	if n := strings.Count(out, "REFUSED"); n != 2 {
		t.Errorf("want 2 files refused, got %d", n)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			t.Errorf("file %s was saved from a tampered upload", e.Name())
		}
	}
	checkNoParts(t, dir)
	if q, _ := s.Spool.List("bob", 10); len(q) != 0 {
		t.Errorf("%d refused files still queued: want them confirmed", len(q))
	}
}

// TestE2EFileRequireKeyless: under --e2e=require a file to a keyless user
// is refused before anything is sent; under prefer it goes [plain] with a
// notice and arrives as it is.
func TestE2EFileRequireKeyless(t *testing.T) {
	s, _ := startKeyRelay(t)
	ring := newKeyring(t)
	ca := s.join(t, "alice", true)
	ring.get(t, ca.User())
	ca.Close()
	s.join(t, "carol", true).Close() // no key published
	p := filepath.Join(t.TempDir(), "note.txt")
	os.WriteFile(p, []byte("for carol"), 0o600)
	out, err := e2eUploadOneShot(t, s, ring, "alice", "carol", E2ERequire, p)
	if err == nil || !strings.Contains(err.Error(), "--e2e=require") {
		t.Fatalf("require to a keyless user: err %v, want a refusal\n%s", err, out)
	}
	if q, _ := s.Spool.List("carol", 10); len(q) != 0 {
		t.Fatalf("a refused upload reached the spool")
	}
	out, err = e2eUploadOneShot(t, s, ring, "alice", "carol", E2EPrefer, p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "[plain]") || !strings.Contains(out, "server operator can read") {
		t.Errorf("plaintext upload not marked:\n%s", out)
	}
	dir := t.TempDir()
	c := s.join(t, "carol", false)
	if err := Download(t.Context(), c, dir, TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "note.txt")); string(b) != "for carol" {
		t.Errorf("carol got %q", b)
	}
}

// TestE2EFileChat: :upload: in the chat seals to a keyed target and
// :download: in the other's chat opens it under its real name.
func TestE2EFileChat(t *testing.T) {
	s, _ := startKeyRelay(t)
	ring := newKeyring(t)
	ca := s.join(t, "alice", true)
	cb := s.join(t, "bob", true)
	dir := t.TempDir()
	alice := startRun(t, ca, Options{Target: "bob", NoTimestamps: true, Keys: ring.get(t, ca.User())})
	bob := startRun(t, cb, Options{Target: "alice", NoTimestamps: true, Keys: ring.get(t, cb.User()), Downloads: dir})
	s.waitOnline(t, "alice and bob", func(n []string) bool { return len(n) == 2 })
	bob.typeLine(t, ":fingerprint:")
	waitOutput(t, bob.out, "safety-number half")
	p := filepath.Join(t.TempDir(), "plan.txt")
	data := contentWith(200_000, []string{marker(t)})
	os.WriteFile(p, data, 0o600)
	alice.typeLine(t, ":upload: "+p)
	waitOutput(t, alice.out, "upload complete: plan.txt to bob")
	if !strings.Contains(alice.out.String(), "to bob [e2e]") {
		t.Errorf("chat upload not marked [e2e]:\n%s", alice.out.String())
	}
	bob.typeLine(t, ":download:")
	waitOutput(t, bob.out, "end-to-end encrypted, authenticated")
	relaytest.CheckFor(t, waitLimit, func() error {
		got, err := os.ReadFile(filepath.Join(dir, "plan.txt"))
		if err != nil {
			return err
		}
		if !bytes.Equal(got, data) {
			t.Fatal("plan.txt differs")
		}
		return nil
	})
	checkNoParts(t, dir)
}

// TestE2EFilesOriginalClients: two original clients (no ALPN) still send
// each other plaintext files through a server with the key directory, next
// to an encrypted file between two of ours.
func TestE2EFilesOriginalClients(t *testing.T) {
	s, _ := startKeyRelay(t)
	ring := newKeyring(t)
	ca, cb := s.join(t, "alice", true), s.join(t, "bob", true)
	ring.get(t, ca.User())
	publishKey(t, cb, ring.get(t, cb.User()))
	ca.Close()
	cb.Close()
	p := filepath.Join(t.TempDir(), "ours.txt")
	os.WriteFile(p, []byte("between ours"), 0o600)
	if out, err := e2eUploadOneShot(t, s, ring, "alice", "bob", E2EPrefer, p); err != nil || !strings.Contains(out, "[e2e]") {
		t.Fatalf("upload: %v\n%s", err, out)
	}

	carol, erin := s.Dial(t), s.Dial(t)
	carol.SignUp("carol")
	erin.SignUp("erin")
	data := contentWith(100_000, nil)
	carol.Upload("erin", "holiday.jpg", data)
	files := erin.Download(true)
	if len(files) != 1 || files[0].Header.Name != "holiday.jpg" || !bytes.Equal(files[0].Data, data) || files[0].Header.Sender != "carol" {
		t.Fatalf("erin got %d files: %+v", len(files), files)
	}

	dir := t.TempDir()
	if out, err := e2eDownloadOneShot(t, s, ring, "bob", dir); err != nil {
		t.Fatalf("download: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "ours.txt")); string(b) != "between ours" {
		t.Errorf("bob got %q", b)
	}
}
