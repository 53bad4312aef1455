package admin

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"sslmessager/internal/accounts"
	"sslmessager/internal/bans"
	"sslmessager/internal/relay"
	"sslmessager/internal/wire"
)

// Each handler starts with its syntax; args is the command line after the
// command's name.

// userArg checks that w names a user (the name rule, any case).
func userArg(w string) (string, error) {
	if w == "" {
		return "", errors.New("missing USER")
	}
	if err := wire.CheckUserName(w); err != nil {
		return "", fmt.Errorf("%s: %v", wire.Quote(w), err)
	}
	return w, nil
}

// noArgs refuses arguments to a command that takes none.
func noArgs(name, args string) (Result, bool) {
	if args != "" {
		return failf("%s takes no arguments", name), false
	}
	return Result{}, true
}

// span is how long a ban or mute lasts, in a summary.
func span(until time.Time) string {
	if until.IsZero() {
		return "forever"
	}
	return "until " + untilText(until)
}

// untilText is how a ban or mute's end is shown.
func untilText(until time.Time) string {
	if until.IsZero() {
		return "forever"
	}
	return until.UTC().Format(time.RFC3339)
}

// online
func (a *Admin) online(_ Request, args string) Result {
	if r, ok := noArgs("online", args); !ok {
		return r
	}
	ss := a.d.Relay.Sessions()
	slices.SortFunc(ss, func(x, y relay.SessionInfo) int {
		if c := strings.Compare(wire.FoldName(x.User), wire.FoldName(y.User)); c != 0 {
			return c
		}
		return x.Since.Compare(y.Since)
	})
	users := map[string]bool{}
	r := Result{OK: true}
	for _, s := range ss {
		users[wire.FoldName(s.User)] = true
		client := "original"
		if s.Protocol != "" {
			client = s.Protocol
		}
		group := "off"
		if s.Group {
			group = "on"
		}
		r.Lines = append(r.Lines, fmt.Sprintf("%s %s group=%s client=%s since=%s",
			s.User, s.Remote, group, client, s.Since.UTC().Format(time.RFC3339)))
	}
	r.Summary = fmt.Sprintf("%d users, %d sessions", len(users), len(ss))
	return r
}

// status
func (a *Admin) status(_ Request, args string) Result {
	if r, ok := noArgs("status", args); !ok {
		return r
	}
	st := a.d.Relay.Stats()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r := Result{OK: true, Summary: "status"}
	add := func(k string, v any) { r.Lines = append(r.Lines, fmt.Sprintf("%s %v", k, v)) }
	add("uptime", a.now().Sub(a.d.Started).Round(time.Second))
	add("connections", st.Conns)
	add("sessions", st.Sessions)
	add("users_online", st.Users)
	add("group_members", st.GroupMembers)
	add("accounts", a.d.Accounts.Len())
	if a.d.Spool != nil {
		files, _, bytes := a.d.Spool.Totals()
		add("queued_files", files)
		add("queued_bytes", bytes)
	}
	add("goroutines", runtime.NumGoroutine())
	add("memory_heap_bytes", ms.HeapAlloc)
	add("memory_sys_bytes", ms.Sys)
	if a.d.Bans != nil {
		add("bans", len(a.d.Bans.List()))
	}
	add("mutes", len(a.d.Relay.Mutes()))
	for _, l := range a.d.Relay.Limits() {
		add("limit."+l.Name, l.Value)
	}
	return r
}

// kick USER [REASON]
func (a *Admin) kick(_ Request, args string) Result {
	w, reason := cut(args)
	name, err := userArg(w)
	if err != nil {
		return failf("kick: %v", err)
	}
	why := "kicked"
	if reason != "" {
		why += ": " + wire.SafeText(reason)
	}
	n := a.d.Relay.EndUser(name, why)
	if n == 0 {
		return failf("%s is not online", name)
	}
	return okf("kicked %s: %d sessions ended", name, n)
}

// ban USER|IP|CIDR [DURATION] [REASON]
func (a *Admin) ban(_ Request, args string) Result {
	if a.d.Bans == nil {
		return failf("bans are not enabled on this server")
	}
	target, rest := cut(args)
	if target == "" {
		return failf("ban: missing USER, IP or CIDR")
	}
	var until time.Time
	if w, more := cut(rest); looksLikeDuration(w) {
		d, err := ParseDuration(w)
		if err != nil {
			return failf("ban: %v", err)
		}
		until, rest = a.now().Add(d), more
	}
	b, err := a.d.Bans.Add(target, until, rest)
	if err != nil {
		return failf("ban: %v", strings.TrimPrefix(err.Error(), "bans: "))
	}
	why := "banned"
	if b.Reason != "" {
		why += ": " + wire.SafeText(b.Reason)
	}
	var n int
	switch b.Kind {
	case bans.KindUser:
		n = a.d.Relay.EndUser(b.Value, why)
	case bans.KindIP:
		ip := netip.MustParseAddr(b.Value)
		n = a.d.Relay.EndAddr(netip.PrefixFrom(ip, ip.BitLen()), why)
	case bans.KindCIDR:
		n = a.d.Relay.EndAddr(netip.MustParsePrefix(b.Value), why)
	}
	return okf("banned %s %s %s: %d connections ended", b.Kind, b.Value, span(b.Until), n)
}

// unban USER|IP|CIDR
func (a *Admin) unban(_ Request, args string) Result {
	if a.d.Bans == nil {
		return failf("bans are not enabled on this server")
	}
	if args == "" || strings.ContainsAny(args, " \t") {
		return failf("unban: want one USER, IP or CIDR")
	}
	b, err := a.d.Bans.Remove(args)
	if errors.Is(err, bans.ErrNotBanned) {
		return failf("%s is not banned", wire.Quote(args))
	}
	if err != nil {
		return failf("unban: %v", strings.TrimPrefix(err.Error(), "bans: "))
	}
	return okf("unbanned %s %s", b.Kind, b.Value)
}

// bans
func (a *Admin) listBans(_ Request, args string) Result {
	if r, ok := noArgs("bans", args); !ok {
		return r
	}
	if a.d.Bans == nil {
		return failf("bans are not enabled on this server")
	}
	r := Result{OK: true}
	for _, b := range a.d.Bans.List() {
		r.Lines = append(r.Lines, strings.TrimSpace(fmt.Sprintf("%s %s %s %s %s",
			b.Kind, b.Value, untilText(b.Until), b.Created.UTC().Format(time.RFC3339), b.Reason)))
	}
	r.Summary = fmt.Sprintf("%d bans", len(r.Lines))
	return r
}

// mute USER [DURATION]
func (a *Admin) mute(_ Request, args string) Result {
	w, rest := cut(args)
	name, err := userArg(w)
	if err != nil {
		return failf("mute: %v", err)
	}
	u, ok := a.d.Accounts.Lookup(name)
	if !ok {
		return failf("no such user: %s", name)
	}
	var until time.Time
	if rest != "" {
		d, err := ParseDuration(rest)
		if err != nil {
			return failf("mute: %v", err)
		}
		until = a.now().Add(d)
	}
	a.d.Relay.Mute(u.Name, until)
	return okf("muted %s %s", u.Name, span(until))
}

// unmute USER
func (a *Admin) unmute(_ Request, args string) Result {
	name, err := userArg(args)
	if err != nil {
		return failf("unmute: %v", err)
	}
	if !a.d.Relay.Unmute(name) {
		return failf("%s is not muted", name)
	}
	return okf("unmuted %s", name)
}

// msg USER TEXT
func (a *Admin) msg(_ Request, args string) Result {
	w, text := cut(args)
	name, err := userArg(w)
	if err != nil {
		return failf("msg: %v", err)
	}
	if text == "" {
		return failf("msg: missing TEXT")
	}
	n, err := a.d.Relay.SendDirect(name, text)
	if err != nil {
		return failf("msg: %v", err)
	}
	if n == 0 {
		return failf("%s is not online", name)
	}
	return okf("sent to %s: %d sessions", name, n)
}

// g TEXT
func (a *Admin) group(_ Request, args string) Result {
	if args == "" {
		return failf("g: missing TEXT")
	}
	n, err := a.d.Relay.Broadcast(args)
	if err != nil {
		return failf("g: %v", err)
	}
	return okf("sent to %d sessions", n)
}

// password returns the password for useradd and passwd: generated (and
// shown), or read with req.ReadSecret when the argument is "-".
func password(req Request, arg string) (pw string, generated bool, err error) {
	switch arg {
	case "":
		return rand.Text(), true, nil // 26 characters, 130 bits
	case "-":
		if req.ReadSecret == nil {
			return "", false, errors.New("- reads the password from the operator's stdin, which this way in has none: leave it out to generate one")
		}
		pw, err := req.ReadSecret()
		if err != nil {
			return "", false, fmt.Errorf("read the password: %w", err)
		}
		pw = strings.TrimRight(pw, "\r\n")
		if err := wire.CheckPassword(pw); err != nil {
			return "", false, err
		}
		return pw, false, nil
	}
	return "", false, errors.New("want USER, or USER - to read the password from stdin")
}

// useradd USER [-]
func (a *Admin) useradd(req Request, args string) Result {
	w, rest := cut(args)
	name, err := userArg(w)
	if err != nil {
		return failf("useradd: %v", err)
	}
	pw, generated, err := password(req, rest)
	if err != nil {
		return failf("useradd: %v", err)
	}
	u, err := a.d.Accounts.Create(name, pw)
	if errors.Is(err, accounts.ErrTaken) {
		return failf("useradd: %s already exists", name)
	}
	if err != nil {
		return failf("useradd: %v", err)
	}
	r := okf("created %s", u.Name)
	if generated {
		r.Lines = []string{"password " + pw}
	}
	return r
}

// passwd USER [-]
func (a *Admin) passwd(req Request, args string) Result {
	w, rest := cut(args)
	name, err := userArg(w)
	if err != nil {
		return failf("passwd: %v", err)
	}
	u, ok := a.d.Accounts.Lookup(name)
	if !ok {
		return failf("no such user: %s", name)
	}
	pw, generated, err := password(req, rest)
	if err != nil {
		return failf("passwd: %v", err)
	}
	if err := a.d.Accounts.SetPassword(u.Name, pw); err != nil {
		if errors.Is(err, accounts.ErrNoSuchUser) {
			return failf("no such user: %s", name)
		}
		return failf("passwd: %v", err)
	}
	n := a.d.Relay.EndUser(u.Name, "password changed by an admin")
	r := okf("password of %s changed: %d sessions ended", u.Name, n)
	if generated {
		r.Lines = []string{"password " + pw}
	}
	return r
}

// userdel USER
func (a *Admin) userdel(_ Request, args string) Result {
	name, err := userArg(args)
	if err != nil {
		return failf("userdel: %v", err)
	}
	// The account goes first: no new log-in or upload can name it after.
	u, err := a.d.Accounts.Delete(name)
	if errors.Is(err, accounts.ErrNoSuchUser) {
		return failf("no such user: %s", name)
	}
	if err != nil {
		return failf("userdel: %v", err)
	}
	n := a.d.Relay.EndUser(u.Name, wire.ReasonAccountDeleted)
	a.d.Relay.Unmute(u.Name)
	files, err := a.d.Relay.DropUserData(u.Name)
	if err != nil {
		return failf("deleted %s, %d sessions ended, but its queued files or stored messages: %v", u.Name, n, err)
	}
	return okf("deleted %s: %d sessions ended, %d queued files removed", u.Name, n, files)
}

// role USER admin|user
func (a *Admin) role(_ Request, args string) Result {
	w, role := cut(args)
	name, err := userArg(w)
	if err != nil {
		return failf("role: %v", err)
	}
	role = strings.ToLower(role)
	if role != accounts.RoleAdmin && role != accounts.RoleUser {
		return failf("role: want admin or user")
	}
	if err := a.d.Accounts.SetRole(name, role); err != nil {
		if errors.Is(err, accounts.ErrNoSuchUser) {
			return failf("no such user: %s", name)
		}
		return failf("role: %v", err)
	}
	u, _ := a.d.Accounts.Lookup(name)
	a.d.Relay.NotifyRole(u.Name, role)
	return okf("%s is now %s", u.Name, role)
}

// signup open|closed
func (a *Admin) signup(_ Request, args string) Result {
	switch strings.ToLower(args) {
	case "open":
		a.d.Relay.SetSignUpClosed(false)
	case "closed":
		a.d.Relay.SetSignUpClosed(true)
	default:
		return failf("signup: want open or closed")
	}
	return okf("sign-up is %s", strings.ToLower(args))
}

// help
func (a *Admin) help(_ Request, _ string) Result {
	return Result{OK: true, Lines: Help(), Summary: strconv.Itoa(len(table)) + " commands"}
}
