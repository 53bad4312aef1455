package accounts

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/crypto/bcrypt"

	"sslmessager/internal/wire"
)

// Roles an account can have, as stored in users.csv.
const (
	RoleUser  = roleUser
	RoleAdmin = roleAdmin
)

// ErrNoSuchUser means no account has that name (in any case).
var ErrNoSuchUser = errors.New("accounts: no such user")

// ErrInvalidRole means a role other than RoleUser or RoleAdmin.
var ErrInvalidRole = errors.New("accounts: the role must be user or admin")

// IsAdmin reports whether the account has the admin role.
func (u User) IsAdmin() bool { return u.Role == roleAdmin }

// SetPassword replaces the password of the account name (any case) after
// checking it against the password rules (ErrInvalidPassword). ErrNoSuchUser
// if there is no such account. The file is rewritten atomically (see
// modify); when SetPassword returns nil the new password is durable and the
// old one no longer logs in.
func (s *Store) SetPassword(name, password string) error {
	if err := wire.CheckPassword(password); err != nil {
		return err
	}
	s.sem <- struct{}{}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cost)
	<-s.sem
	if err != nil {
		return fmt.Errorf("accounts: hash password: %w", err)
	}
	_, err = s.modify(name, func(u *User) bool { u.Hash = string(hash); return false })
	return err
}

// SetRole sets the role of the account name to RoleUser or RoleAdmin
// (ErrInvalidRole otherwise, ErrNoSuchUser if there is no such account).
func (s *Store) SetRole(name, role string) error {
	if role != roleUser && role != roleAdmin {
		return ErrInvalidRole
	}
	_, err := s.modify(name, func(u *User) bool { u.Role = role; return false })
	return err
}

// Delete removes the account name (any case) and returns it as it was;
// ErrNoSuchUser if there is none. Once Delete returns nil the removal is
// durable and the name is free for a new sign-up.
func (s *Store) Delete(name string) (User, error) {
	return s.modify(name, func(*User) bool { return true })
}

// modify applies change to the account name in users.csv and in memory:
// change edits the row, or returns true to remove it. The file is read,
// changed and rewritten as a whole (the previous file kept as .bak, both
// writes atomic and fsynced, see rewrite) while appends wait, so a sign-up
// that raced with it is neither lost nor duplicated; the file is then
// reopened for appending. It returns the row as it was before the change.
//
// Lock order: s.fileMu, then s.mu, which is never held during I/O.
func (s *Store) modify(name string, change func(*User) (remove bool)) (User, error) {
	key := wire.FoldName(name)
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	if s.f == nil {
		return User{}, errClosed()
	}
	if s.broken != nil {
		return User{}, fmt.Errorf("accounts: %s unusable until reopened: %w", s.path, s.broken)
	}
	data, err := os.ReadFile(s.path)
	if err != nil {
		return User{}, fmt.Errorf("accounts: %w", err)
	}
	users, _, err := parseFile(s.path, data)
	if err != nil {
		return User{}, err
	}
	var before, after User
	found, removed := false, false
	for i := range users {
		if wire.FoldName(users[i].Name) != key {
			continue
		}
		found, before = true, users[i]
		if change(&users[i]) {
			users = append(users[:i], users[i+1:]...)
			removed = true
		} else {
			after = users[i]
		}
		break
	}
	if !found {
		return User{}, ErrNoSuchUser
	}
	if err := rewrite(s.path, data, users); err != nil {
		return User{}, fmt.Errorf("accounts: rewrite: %w", err)
	}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		// The change is on disk; appends cannot go on until a reopen.
		s.broken = err
		s.log.Error("accounts: cannot reopen the account file for appending", "file", s.path, "err", err)
	} else {
		s.f.Close()
		s.f = f
	}
	s.mu.Lock()
	if removed {
		delete(s.users, key)
	} else {
		s.users[key] = after
	}
	s.mu.Unlock()
	return before, nil
}
