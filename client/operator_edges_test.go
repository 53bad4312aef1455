package main

import (
	"strings"
	"testing"

	"sslmessager/internal/offline"
	"sslmessager/internal/relay/relaytest"
)

// TestShortChatShowsAnOfflineMessageOnce: carol's chat is scripted
// (stdin from a pipe, as in the README's example) and ends at once. It
// shows alice's stored message; the next log-in with the same
// --config-dir must not show it again (the server may send it again only
// if the ACKM was lost, and then the client's own mark hides it).
func TestShortChatShowsAnOfflineMessageOnce(t *testing.T) {
	bin := buildClient(t)
	s := &testServer{relaytest.Start(t, relaytest.Options{Offline: &offline.Options{}})}
	config := t.TempDir()
	env := func(user string) []string {
		return []string{"SSLM_PASSWORD=pw-of-" + user, "SSLM_CONFIG_DIR=" + config}
	}
	common := []string{"--server", s.Addr, "--ca", s.CAFile}
	for _, u := range []string{"alice", "carol"} {
		if _, errOut, code := runOnce(t, bin, "", env(u), append(common, "--user", u, "--signup", "--to", "nobody")...); code != 0 {
			t.Fatalf("sign-up of %s: exit %d, %s", u, code, errOut)
		}
	}
	if out, errOut, code := runOnce(t, bin, "", env("alice"), append(common, "--user", "alice", "send", "--to", "carol", "see", "you", "at", "3")...); code != 0 {
		t.Fatalf("send: exit %d, %q %q", code, out, errOut)
	}
	shown := 0
	for i := range 3 {
		out, errOut, code := runOnce(t, bin, ":quit:\n", env("carol"), append(common, "--user", "carol", "--to", "alice", "--no-timestamps")...)
		if code != 0 {
			t.Fatalf("carol's log-in %d: exit %d, %q", i+1, code, errOut)
		}
		shown += strings.Count(out, "alice: see you at 3")
	}
	n, _ := s.Offline.Pending("carol")
	if shown != 1 || n != 0 {
		t.Fatalf("the stored message was shown %d times in 3 short log-ins (want once); %d still stored on the server (want 0)", shown, n)
	}
}
