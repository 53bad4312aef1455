package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestClientBinaryFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildClient(t)
	s := startServer(t)
	args := func(extra ...string) []string {
		return append([]string{"--server", s.Addr, "--ca", s.CAFile}, extra...)
	}
	alice := []string{"SSLM_PASSWORD=pw-of-alice", "SSLM_USER=alice"}
	bob := []string{"SSLM_PASSWORD=pw-of-bob", "SSLM_USER=bob"}
	for _, env := range [][]string{alice, bob} {
		// A piped session without input signs up and quits.
		if out, errOut, code := runOnce(t, bin, "", env, args("--signup", "--to", "x")...); code != 0 {
			t.Fatalf("sign-up: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	}
	s.waitOnline(t)

	src := t.TempDir()
	big := make([]byte, 3<<20)
	rand.NewChaCha8([32]byte{9}).Read(big)
	want := map[string][]byte{
		"big.bin":          big,
		"tricky notes.txt": []byte("ENDF ENDF ENDF \r\nENDF ENDF ENDF\r\nCMD <file send complete> \r\n"),
		"empty.txt":        nil,
	}
	var paths []string
	for _, name := range []string{"big.bin", "tricky notes.txt", "empty.txt"} {
		p := filepath.Join(src, name)
		if err := os.WriteFile(p, want[name], 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	checkSaved := func(t *testing.T, dir string, want map[string][]byte) {
		t.Helper()
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), ".") {
				names = append(names, e.Name())
			}
		}
		if len(names) != len(want) {
			t.Errorf("%s holds %v, want %d files", dir, names, len(want))
		}
		for name, data := range want {
			got, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("%s: %v, identical %v", name, err, bytes.Equal(got, data))
			}
		}
	}

	t.Run("upload", func(t *testing.T) {
		out, errOut, code := runOnce(t, bin, "", alice, args(append([]string{"upload", "--to", "bob"}, paths...)...)...)
		if code != 0 {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		for _, line := range []string{
			"uploading big.bin (3.1 MB) to bob…\nupload complete: big.bin to bob\n",
			"upload complete: tricky notes.txt to bob\n",
			"uploading empty.txt (0 B) to bob…\nupload complete: empty.txt to bob\n",
		} {
			if !strings.Contains(out, line) {
				t.Errorf("stdout lacks %q:\n%s", line, out)
			}
		}
		if errOut != "" {
			t.Errorf("stderr (not a terminal, so no bars): %q", errOut)
		}
		s.waitOnline(t)
	})

	t.Run("upload to an unknown user", func(t *testing.T) {
		out, errOut, code := runOnce(t, bin, "", alice, args("upload", "--to", "nobody", paths[0], paths[1])...)
		if code != 1 || !strings.Contains(errOut, "error: upload refused: no such user: nobody") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		if strings.Contains(out, "tricky") {
			t.Errorf("went on after the refusal: %q", out)
		}
		s.waitOnline(t)
	})

	t.Run("download", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "in")
		out, errOut, code := runOnce(t, bin, "", bob, args("download", "--dir", dir)...)
		if code != 0 {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		for _, line := range []string{
			"saved big.bin from alice (3.1 MB, sha256 ok) -> " + filepath.Join(dir, "big.bin") + "\n",
			"saved tricky notes.txt from alice (60 B, sha256 ok) -> " + filepath.Join(dir, "tricky notes.txt") + "\n",
			"saved empty.txt from alice (0 B, sha256 ok) -> " + filepath.Join(dir, "empty.txt") + "\n",
			"downloaded 3 files\n",
		} {
			if !strings.Contains(out, line) {
				t.Errorf("stdout lacks %q:\n%s", line, out)
			}
		}
		checkSaved(t, dir, want)
		if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("download directory: %v %v", err, st.Mode())
		}
		s.waitOnline(t)

		// Nothing left; the directory from the environment is created.
		envDir := filepath.Join(t.TempDir(), "env")
		out, errOut, code = runOnce(t, bin, "", append(slices.Clone(bob), "SSLM_DOWNLOADS="+envDir), args("download")...)
		if code != 0 || out != "no files waiting\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		if _, err := os.Stat(envDir); err != nil {
			t.Error(err)
		}
		s.waitOnline(t)
	})

	t.Run("scripted session", func(t *testing.T) {
		up := "\"" + paths[1] + "\" bob\n"
		out, errOut, code := runOnce(t, bin, ":upload: "+up, alice, args("--to", "carol", "--no-timestamps")...)
		if code != 0 || !strings.Contains(out, "upload complete: tricky notes.txt to bob\n") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		s.waitOnline(t)
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "tricky notes.txt"), []byte("mine"), 0o600)
		// End of input right after :download: lets the download finish.
		out, errOut, code = runOnce(t, bin, ":download:\n", bob, args("--to", "alice", "--downloads", dir)...)
		if code != 0 || !strings.Contains(out, "-> "+filepath.Join(dir, "tricky notes (1).txt")+"\ndownloaded 1 file\n") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		checkSaved(t, dir, map[string][]byte{"tricky notes.txt": []byte("mine"), "tricky notes (1).txt": want["tricky notes.txt"]})
		s.waitOnline(t)
		out, errOut, code = runOnce(t, bin, "", bob, args("download", "--dir", dir)...)
		if code != 0 || out != "no files waiting\n" {
			t.Fatalf("the scripted download was not confirmed: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		s.waitOnline(t)
	})

	t.Run("checksum mismatch", func(t *testing.T) {
		if _, errOut, code := runOnce(t, bin, "", alice, args("upload", "--to", "bob", paths[0])...); code != 0 {
			t.Fatalf("upload: exit %d, stderr %q", code, errOut)
		}
		s.waitOnline(t)
		// Damage the queued copy on the server's disk.
		queued, _ := filepath.Glob(filepath.Join(s.Dir, "spool", "bob", "*.data"))
		if len(queued) != 1 {
			t.Fatalf("queued files %v", queued)
		}
		data, err := os.ReadFile(queued[0])
		if err != nil {
			t.Fatal(err)
		}
		data[len(data)/2] ^= 0xff
		os.WriteFile(queued[0], data, 0o600)

		dir := t.TempDir()
		out, errOut, code := runOnce(t, bin, "", bob, args("download", "--dir", dir)...)
		if code != 1 || !strings.Contains(out, "! big.bin from alice: checksum mismatch, kept on the server\n") ||
			!strings.Contains(errOut, "error: 1 file failed the checksum; kept on the server") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		checkSaved(t, dir, nil)
		s.waitOnline(t)
		if q, _ := filepath.Glob(filepath.Join(s.Dir, "spool", "bob", "*.data")); len(q) != 1 {
			t.Errorf("the damaged file left the queue: %v", q)
		}
	})
}
