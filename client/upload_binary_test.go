package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/spool"
)

// TestClientBinaryUploadRefusedNamesLimit checks the one-shot upload of a
// file over the server's --max-file-size: the server's reason names the
// limit and the client shows it; with several files, the error says which
// were delivered and which not.
func TestClientBinaryUploadRefusedNamesLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildClient(t)
	s := &testServer{relaytest.Start(t, relaytest.Options{Spool: spool.Options{MaxFileSize: 1024}})}
	common := []string{"--server", s.Addr, "--ca", s.CAFile}
	alice := []string{"SSLM_PASSWORD=pw-of-alice", "SSLM_USER=alice"}
	bob := []string{"SSLM_PASSWORD=pw-of-bob", "SSLM_USER=bob"}
	for _, env := range [][]string{alice, bob} {
		if out, errOut, code := runOnce(t, bin, "", env, append(common, "--signup", "--to", "x")...); code != 0 {
			t.Fatalf("sign-up: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	}
	src := t.TempDir()
	for name, size := range map[string]int{"a.txt": 10, "big.bin": 2000, "c.txt": 5} {
		if err := os.WriteFile(filepath.Join(src, name), make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := func(n string) string { return filepath.Join(src, n) }

	_, errOut, code := runOnce(t, bin, "", alice, append(common, "upload", "--to", "bob", path("big.bin"))...)
	if want := "error: upload refused: file too large (the limit is 1 KiB)\n"; code != 1 || errOut != want {
		t.Errorf("one file: exit %d, stderr %q, want %q", code, errOut, want)
	}
	_, errOut, code = runOnce(t, bin, "", alice, append(common, "upload", "--to", "bob", path("a.txt"), path("big.bin"), path("c.txt"))...)
	want := "error: upload refused: file too large (the limit is 1 KiB); delivered 1 of 3 files: " + path("a.txt") +
		"; not delivered: " + path("big.bin") + ", " + path("c.txt") + "\n"
	if code != 1 || errOut != want {
		t.Errorf("three files: exit %d, stderr %q, want %q", code, errOut, want)
	}
	// What was reported delivered is there.
	dir := t.TempDir()
	if out, errOut, code := runOnce(t, bin, "", bob, append(common, "download", "--dir", dir)...); code != 0 {
		t.Fatalf("download: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	entries, _ := os.ReadDir(dir)
	var got []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			got = append(got, e.Name())
		}
	}
	if len(got) != 1 || got[0] != "a.txt" {
		t.Errorf("bob got %v, want a.txt only", got)
	}
}

// TestClientBinaryDownloadUmask checks that downloaded files get the
// mode a new file of the user's gets, 0666 less the umask, not 0600.
func TestClientBinaryDownloadUmask(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildClient(t)
	s := startServer(t)
	common := []string{"--server", s.Addr, "--ca", s.CAFile}
	alice := []string{"SSLM_PASSWORD=pw-of-alice", "SSLM_USER=alice"}
	bob := []string{"SSLM_PASSWORD=pw-of-bob", "SSLM_USER=bob"}
	for _, env := range [][]string{alice, bob} {
		if out, errOut, code := runOnce(t, bin, "", env, append(common, "--signup", "--to", "x")...); code != 0 {
			t.Fatalf("sign-up: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	}
	for _, c := range []struct {
		umask string
		want  os.FileMode
	}{{"027", 0o640}, {"002", 0o664}} {
		src := filepath.Join(t.TempDir(), "f"+c.umask+".txt")
		if err := os.WriteFile(src, []byte("hi"), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, errOut, code := runOnce(t, bin, "", alice, append(common, "upload", "--to", "bob", src)...); code != 0 {
			t.Fatalf("upload: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		dir := t.TempDir()
		// The shell sets the umask, then becomes the client.
		args := append([]string{"-c", "umask " + c.umask + ` && exec "$0" "$@"`, bin}, append(common, "download", "--dir", dir)...)
		cmd := clientCmd(t.Context(), "/bin/sh", bob, args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("download: %v\n%s", err, out)
		}
		st, err := os.Stat(filepath.Join(dir, filepath.Base(src)))
		if err != nil || st.Mode().Perm() != c.want {
			t.Errorf("umask %s: %v, mode %v, want %v", c.umask, err, st.Mode().Perm(), c.want)
		}
	}
}
