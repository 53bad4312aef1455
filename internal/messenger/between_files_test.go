package messenger

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"testing"

	"sslmessager/internal/wire"
)

// With CMD <get ack> the server sends every line queued for the session
// between two files, not only messages. The chat lets the user type
// :online: while a download runs; the answer arrives between two files and
// is shown there, and the download goes on.
func TestOnlineAnswerBetweenFiles(t *testing.T) {
	sum := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
	one, two := []byte("first file"), []byte("second file")
	s := startFake(t)
	c, fc := loggedIn(t, s, "bob")
	dl := t.TempDir()
	r := startRun(t, c, Options{Target: "alice", NoTimestamps: true, Downloads: dl})
	fc.expectCarbons()
	r.typeLine(t, ":download:")
	if q := fc.next(); q != (wire.Get{Ack: true, Token: testToken}) {
		t.Fatalf("got %#v", q)
	}
	fc.send(wire.Begin{Count: 2})
	fc.send(wire.FileHeader{Name: "one.txt", Size: int64(len(one)), Sender: "alice", SHA256: sum(one), ID: "0000000000000001aaaaaaaa"})
	// The user asks who is online while the first file streams.
	r.typeLine(t, ":online:")
	if q := fc.next(); q != (wire.Online{Token: testToken}) {
		t.Fatalf("got %#v", q)
	}
	fc.tc.Write(one)
	fc.send(wire.FileEnd{})
	// The real server sends the answer once the file is done, before the next.
	fc.send(wire.OnlineList{Users: []string{"alice", "bob"}})
	fc.send(wire.FileHeader{Name: "two.txt", Size: int64(len(two)), Sender: "alice", SHA256: sum(two), ID: "0000000000000002aaaaaaaa"})
	fc.tc.Write(two)
	fc.send(wire.FileEnd{})
	fc.send(wire.Notice{Text: wire.NoticeSendComplete})
	waitOutput(t, r.out, "saved one.txt from alice (10 B, sha256 ok) -> "+filepath.Join(dl, "one.txt")+"\n"+
		"online: alice bob\n"+
		"saved two.txt from alice (11 B, sha256 ok) -> "+filepath.Join(dl, "two.txt")+"\n"+
		"downloaded 2 files\n")
}
