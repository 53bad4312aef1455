package messenger

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"sslmessager/internal/e2e"
	"sslmessager/internal/wire"
)

// Group chat end to end (PROTOCOL.md "End-to-end group messages"): with
// end-to-end encryption on, a line typed in group chat is sealed to each
// member with a key separately (e2e.Sealer.SealGroup, kind group) and sent
// to that member as a direct message (MSG), so an original client in group
// chat never gets an encrypted line. The members come from GROUPMEMBERS
// (at most wire.MaxGroupMembers); the sender sees "encrypted to: …" and
// "not delivered to: carol (no key)". :plain_group: TEXT sends TEXT to the
// group in plaintext (MSGG), marked as readable by the server; with
// --e2e=off group chat is plaintext as before.

// groupMembers asks the server who is in group chat (input loop).
func (s *session) groupMembers() (wire.Members, error) {
	ch, done := s.expectReplies()
	defer done()
	if err := s.c.send(wire.GroupMembers{Token: s.c.token}); err != nil {
		return wire.Members{}, err
	}
	q, err := s.awaitReply(ch, KeyTimeout, func(q wire.Query) bool { _, ok := q.(wire.Members); return ok })
	if err != nil {
		return wire.Members{}, err
	}
	return q.(wire.Members), nil
}

// sendGroupE2E sends text in group chat end to end (input loop). handled
// false: send it as plaintext MSGG as before (end-to-end encryption is
// not on here).
func (s *session) sendGroupE2E(text string) (handled bool, err error) {
	if !s.e2eOn() {
		if s.e2e.policy == E2ERequire {
			s.refused("! group message not sent: this server has no key directory, and --e2e=require refuses plaintext")
			return true, nil
		}
		return false, nil
	}
	if err := s.rotateIfDue(); err != nil {
		return true, err
	}
	m, err := s.groupMembers()
	if err != nil {
		if errors.Is(err, ErrConnectionClosed) {
			return true, err
		}
		s.refused("! group message not sent: " + Sanitize(err.Error()))
		return true, nil
	}
	if m.Total > len(m.Names) {
		s.refused(fmt.Sprintf("! group message not sent: %d users are in group chat, and an end-to-end group message goes to at most %d; :plain_group: TEXT sends it in plaintext (the server can read it)", m.Total, wire.MaxGroupMembers))
		return true, nil
	}
	var bundles []*e2e.Bundle
	var sealedTo, missing []string
	for _, name := range m.Names {
		if isSelf(s, name) {
			continue
		}
		b, _, err := s.peerKey(name)
		var kr *keyRefusal
		switch {
		case err == nil:
			bundles = append(bundles, b)
			sealedTo = append(sealedTo, name)
		case errors.Is(err, errNoKey):
			missing = append(missing, Sanitize(name)+" (no key)")
		case errors.As(err, &kr):
			missing = append(missing, Sanitize(name)+" ("+Sanitize(kr.reason)+")")
		case errors.Is(err, ErrConnectionClosed):
			return true, err
		default:
			missing = append(missing, Sanitize(name)+" ("+Sanitize(err.Error())+")")
		}
	}
	if len(bundles) == 0 {
		s.refused("! group message not sent: no other member of group chat has an end-to-end key" + notDelivered(missing))
		return true, nil
	}
	var rerr error
	reserve := func(user string, n int) uint64 {
		first, err := s.reserveSeq(user, n)
		if err != nil && rerr == nil {
			rerr = err
		}
		return first
	}
	envs, err := s.sealer().SealGroup(bundles, text, s.opts.Now(), reserve)
	if err == nil {
		err = rerr
	}
	if err != nil {
		s.refused("! group message not sent: cannot encrypt: " + Sanitize(err.Error()))
		return true, nil
	}
	s.remember("you → [group, e2e]", text)
	parts := 0
	for _, env := range envs {
		for _, w := range env.Words {
			if err := s.c.send(wire.Msg{Target: env.To, Sender: s.c.user, Text: w, Token: s.c.token}); err != nil {
				return true, err
			}
			parts++
		}
	}
	s.e2e.mu.Lock()
	s.e2e.cntDup = 0 // each member's answer is its own
	s.e2e.mu.Unlock()
	names := make([]string, len(sealedTo))
	for i, n := range sealedTo {
		names[i] = Sanitize(n)
	}
	s.out.line("encrypted to: " + strings.Join(names, ", ") + notDelivered(missing))
	s.unsynced = true
	return true, nil
}

func notDelivered(missing []string) string {
	if len(missing) == 0 {
		return ""
	}
	return "; not delivered to: " + strings.Join(missing, ", ")
}

// :plain_group: TEXT sends TEXT to the group in plaintext (MSGG).
func cmdPlainGroup(s *session, arg string) (bool, error) {
	if strings.TrimSpace(arg) == "" {
		s.out.line("! usage: :plain_group: TEXT")
		return false, nil
	}
	if err := checkText(arg); err != nil {
		s.refused("! " + err.Error())
		return false, nil
	}
	if s.e2e.policy == E2ERequire {
		s.refused("! group message not sent: --e2e=require refuses plaintext")
		return false, nil
	}
	label := "you → [group]"
	if s.e2eOn() {
		label = "you → [group, plain: the server can read this]"
	}
	s.remember(label, arg)
	if err := s.c.send(wire.GroupMsg{Sender: s.c.user, Text: arg, Token: s.c.token}); err != nil {
		return false, err
	}
	s.unsynced = true
	return false, nil
}

// showGroupOpened shows an opened group message (receiver): as a group
// line, once its parts are all in.
func (s *session) showGroupOpened(sender string, m *e2e.Opened, stored *wire.RelayQueued) {
	text, whole, err := s.e2e.asm.Add(sender, m.Message, time.Now())
	if err != nil {
		s.out.line("! encrypted group message from " + Sanitize(sender) + " rejected: " + Sanitize(err.Error()))
		return
	}
	if !whole {
		return
	}
	s.noteConversation(sender)
	if stored != nil {
		s.out.line(s.render.stored("[group] "+sender, string(text), stored.Sent))
	} else {
		s.out.line(s.render.message(sender, string(text), true))
	}
	s.remember("[group] "+sender, string(text))
}

// showPlainGroup shows a plaintext group line while end-to-end
// encryption is on, tagged [plain] (receiver); false when it is not on.
func (s *session) showPlainGroup(q wire.RelayGroup) bool {
	if !s.e2eOn() || isSelf(s, q.Sender) {
		return false
	}
	if s.mutes.muted(q.Sender) {
		return true
	}
	s.e2e.mu.Lock()
	first := !s.e2e.noticed["plaingroup"]
	s.e2e.noticed["plaingroup"] = true
	s.e2e.mu.Unlock()
	if first {
		s.out.line("! group lines tagged [plain] came through the server in plaintext: the server operator can read them")
	}
	s.out.line(s.render.message(q.Sender+" [plain]", q.Text, true))
	s.remember("[group] "+q.Sender+" [plain]", q.Text)
	return true
}
