package relay

import (
	"time"

	"sslmessager/internal/wire"
)

// EndUser ends every session of the user name (any case) with
// END * <reason> and returns how many it ended. reason must be a valid
// reason (wire.Quote any client-supplied part); an invalid one is logged
// and replaced by a generic one. The sessions' queued lines go out first.
func (s *Server) EndUser(name, reason string) int {
	return s.endUserExcept(name, reason, nil)
}

// SessionInfo describes one logged-in session.
type SessionInfo struct {
	User     string    // as registered
	Remote   string    // host:port of the client
	Group    bool      // in group mode
	Extended bool      // negotiated ALPN sslm/2 or sslm/3 (our client)
	Protocol string    // the ALPN negotiated: wire.ALPNKeys, wire.ALPN, or "" (an original client)
	Since    time.Time // when the connection was accepted
}

// Sessions lists every logged-in session, in no particular order.
func (s *Server) Sessions() []SessionInfo {
	members := make(map[*session]bool)
	for _, m := range s.hub.groupMembers() {
		members[m] = true
	}
	all := s.hub.sessions()
	out := make([]SessionInfo, 0, len(all))
	for _, sess := range all {
		out = append(out, SessionInfo{User: sess.user, Remote: sess.remote, Group: members[sess], Extended: sess.ext, Protocol: sess.protocol(), Since: sess.since})
	}
	return out
}

// DropUserData removes what the server holds for the user name after its
// account was deleted: the files queued for it, the direct messages stored
// for it while offline, its key bundle (logged in keys.log, and told to
// its watchers) and a mute, and it aborts the uploads to it under way
// (their senders are told of a problem), so that whoever signs up with
// the name next inherits nothing (a ban on the name stays: it is the operator's).
// It returns how many files it removed.
func (s *Server) DropUserData(name string) (files int, err error) {
	s.Unmute(name)
	s.streams.abortTo(wire.FoldName(name)) // uploads under way to it (stream.go)
	if sp := s.cfg.Spool; sp != nil {
		files, err = sp.RemoveAll(name)
	}
	if off := s.cfg.Offline; off != nil {
		if oerr := off.RemoveAll(name); err == nil {
			err = oerr
		}
	}
	if kerr := s.keys.dropKey(name); err == nil {
		err = kerr
	}
	return files, err
}

// protocol is the ALPN the session negotiated, "" for an original client.
func (c *session) protocol() string {
	switch {
	case c.keys:
		return wire.ALPNKeys
	case c.ext:
		return wire.ALPN
	}
	return ""
}
