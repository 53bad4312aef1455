package relay

import (
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
		c.carbons.Store(true) // CMD <carbons> token: no reply
		return true
	case wire.Quit:
		return c.handleQuit()
	case wire.Upload:
		return c.handleUpload(q)
	case wire.Get:
		return c.handleGet(q)
	case wire.AckFile:
		return c.handleAck(q)
	case wire.ChangePassword, wire.DeleteAccount, wire.Ping: // sslm/2 only (account_cmds.go)
		return c.dispatchAccount(q)
	case wire.Admin:
		return c.handleAdmin(q) // sslm/2 only (admin.go)
	case wire.AckMsg:
		return c.handleAckMsg(q) // offline.go
	case wire.SetKey, wire.GetKey:
		return c.dispatchKeys(q) // sslm/3 only (keys.go)
	case wire.GetLive:
		return c.handleGetLive() // sslm/2 only (stream.go)
	case wire.Push:
		return c.handlePush() // sslm/2 only (stream.go)
	case wire.GroupMembers:
		return c.handleGroupMembers() // sslm/3 only (groupmembers.go)
	case wire.UploadEnd:
		c.fail(wire.ReasonProtocol, "ENDF without an upload", "ENDF")
		return false
	}
	c.fail(wire.ReasonProtocol, "unexpected query", q.Verb())
	return false
}

// isMe reports whether a sender word names this session's user. Names are
// one identity in any case.
func (c *session) isMe(sender string) bool { return wire.FoldName(sender) == c.key }

// MSG target sender text... token
//
// Every session of the target gets the RELAY line. The sender's other
// sessions that asked for carbons get a CARBON copy, so each of a user's
// clients shows the whole conversation.
func (c *session) handleMsg(q wire.Msg) bool {
	if !c.isMe(q.Sender) {
		c.fail(reasonImpersonate, "MSG sender "+wire.Quote(q.Sender), "MSG")
		return false
	}
	if c.refuseMuted() {
		return true
	}
	targets := c.srv.hub.lookup(q.Target)
	if len(targets) == 0 {
		c.flushPending()             // storing it takes a disk write: relayed lines go first
		return c.handleOfflineMsg(q) // offline.go
	}
	to := targets[0].user
	line, err := wire.Format(wire.Relay{Target: to, Sender: c.user, Text: q.Text})
	if err != nil { // cannot happen: the text was checked by the parser
		c.fail(wire.ReasonProtocol, err.Error(), "MSG")
		return false
	}
	var stall <-chan struct{}
	for _, t := range targets {
		if ch := c.relay(t, line); ch != nil && stall == nil {
			stall = ch
		}
	}
	c.srv.events.Relayed(KindDirect)
	if targets[0].key != c.key {
		var carbon []byte
		for _, own := range c.srv.hub.lookupKey(c.key) {
			if own == c || !own.carbons.Load() {
				continue
			}
			if carbon == nil {
				if carbon, err = wire.Format(wire.Carbon{Target: to, Sender: c.user, Text: q.Text}); err != nil {
					break // cannot happen: the same words formatted as RELAY
				}
			}
			c.relay(own, carbon)
			c.srv.events.Relayed(KindCarbon)
		}
	}
	c.stall(stall)
	return true
}

// MSGG sender text... token
func (c *session) handleGroupMsg(q wire.GroupMsg) bool {
	if !c.isMe(q.Sender) {
		c.fail(reasonImpersonate, "MSGG sender "+wire.Quote(q.Sender), "MSGG")
		return false
	}
	if c.refuseMuted() {
		return true
	}
	line, err := wire.Format(wire.RelayGroup{Sender: c.user, Text: q.Text})
	if err != nil {
		c.fail(wire.ReasonProtocol, err.Error(), "MSGG")
		return false
	}
	var stall <-chan struct{}
	for _, m := range c.srv.hub.groupMembers() {
		if m != c {
			if ch := c.relay(m, line); ch != nil && stall == nil {
				stall = ch
			}
		}
	}
	c.srv.events.Relayed(KindGroup)
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
