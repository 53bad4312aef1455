package accounts

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func openTest(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{Cost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSetPasswordDeleteAndRole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.csv")
	s := openTest(t, path)
	for _, n := range []string{"alice", "Bob", "carol"} {
		if _, err := s.Create(n, "password-"+n); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetPassword("ALICE", "new-password"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate("alice", "password-alice"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("old password: %v", err)
	}
	if _, err := s.Authenticate("alice", "new-password"); err != nil {
		t.Fatalf("new password: %v", err)
	}
	if err := s.SetPassword("alice", "short"); !errors.Is(err, ErrInvalidPassword) {
		t.Fatalf("short password: %v", err)
	}
	if err := s.SetPassword("nobody", "new-password"); !errors.Is(err, ErrNoSuchUser) {
		t.Fatalf("unknown user: %v", err)
	}
	if err := s.SetRole("bob", RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRole("bob", "root"); !errors.Is(err, ErrInvalidRole) {
		t.Fatalf("bad role: %v", err)
	}
	if u, err := s.Delete("carol"); err != nil || u.Name != "carol" {
		t.Fatalf("Delete = %v, %v", u, err)
	}
	if _, ok := s.Lookup("carol"); ok {
		t.Fatal("carol still there")
	}
	// Appends still work after the rewrites, and the name is free.
	if _, err := s.Create("Carol", "password-again"); err != nil {
		t.Fatalf("sign-up with the freed name: %v", err)
	}
	if _, err := os.Stat(path + BackupSuffix); err != nil {
		t.Fatalf("no backup: %v", err)
	}
	s.Close()

	s = openTest(t, path)
	if _, err := s.Authenticate("alice", "new-password"); err != nil {
		t.Fatalf("after reopen, new password: %v", err)
	}
	if u, _ := s.Lookup("bob"); !u.IsAdmin() || u.Name != "Bob" {
		t.Fatalf("after reopen, bob is %+v", u)
	}
	if u, ok := s.Lookup("carol"); !ok || u.Name != "Carol" {
		t.Fatalf("after reopen, carol is %+v", u)
	}
	if s.Len() != 3 {
		t.Fatalf("%d accounts", s.Len())
	}
}

// Sign-ups racing with rewrites are neither lost nor duplicated.
func TestModifyRacingCreates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.csv")
	s := openTest(t, path)
	if _, err := s.Create("base", "password-base"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := s.Create(fmt.Sprintf("u%d", i), "password-x"); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			role := RoleUser
			if i%2 == 0 {
				role = RoleAdmin
			}
			if err := s.SetRole("base", role); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	s.Close()
	s = openTest(t, path)
	if s.Len() != 31 {
		t.Fatalf("%d accounts after reopen, want 31", s.Len())
	}
}
