package accounts

import (
	"fmt"
	"os"
	"slices"

	"sslmessager/internal/wire"
)

// Reload reads the account file again, for edits made by hand while the
// server runs, and makes its rows the accounts in force. It returns the
// names (as registered, sorted) of the accounts that appeared, that went
// away, and whose password hash, role or spelling changed.
//
// The file must be whole and valid, as for Open, and must end in a
// newline: an unterminated last line, which Open would take for a torn
// append and drop, is here an error, since the hand edit that left it is
// more likely unfinished. On any error nothing changes: the accounts in
// memory stay as they were and the file is left alone.
//
// The file is reopened for appending, so an editor that replaced it (a
// new file renamed over the old one) does not leave sign-ups going to the
// old file. Appends wait while Reload runs. A sign-up under way while the
// file gains the same name by hand wins in memory; the file then holds the
// name twice and the next Open says so.
func (s *Store) Reload() (added, removed, changed []string, err error) {
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	if s.f == nil {
		return nil, nil, nil, errClosed()
	}
	data, err := os.ReadFile(s.path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("accounts: %w", err)
	}
	users, torn, err := parseFile(s.path, data)
	if err != nil {
		return nil, nil, nil, err
	}
	if torn != nil {
		return nil, nil, nil, fmt.Errorf("accounts: %s:%d: unterminated last line (end the file with a newline)", s.path, torn.line)
	}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("accounts: %w", err)
	}
	next := make(map[string]User, len(users))
	for _, u := range users {
		next[wire.FoldName(u.Name)] = u
	}

	s.mu.Lock()
	for k, old := range s.users {
		u, ok := next[k]
		switch {
		case !ok:
			removed = append(removed, old.Name)
		case !sameUser(u, old):
			changed = append(changed, u.Name)
		}
	}
	for k, u := range next {
		if _, ok := s.users[k]; !ok {
			added = append(added, u.Name)
		}
	}
	s.users = next
	s.mu.Unlock()

	s.f.Close()
	s.f = f
	s.broken = nil
	slices.Sort(added)
	slices.Sort(removed)
	slices.Sort(changed)
	return added, removed, changed, nil
}

// sameUser reports whether a and b are the same row.
func sameUser(a, b User) bool {
	return a.Name == b.Name && a.Hash == b.Hash && a.Role == b.Role && a.Created.Equal(b.Created)
}
