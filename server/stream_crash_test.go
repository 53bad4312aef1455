package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sslmessager/internal/messenger"
	"sslmessager/internal/pki"
	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

// dirState lists dir: the named files with their contents, and how many
// temporary files of a download (".sslm-*.part") it holds.
func dirState(t *testing.T, dir string) (named map[string][]byte, parts int) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	named = map[string][]byte{}
	for _, e := range entries {
		switch {
		case strings.HasPrefix(e.Name(), ".sslm-") && strings.HasSuffix(e.Name(), ".part"):
			parts++
		case strings.HasPrefix(e.Name(), ".sslm-"): // the client's record of received files
		default:
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			named[e.Name()] = b
		}
	}
	return named, parts
}

// TestStreamSurvivesKill SIGKILLs the server binary while it streams a
// file to bob's chat session (our client, which asked for pushes) and
// restarts it on the same spool. Files whose upload was acknowledged
// (one queued before bob came online, one streamed to him whole) are all
// at bob's afterwards, byte-exact, once he downloads; the file cut off by
// the kill is neither queued nor named at bob's, and his partial
// temporary file is removed by that download.
func TestStreamSurvivesKill(t *testing.T) {
	st := newState(t)
	srv := st.start(t)
	alice := dial(t, st, srv.addr)
	alice.login(wire.SignUp{User: "alice", Pass: "alice-password"})
	dial(t, st, srv.addr).login(wire.SignUp{User: "bob", Pass: "bob-password"})
	queued, streamed, cut := make([]byte, 3<<20+1), make([]byte, 5<<20+7), make([]byte, 16<<20)
	for _, b := range [][]byte{queued, streamed, cut} {
		rand.Read(b)
	}
	alice.upload("bob", "queued.bin", queued)

	ca := filepath.Join(st.certs, pki.CAFile)
	dir := t.TempDir()
	c, err := messenger.Dial(t.Context(), srv.addr, ca)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("bob", "bob-password", false); err != nil {
		t.Fatal(err)
	}
	in, inw := io.Pipe()
	defer inw.Close()
	out := &relaytest.SyncBuffer{}
	ran := make(chan error, 1)
	go func() {
		ran <- c.Run(context.Background(), in, out, messenger.Options{Target: "alice", Downloads: dir, NoTimestamps: true})
	}()
	io.WriteString(inw, ":ping:\n") // answered after the PUSH the session sends first
	relaytest.CheckFor(t, waitLimit, func() error {
		if !strings.Contains(out.String(), "pong from server") {
			return fmt.Errorf("no pong yet:\n%s", out)
		}
		return nil
	})

	alice.upload("bob", "streamed.bin", streamed) // acknowledged
	alice.send(wire.Upload{Name: "cut.bin", Target: "bob", Size: int64(len(cut)), Token: alice.token})
	if q := alice.next(); q != (wire.Proceed{}) {
		t.Fatalf("BEGINF answered with %#v", q)
	}
	half := len(cut) / 2
	if _, err := alice.conn.Write(cut[:half]); err != nil {
		t.Fatal(err)
	}
	// Bob holds part of cut.bin: the stream is under way.
	relaytest.CheckFor(t, waitLimit, func() error {
		named, parts := dirState(t, dir)
		if _, ok := named["streamed.bin"]; !ok || parts != 1 {
			return fmt.Errorf("named %d files, %d partial; output:\n%s", len(named), parts, out)
		}
		return nil
	})
	srv.kill(t)
	select {
	case err := <-ran:
		if err == nil {
			t.Fatal("bob's session ended without an error when the server died")
		}
	case <-time.After(waitLimit):
		t.Fatal("bob's session did not notice the server's death")
	}
	named, _ := dirState(t, dir)
	if _, ok := named["cut.bin"]; ok {
		t.Fatal("bob named the file cut off by the kill")
	}

	srv = st.start(t)
	c, err = messenger.Dial(t.Context(), srv.addr, ca)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("bob", "bob-password", false); err != nil {
		t.Fatal(err)
	}
	dl := &relaytest.SyncBuffer{}
	if err := messenger.Download(t.Context(), c, dir, messenger.TransferOptions{Out: dl}); err != nil {
		t.Fatalf("download after the restart: %v\n%s", err, dl)
	}
	named, parts := dirState(t, dir)
	if parts != 0 || len(named) != 2 || !bytes.Equal(named["queued.bin"], queued) || !bytes.Equal(named["streamed.bin"], streamed) {
		t.Fatalf("after the restart bob has %d partial files and %d named (queued ok %v, streamed ok %v):\n%s",
			parts, len(named), bytes.Equal(named["queued.bin"], queued), bytes.Equal(named["streamed.bin"], streamed), dl)
	}
	// Nothing is left queued: cut.bin never was.
	again := dial(t, st, srv.addr)
	again.login(wire.Auth{User: "bob", Pass: "bob-password"})
	if files := again.download(); len(files) != 0 {
		t.Fatalf("%d files still queued, the first %s", len(files), files[0].hdr.Name)
	}
}
