package relay

import (
	"slices"
	"sync"
	"sync/atomic"

	"sslmessager/internal/wire"
)

// hub knows who is online, with which sessions, and who is in group mode.
// It never does I/O and never calls into a session while holding its lock.
//
// A user may have several sessions (up to Config.MaxSessionsPerUser), kept
// oldest first. Each user's slice is copy-on-write: once stored it is never
// changed, so lookup can hand it out and callers iterate it without the
// lock.
type hub struct {
	mu    sync.RWMutex
	users map[string][]*session // guarded by mu; wire.FoldName(name) -> sessions, oldest first
	count int                   // guarded by mu; sessions on the hub

	groupMu sync.Mutex                 // serializes changes to group
	group   atomic.Pointer[[]*session] // sessions in group mode; copy on write
}

func newHub() *hub {
	h := &hub{users: make(map[string][]*session)}
	h.group.Store(&[]*session{})
	return h
}

// add puts s on the hub as one of its user's sessions and calls admitted
// under the lock, before anyone can find s. When the user already has max
// sessions (max > 0), the oldest are taken off the hub and returned, so
// that the user has max with s: the caller ends them. A frozen or vanished
// client can so never lock its owner out.
func (h *hub) add(s *session, max int, admitted func()) (evicted []*session) {
	h.mu.Lock()
	old := h.users[s.key]
	if max > 0 && len(old) >= max {
		n := len(old) - max + 1
		evicted, old = old[:n:n], old[n:]
		h.count -= n
	}
	next := make([]*session, 0, len(old)+1)
	next = append(append(next, old...), s)
	admitted()
	h.users[s.key] = next
	h.count++
	h.mu.Unlock()
	for _, e := range evicted {
		h.setGroup(e, false)
	}
	return evicted
}

// remove takes s off the hub and out of the group; harmless if it is not
// there. It reports whether s was on the hub.
func (h *hub) remove(s *session) bool {
	h.mu.Lock()
	old := h.users[s.key]
	i := slices.Index(old, s)
	if i >= 0 {
		if len(old) == 1 {
			delete(h.users, s.key)
		} else {
			h.users[s.key] = slices.Delete(slices.Clone(old), i, i+1)
		}
		h.count--
	}
	h.mu.Unlock()
	h.setGroup(s, false)
	return i >= 0
}

// lookup returns the sessions of a user, by any case of the name, oldest
// first; nil if the user is offline. Do not modify the slice.
func (h *hub) lookup(name string) []*session { return h.lookupKey(wire.FoldName(name)) }

// lookupKey is lookup by the folded name (session.key).
func (h *hub) lookupKey(key string) []*session {
	h.mu.RLock()
	ss := h.users[key]
	h.mu.RUnlock()
	return ss
}

// userCount is the number of users online, each once.
func (h *hub) userCount() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.users)
}

// sessions returns every logged-in session.
func (h *hub) sessions() []*session {
	h.mu.RLock()
	defer h.mu.RUnlock()
	all := make([]*session, 0, h.count)
	for _, ss := range h.users {
		all = append(all, ss...)
	}
	return all
}

// sessionCount is the number of logged-in sessions.
func (h *hub) sessionCount() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.count
}

// names returns up to max online user names in byte order, each user once
// however many sessions it has.
func (h *hub) names(max int) []string {
	h.mu.RLock()
	names := make([]string, 0, len(h.users))
	for _, ss := range h.users {
		names = append(names, ss[0].user)
	}
	h.mu.RUnlock()
	slices.Sort(names)
	if len(names) > max {
		names = names[:max]
	}
	return names
}

// toggleGroup flips s's group mode and returns the new state. Group mode
// belongs to the session, not the user.
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
