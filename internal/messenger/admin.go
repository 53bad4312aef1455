package messenger

import (
	"strings"
	"sync/atomic"

	"sslmessager/internal/wire"
)

// Admin commands from the chat (sslm/2 only): ":admin: kick bob spamming"
// sends ADMIN with the command line; the server answers with ADMINR data
// lines and then OK or NO, which the receiver prints. Whether the account
// has the admin role comes from the server's ROLE line (after ACCEPT, and
// whenever an admin changes the role); :help: shows the admin section only
// then.

// adminState is the session's view of its admin role and requests.
type adminState struct {
	isAdmin atomic.Bool  // the server said ROLE admin
	pending atomic.Int32 // ADMIN queries sent whose OK or NO has not come
}

// adminCommand is :admin:. It stays out of the command table so that the
// general :help: listing does not show it; lookupCommand finds it.
var adminCommand = command{
	name: "admin", arg: "COMMAND [ARGS]", takesArg: true,
	help: "run a server admin command (:admin: help lists them)", run: cmdAdmin,
}

// :admin: COMMAND [ARGS]
func cmdAdmin(s *session, arg string) (bool, error) {
	if !s.c.ext {
		s.out.line("! this server has no admin commands for clients")
		return false, nil
	}
	if arg == "" {
		s.out.line("! usage: :admin: COMMAND [ARGS], for example :admin: online (:admin: help lists them)")
		return false, nil
	}
	if err := checkText(arg); err != nil {
		s.out.line("! " + err.Error())
		return false, nil
	}
	s.admin.pending.Add(1)
	if err := s.c.send(wire.Admin{Command: arg, Token: s.c.token}); err != nil {
		s.admin.pending.Add(-1)
		return false, err
	}
	return false, nil
}

// adminLine prints a line that belongs to the admin commands (ROLE,
// ADMINR, and OK or NO while an ADMIN waits for its answer) and reports
// whether q was one.
func (s *session) adminLine(q wire.Query) bool {
	switch q := q.(type) {
	case wire.Role:
		now := q.Role == "admin"
		switch was := s.admin.isAdmin.Swap(now); {
		case now && !was:
			s.out.line("your account has the admin role: :admin: help lists the admin commands")
		case !now && was:
			s.out.line("your account no longer has the admin role")
		}
	case wire.AdminData:
		s.out.line("admin: " + Sanitize(q.Text))
	case wire.OK:
		if s.admin.pending.Load() <= 0 {
			return false
		}
		s.admin.pending.Add(-1)
		s.out.line(strings.TrimSpace("admin: ok " + Sanitize(q.Text)))
	case wire.No:
		if s.admin.pending.Load() <= 0 {
			return false
		}
		s.admin.pending.Add(-1)
		s.out.line("! admin: " + Sanitize(q.Reason))
	default:
		return false
	}
	return true
}

// adminHelp is the admin section of :help:, for accounts with the admin
// role only ("" otherwise).
func (s *session) adminHelp() string {
	if !s.admin.isAdmin.Load() {
		return ""
	}
	return "\nadmin commands (your account has the admin role):" +
		"\n  :admin: COMMAND [ARGS] run a server admin command; :admin: help lists them" +
		"\n  for example :admin: online, :admin: kick bob spamming, :admin: ban 203.0.113.7 1d"
}
