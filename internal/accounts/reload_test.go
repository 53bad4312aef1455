package accounts

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// writeByHand replaces path the way an editor does: a new file renamed
// over the old one.
func writeByHand(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".edit"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func bcryptHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// TestReloadHandEdit edits users.csv by hand (one account removed, one
// added, one with a new password and role) and checks that Reload reports
// exactly that, that the store answers from the new rows, and that a
// sign-up afterwards lands in the new file, not the replaced one.
func TestReloadHandEdit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.csv")
	s := openTest(t, path)
	for _, n := range []string{"alice", "bob", "carol"} {
		if _, err := s.Create(n, "password-"+n); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		switch {
		case strings.HasPrefix(l, "bob,"):
			continue // removed
		case strings.HasPrefix(l, "carol,"):
			f := strings.Split(l, ",")
			f[1], f[3] = bcryptHash(t, "carol-new-pw"), RoleAdmin
			l = strings.Join(f, ",")
		}
		lines = append(lines, l)
	}
	lines = append(lines, "Dave,"+bcryptHash(t, "password-dave")+",2024-05-01T10:00:00Z,user")
	writeByHand(t, path, strings.Join(lines, "\n")+"\n")

	added, removed, changed, err := s.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(added, []string{"Dave"}) || !slices.Equal(removed, []string{"bob"}) || !slices.Equal(changed, []string{"carol"}) {
		t.Fatalf("added %v removed %v changed %v; want [Dave] [bob] [carol]", added, removed, changed)
	}
	if _, err := s.Authenticate("bob", "password-bob"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("removed bob still logs in: %v", err)
	}
	if _, err := s.Authenticate("dave", "password-dave"); err != nil {
		t.Errorf("added dave: %v", err)
	}
	if u, err := s.Authenticate("carol", "carol-new-pw"); err != nil || !u.IsAdmin() {
		t.Errorf("carol with her new password: %+v %v", u, err)
	}
	// The name bob is free again, and the sign-up goes to the new file.
	if _, err := s.Create("bob", "password-bob2"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := openTest(t, path)
	for _, n := range []string{"alice", "bob", "carol", "dave"} {
		if _, ok := s2.Lookup(n); !ok {
			t.Errorf("%s missing after reopening", n)
		}
	}
	// Nothing changed on disk: a second Reload reports nothing.
	if a, r, c, err := s2.Reload(); err != nil || len(a)+len(r)+len(c) != 0 {
		t.Errorf("second reload: %v %v %v %v", a, r, c, err)
	}
}

// TestReloadInvalidFileChangesNothing checks that a broken file, of every
// kind Open refuses plus an unterminated last line, is an error naming the
// file and line, and that the accounts in force stay as they were.
func TestReloadInvalidFileChangesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.csv")
	s := openTest(t, path)
	if _, err := s.Create("alice", "password-alice"); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	row := "zed," + bcryptHash(t, "password-zed") + ",2024-05-01T10:00:00Z,user"
	for _, c := range []struct{ name, content, want string }{
		{"bad row", string(good) + "zed,not-a-hash,2024-05-01T10:00:00Z,user\n", ":3: user \"zed\": malformed password hash"},
		{"bad header", "name,hash\n", ":1: bad header"},
		{"duplicate", string(good) + strings.Replace(row, "zed", "ALICE", 1) + "\n", ":3: duplicate user name"},
		{"unknown role", string(good) + strings.Replace(row, ",user", ",root", 1) + "\n", `unknown role "root"`},
		{"unterminated", string(good) + row, ":3: unterminated last line"},
	} {
		writeByHand(t, path, c.content)
		_, _, _, err := s.Reload()
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error naming %s and %q", c.name, err, path, c.want)
		}
		if _, err := s.Authenticate("alice", "password-alice"); err != nil {
			t.Errorf("%s: alice no longer logs in: %v", c.name, err)
		}
		if _, ok := s.Lookup("zed"); ok {
			t.Errorf("%s: zed was loaded", c.name)
		}
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.Reload(); err == nil || s.Len() != 1 {
		t.Errorf("missing file: err %v, %d accounts", err, s.Len())
	}
}
