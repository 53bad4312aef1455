package relay_test

import (
	"fmt"
	"testing"

	"sslmessager/internal/keydir"
	"sslmessager/internal/wire"
)

// TestGroupMembers: GROUPMEMBERS lists the users in group chat, each once
// (a user with two sessions in group chat), without those who toggled out.
func TestGroupMembers(t *testing.T) {
	h := startKeys(t, keydir.Options{})
	alice := h.DialKeys(t)
	alice.SignUp("Alice")
	bob := h.DialKeys(t)
	bob.SignUp("bob")
	bob2 := h.DialKeys(t)
	bob2.LogIn("bob")
	carol := h.Dial(t) // an original client
	carol.SignUp("carol")
	dave := h.DialKeys(t)
	dave.SignUp("dave") // never in group chat

	alice.Send(wire.GroupMembers{Token: alice.Token})
	alice.Expect(wire.Members{Total: 0})
	alice.Send(wire.Group{Token: alice.Token})
	bob.Send(wire.Group{Token: bob.Token})
	bob2.Send(wire.Group{Token: bob2.Token})
	carol.Send(wire.Group{Token: carol.Token})
	expectQuiet(bob)
	expectQuiet(bob2)
	expectQuietOriginal(carol, "Alice", "bob", "carol", "dave")
	dave.Send(wire.GroupMembers{Token: dave.Token})
	q := dave.MustNext().(wire.Members)
	if q.Total != 3 || fmt.Sprint(q.Names) != "[Alice bob carol]" {
		t.Fatalf("members %+v, want Alice, bob, carol", q)
	}
	alice.Send(wire.Group{Token: alice.Token}) // out again
	expectQuiet(alice)
	dave.Send(wire.GroupMembers{Token: dave.Token})
	dave.Expect(wire.Members{Total: 2, Names: []string{"bob", "carol"}})
}

// TestGroupMembersCapped: more than 50 users in group chat are counted,
// and 50 listed.
func TestGroupMembersCapped(t *testing.T) {
	h := startKeys(t, keydir.Options{})
	for i := range wire.MaxGroupMembers + 2 {
		c := h.Dial(t)
		c.SignUp(fmt.Sprintf("u%02d", i))
		c.Send(wire.Group{Token: c.Token})
		c.Send(wire.Online{Token: c.Token})
		c.MustNext()
	}
	asker := h.DialKeys(t)
	asker.SignUp("asker")
	asker.Send(wire.GroupMembers{Token: asker.Token})
	q := asker.MustNext().(wire.Members)
	if q.Total != wire.MaxGroupMembers+2 || len(q.Names) != wire.MaxGroupMembers {
		t.Fatalf("total %d with %d names, want %d with %d", q.Total, len(q.Names), wire.MaxGroupMembers+2, wire.MaxGroupMembers)
	}
}

// TestGroupMembersNeedsKeysALPN: on sslm/2 and without ALPN GROUPMEMBERS
// is an unknown query, which ends the session as the original server does.
func TestGroupMembersNeedsKeysALPN(t *testing.T) {
	h := startKeys(t, keydir.Options{})
	orig := h.Dial(t)
	orig.SignUp("orig")
	orig.Send(wire.GroupMembers{Token: orig.Token})
	orig.Expect(wire.End{Reason: wire.ReasonProtocol, Fatal: true})
	ext := h.DialExt(t)
	ext.SignUp("ext")
	ext.Send(wire.GroupMembers{Token: ext.Token})
	ext.Expect(wire.End{Reason: wire.ReasonProtocol, Fatal: true})
}
