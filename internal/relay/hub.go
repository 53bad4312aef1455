package relay

import (
	"slices"
	"sync"
	"sync/atomic"

	"sslmessager/internal/wire"
)

// hub knows who is online and who is in group mode. It never does I/O and
// never calls into a session while holding its lock.
type hub struct {
	mu    sync.RWMutex
	users map[string]*session // guarded by mu; wire.FoldName(name) -> session

	groupMu sync.Mutex                 // serializes changes to group
	group   atomic.Pointer[[]*session] // members in group mode; copy on write
}

func newHub() *hub {
	h := &hub{users: make(map[string]*session)}
	h.group.Store(&[]*session{})
	return h
}

// add registers s as its user's one live session and calls admitted under
// the lock, before anyone can find s; false if the user is already online.
func (h *hub) add(s *session, admitted func()) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.users[s.key]; ok {
		return false
	}
	admitted()
	h.users[s.key] = s
	return true
}

// remove takes s off the hub, if it is still the user's session.
func (h *hub) remove(s *session) {
	h.mu.Lock()
	if h.users[s.key] == s {
		delete(h.users, s.key)
	}
	h.mu.Unlock()
	h.setGroup(s, false)
}

// lookup finds the session of a user, by any case of the name.
func (h *hub) lookup(name string) *session {
	h.mu.RLock()
	s := h.users[wire.FoldName(name)]
	h.mu.RUnlock()
	return s
}

// sessions returns every logged-in session.
func (h *hub) sessions() []*session {
	h.mu.RLock()
	defer h.mu.RUnlock()
	all := make([]*session, 0, len(h.users))
	for _, s := range h.users {
		all = append(all, s)
	}
	return all
}

// names returns up to max online user names in byte order.
func (h *hub) names(max int) []string {
	h.mu.RLock()
	names := make([]string, 0, len(h.users))
	for _, s := range h.users {
		names = append(names, s.user)
	}
	h.mu.RUnlock()
	slices.Sort(names)
	if len(names) > max {
		names = names[:max]
	}
	return names
}

// toggleGroup flips s's group mode and returns the new state.
func (h *hub) toggleGroup(s *session) bool {
	on := !slices.Contains(*h.group.Load(), s)
	h.setGroup(s, on)
	return on
}

func (h *hub) setGroup(s *session, on bool) {
	h.groupMu.Lock()
	defer h.groupMu.Unlock()
	old := *h.group.Load()
	i := slices.Index(old, s)
	switch {
	case on && i < 0:
		next := append(slices.Clip(old), s)
		h.group.Store(&next)
	case !on && i >= 0:
		next := slices.Delete(slices.Clone(old), i, i+1)
		h.group.Store(&next)
	}
}

// groupMembers is a snapshot of the sessions in group mode; do not modify it.
func (h *hub) groupMembers() []*session { return *h.group.Load() }
