package relay

import (
	"slices"
	"strings"

	"sslmessager/internal/wire"
)

// GROUPMEMBERS token (ALPN sslm/3 only; PROTOCOL.md "Group members"):
// the users in group chat now, each once, sorted by folded name, for a
// client that seals a group message to each member. At most
// wire.MaxGroupMembers names are listed (the first in that order);
// the total says how many there are. It tells no more than a group
// message's recipients learn anyway: who is in group chat.
func (c *session) handleGroupMembers() bool {
	if !c.keys {
		c.fail(wire.ReasonProtocol, "sslm/3 query without ALPN sslm/3", "GROUPMEMBERS")
		return false
	}
	seen := make(map[string]bool)
	var names []string
	for _, m := range c.srv.hub.groupMembers() {
		if !seen[m.key] {
			seen[m.key] = true
			names = append(names, m.user)
		}
	}
	slices.SortFunc(names, func(a, b string) int { return strings.Compare(wire.FoldName(a), wire.FoldName(b)) })
	total := len(names)
	names = names[:min(total, wire.MaxGroupMembers)]
	c.send(c.format(wire.Members{Total: total, Names: names}, lineNoServerError))
	return true
}
