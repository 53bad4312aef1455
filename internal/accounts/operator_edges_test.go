package accounts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSignUpBetweenHandEditAndReloadIsKept: the operator saves a
// hand-edited users.csv the way the README calls safest (a new file
// renamed over the old one) and then sends SIGHUP. A sign-up that the
// server acknowledged between the save and the SIGHUP must survive the
// reload: it was fsynced and the client heard ACCEPT.
func TestSignUpBetweenHandEditAndReloadIsKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.csv")
	s := openTest(t, path)
	for _, n := range []string{"alice", "bob"} {
		if _, err := s.Create(n, "password-"+n); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, l := range strings.SplitAfter(string(data), "\n") {
		if !strings.HasPrefix(l, "bob,") {
			kept = append(kept, l)
		}
	}
	writeByHand(t, path, strings.Join(kept, "")) // bob removed by hand

	// dave signs up before the operator sends SIGHUP: acknowledged.
	if _, err := s.Create("dave", "password-dave"); err != nil {
		t.Fatal(err)
	}
	if _, removed, _, err := s.Reload(); err != nil {
		t.Fatal(err)
	} else if len(removed) != 1 || removed[0] != "bob" {
		t.Errorf("Reload removed %q, want only bob", removed)
	}
	if _, ok := s.Lookup("dave"); !ok {
		t.Errorf("dave's acknowledged sign-up is gone after the reload")
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(after), "\ndave,") {
		t.Errorf("users.csv lost dave's acknowledged sign-up:\n%s", after)
	}
}
