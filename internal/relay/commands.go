package relay

import (
	"sslmessager/internal/accounts"
	"sslmessager/internal/wire"
)

// dispatch runs one authenticated query; false ends the session.
func (c *session) dispatch(q wire.Query) bool {
	switch q := q.(type) {
	case wire.Msg:
		return c.handleMsg(q)
	case wire.GroupMsg:
		return c.handleGroupMsg(q)
	case wire.Online:
		return c.handleOnline()
	case wire.Group:
		c.srv.hub.toggleGroup(c) // CMD <group> token: no reply, as in the original
		return true
	case wire.Carbons:
		return true // CMD <carbons> token: no reply; a user has one session here, so no copies
	case wire.Quit:
		return c.handleQuit()
	case wire.Upload:
		return c.handleUpload(q)
	case wire.Get:
		return c.handleGet(q)
	case wire.AckFile:
		return c.handleAck(q)
	case wire.UploadEnd:
		c.fail(wire.ReasonProtocol, "ENDF without an upload", "ENDF")
		return false
	}
	c.fail(wire.ReasonProtocol, "unexpected query", q.Verb())
	return false
}

// isMe reports whether a sender word names this session's user. Names are
// one identity in any case.
func (c *session) isMe(sender string) bool { return accounts.Fold(sender) == c.key }

// MSG target sender text... token
func (c *session) handleMsg(q wire.Msg) bool {
	if !c.isMe(q.Sender) {
		c.fail(reasonImpersonate, "MSG sender "+q.Sender, "MSG")
		return false
	}
	target := c.srv.hub.lookup(q.Target)
	if target == nil {
		c.send(lineNotOnline)
		return true
	}
	line, err := wire.Format(wire.Relay{Target: target.user, Sender: c.user, Text: q.Text})
	if err != nil { // cannot happen: the text was checked by the parser
		c.fail(wire.ReasonProtocol, err.Error(), "MSG")
		return false
	}
	c.stall(target.send(line))
	return true
}

// MSGG sender text... token
func (c *session) handleGroupMsg(q wire.GroupMsg) bool {
	if !c.isMe(q.Sender) {
		c.fail(reasonImpersonate, "MSGG sender "+q.Sender, "MSGG")
		return false
	}
	line, err := wire.Format(wire.RelayGroup{Sender: c.user, Text: q.Text})
	if err != nil {
		c.fail(wire.ReasonProtocol, err.Error(), "MSGG")
		return false
	}
	var stall <-chan struct{}
	for _, m := range c.srv.hub.groupMembers() {
		if m != c {
			if ch := m.send(line); ch != nil && stall == nil {
				stall = ch
			}
		}
	}
	c.stall(stall)
	return true
}

// CMD <online> token
func (c *session) handleOnline() bool {
	line, err := wire.Format(wire.OnlineList{Users: c.srv.hub.names(wire.MaxOnline)})
	if err != nil {
		c.logger().Error("online list", "err", err)
		return true
	}
	c.send(line)
	return true
}

// END <user command> token. The user leaves the hub at once: the original
// client kills itself without waiting for the answer.
func (c *session) handleQuit() bool {
	c.srv.hub.remove(c)
	c.end(lineEndAccepted, true)
	return false
}
