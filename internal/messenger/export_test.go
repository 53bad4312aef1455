package messenger

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

func TestExportWritesTheConversationAndNeverOverwrites(t *testing.T) {
	s := startFake(t)
	c, fc := loggedIn(t, s, "alice")
	r := startRun(t, c, Options{Target: "bob", Color: true, ConfigDir: t.TempDir()})
	fc.expectCarbons()

	fc.send(wire.Relay{Target: "alice", Sender: "bob", Text: "hi \x1b[31malice\nsecond line"})
	waitOutput(t, r.out, "second line\n")
	r.typeLine(t, "hello bob")
	if q := fc.next(); q != (wire.Msg{Target: "bob", Sender: "alice", Text: "hello bob", Token: testToken}) {
		t.Fatalf("got %#v", q)
	}
	fc.send(wire.NotOnline{Reason: wire.ReasonNotOnline})
	waitOutput(t, r.out, "! bob is not online\n")
	fc.send(wire.RelayGroup{Sender: "carol", Text: "group hi"})
	fc.send(wire.Carbon{Target: "carol", Sender: "alice", Text: "from my phone"})
	waitOutput(t, r.out, "from my phone\n")
	r.typeLine(t, ":toggle:")
	if q := fc.next(); q != (wire.Group{Token: testToken}) {
		t.Fatalf("got %#v", q)
	}
	r.typeLine(t, "to all")
	if q := fc.next(); q != (wire.GroupMsg{Sender: "alice", Text: "to all", Token: testToken}) {
		t.Fatalf("got %#v", q)
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "my chat.txt")
	r.typeLine(t, `:export: "`+path+`"`)
	waitOutput(t, r.out, "exported 6 messages to ")
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	at := fixedClock().Format("2006-01-02 15:04:05")
	want := "# SSL-Messager conversation of alice on " + s.addr + ", exported " + fixedClock().Format("2006-01-02 15:04:05 -0700") + "\n" +
		at + ` bob: hi \x1b[31malice` + "\n" +
		strings.Repeat(" ", len(at+" bob: ")) + "second line\n" +
		at + " you → bob: hello bob\n" +
		at + " ! bob is not online\n" +
		at + " [group] carol: group hi\n" +
		at + " you → carol (other session): from my phone\n" +
		at + " you → [group]: to all\n"
	if string(got) != want {
		t.Fatalf("export:\n%s\nwant:\n%s", got, want)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("export file: %v, mode %v, want 0600", err, fi.Mode().Perm())
	}

	// An existing file is never overwritten.
	fc.send(wire.Relay{Target: "alice", Sender: "bob", Text: "later"})
	waitOutput(t, r.out, "bob: later\n")
	r.typeLine(t, ":export: "+path)
	waitOutput(t, r.out, "! not exported: ")
	waitOutput(t, r.out, "exists; export never overwrites a file, choose another name\n")
	if again, _ := os.ReadFile(path); string(again) != want {
		t.Fatalf("the export was changed:\n%s", again)
	}
	r.typeLine(t, ":export:")
	waitOutput(t, r.out, "usage: :export: FILE")
}

func TestHistoryIsBounded(t *testing.T) {
	var h history
	for i := range MaxHistoryMessages + 5 {
		h.add(historyEntry{at: fixedClock(), label: "bob", text: fmt.Sprint(i)})
	}
	entries, dropped := h.snapshot()
	if len(entries) != MaxHistoryMessages || dropped != 5 || entries[0].text != "5" {
		t.Fatalf("%d entries from %q, %d dropped; want %d from \"5\", 5 dropped", len(entries), entries[0].text, dropped, MaxHistoryMessages)
	}
	big := strings.Repeat("x", wire.MaxTextRunes)
	for range MaxHistoryBytes/wire.MaxTextRunes + 10 {
		h.add(historyEntry{at: fixedClock(), label: "bob", text: big})
	}
	h.mu.Lock()
	n, bytes := len(h.entries), h.bytes
	h.mu.Unlock()
	if bytes > MaxHistoryBytes || n >= MaxHistoryBytes/wire.MaxTextRunes {
		t.Fatalf("history holds %d entries, %d bytes; the cap is %d bytes", n, bytes, MaxHistoryBytes)
	}
}

func TestHelpListsEveryCommand(t *testing.T) {
	out := &relaytest.SyncBuffer{}
	s := &session{out: &printer{w: out}, downloads: "downloads", opts: Options{Now: time.Now}}
	cmdHelp(s, "")
	for _, c := range commands {
		if !strings.Contains(out.String(), "\n  :"+c.name+":") {
			t.Errorf(":help: lacks :%s:", c.name)
		}
	}
	for _, name := range []string{"ping", "mute", "unmute", "export", "passwd", "delete_account"} {
		if lookupCommand(name) == nil {
			t.Errorf("no command :%s:", name)
		}
	}
	if strings.Contains(out.String(), "admin") {
		t.Errorf(":help: shows an admin section to a user who is no admin:\n%s", out)
	}
	out = &relaytest.SyncBuffer{}
	s = &session{out: &printer{w: out}, downloads: "downloads"}
	s.admin.isAdmin.Store(true)
	cmdHelp(s, "")
	if !strings.Contains(out.String(), "admin commands (your account has the admin role):\n  :admin: COMMAND") {
		t.Errorf(":help: lacks the admin section:\n%s", out)
	}
}
