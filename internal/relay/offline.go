package relay

import (
	"errors"
	"sync"
	"time"

	"sslmessager/internal/offline"
	"sslmessager/internal/wire"
)

// Offline direct messages.
//
// A MSG to a user who exists but has no session is stored in
// Config.Offline and the sender gets CNT <user offline, message queued>
// once it is on disk. At the user's next log-in the stored messages are
// delivered, oldest first, after ACCEPT: to our client (sslm/2) as RELAYQ
// lines, which it confirms with ACKM (the server then deletes them); to
// the original clients as RELAY lines with the time sent in front of the
// text, which count as delivered once written to the connection.
//
// One session at a time delivers a user's backlog: the first to log in
// while there is one takes the lease and keeps it until it ends. It sends
// each stored message once; what its client did not confirm when it ends
// goes to another session of the user that is still logged in, or to the
// next log-in. So two sessions never get the same backlog at once, and our
// client, which remembers the highest seq it has shown, shows none twice.
//
// The writer goroutine sends the backlog in batches of offlineBatch, like
// a download: its lines never pass through the session's outbound queue,
// and the lines queued for the session meanwhile go out between batches.

var (
	lineQueued           = wire.MustFormat(wire.NotOnline{Reason: wire.ReasonQueued})
	lineOfflineStoreFull = wire.MustFormat(wire.NotOnline{Reason: wire.ReasonOfflineStoreFull})
	lineOfflineError     = wire.MustFormat(wire.NotOnline{Reason: wire.ReasonOfflineError})
)

// offlineBatch is how many stored messages the writer sends before it
// lets the session's waiting lines out.
const offlineBatch = 32

// offlineDelivery hands out each user's backlog to one session at a time.
// Its mu is a leaf: nothing else is locked while it is held.
type offlineDelivery struct {
	store *offline.Store

	mu     sync.Mutex
	leases map[string]*offlineLease // guarded by mu; by wire.FoldName(user)
}

// offlineLease is a session's hold on its user's backlog. Its fields are
// guarded by offlineDelivery.mu.
type offlineLease struct {
	holder  *session
	sent    uint64 // highest seq written to holder
	running bool   // a delivery job is queued or running on holder
	again   bool   // a message was stored while it ran: read once more
}

// newOfflineDelivery returns nil when st is nil: offline messages are off
// and a MSG to an offline user gets CNT <user not online> as before.
func newOfflineDelivery(st *offline.Store) *offlineDelivery {
	if st == nil {
		return nil
	}
	return &offlineDelivery{store: st, leases: make(map[string]*offlineLease)}
}

// handleOfflineMsg answers a MSG whose target has no session. An unknown
// target gets CNT <user not online>, as always; a known one gets the
// message stored.
func (c *session) handleOfflineMsg(q wire.Msg) bool {
	d := c.srv.offline
	if d == nil {
		c.send(lineNotOnline)
		return true
	}
	target, ok := c.srv.cfg.Accounts.Lookup(q.Target)
	if !ok {
		c.send(lineNotOnline)
		return true
	}
	m, err := d.store.Append(target.Name, c.user, q.Text)
	switch {
	case err == nil:
		if _, still := c.srv.cfg.Accounts.Lookup(target.Name); !still {
			// Deleted while the message was stored, after the deletion
			// removed what was stored: remove it too, or it would wait
			// for whoever signs up with the name next.
			if err := d.store.RemoveAll(target.Name); err != nil {
				c.logger().Error("message to a deleted account not removed", "to", target.Name, "err", err)
			}
			c.send(lineNotOnline)
			return true
		}
		c.logger().Info("message stored for an offline user", "to", target.Name, "seq", m.Seq)
		c.send(lineQueued)
	case errors.Is(err, offline.ErrQueueFull):
		c.logger().Info("message refused: the offline queue is full", "to", target.Name, "max", d.store.MaxPerRecipient())
		c.send(c.format(wire.NotOnline{Reason: wire.ReasonOfflineQueueFull(target.Name)}, lineOfflineError))
		return true
	case errors.Is(err, offline.ErrStoreFull):
		c.logger().Warn("message refused: the offline store is full", "to", target.Name, "bytes", d.store.Bytes())
		c.send(lineOfflineStoreFull)
		return true
	default:
		c.logger().Error("message not stored", "to", target.Name, "err", err)
		c.send(lineOfflineError)
		return true
	}
	// The target may have logged in while the message was stored, after
	// its log-in looked for stored messages: then deliver it now.
	if ss := c.srv.hub.lookup(target.Name); len(ss) > 0 {
		d.offer(ss[0])
	}
	return true
}

// ACKM seq token (sslm/2 only): the client has shown every stored message
// up to seq. Only what this session was sent can be confirmed.
func (c *session) handleAckMsg(q wire.AckMsg) bool {
	if !c.ext {
		c.fail(wire.ReasonProtocol, "ACKM without sslm/2", "ACKM")
		return false
	}
	d := c.srv.offline
	if d == nil {
		return true
	}
	var upTo uint64
	d.mu.Lock()
	if l := d.leases[c.key]; l != nil && l.holder == c {
		upTo = min(q.Seq, l.sent)
	}
	d.mu.Unlock()
	if upTo == 0 {
		c.logger().Debug("ACKM for nothing this session was sent", "seq", q.Seq)
		return true
	}
	if err := d.store.Ack(c.user, upTo); err != nil {
		c.logger().Error("stored messages not removed", "seq", upTo, "err", err)
	}
	return true
}

// offer makes sure a session of c's user delivers the user's stored
// messages, if there are any: the lease holder if there is one, else c.
// Safe on a nil d.
func (d *offlineDelivery) offer(c *session) {
	if d == nil {
		return
	}
	n, err := d.store.Pending(c.user)
	if err != nil {
		c.logger().Error("stored messages cannot be read", "err", err)
		return
	}
	if n == 0 {
		return
	}
	d.mu.Lock()
	l := d.leases[c.key]
	switch {
	case l == nil:
		l = &offlineLease{holder: c}
		d.leases[c.key] = l
	case l.running:
		l.again = true
		d.mu.Unlock()
		return
	}
	l.running = true
	holder := l.holder
	d.mu.Unlock()

	res := holder.out.enqueueJob(&getJob{offline: l})
	if res == queued {
		return
	}
	// The holder is ending: give the lease up and offer the backlog to
	// another of the user's sessions.
	if res == overflow {
		holder.dropSlow()
	}
	d.mu.Lock()
	if d.leases[c.key] == l {
		delete(d.leases, c.key)
	}
	d.mu.Unlock()
	for _, s := range holder.srv.hub.lookup(holder.user) {
		if s != holder && !s.out.isClosing() {
			d.offer(s)
			return
		}
	}
}

// leave gives up c's lease when c ends; another logged-in session of the
// user takes over what c's client did not confirm. Safe on a nil d.
func (d *offlineDelivery) leave(c *session) {
	if d == nil || !c.in {
		return
	}
	d.mu.Lock()
	l := d.leases[c.key]
	if l == nil || l.holder != c {
		d.mu.Unlock()
		return
	}
	delete(d.leases, c.key)
	d.mu.Unlock()
	if ss := c.srv.hub.lookup(c.user); len(ss) > 0 {
		d.offer(ss[0])
	}
}

// sendOffline runs in the writer goroutine: it sends the stored messages
// not yet sent to this session, in batches, letting the lines queued for
// the session out between two batches. The original clients never
// confirm: for them a batch counts as delivered once it is written to the
// connection. An error means the connection broke.
func (c *session) sendOffline(l *offlineLease) error {
	d := c.srv.offline
	c.out.setDownloading(true)
	defer c.out.setDownloading(false)
	for !c.out.isClosing() {
		d.mu.Lock()
		after := l.sent
		d.mu.Unlock()
		msgs, err := d.store.Read(c.user, after, offlineBatch)
		if err != nil {
			c.logger().Error("stored messages cannot be read", "err", err)
		}
		if len(msgs) == 0 {
			d.mu.Lock()
			more := l.again && err == nil
			l.again = false
			l.running = more
			d.mu.Unlock()
			if more {
				continue
			}
			return nil
		}
		for _, m := range msgs {
			if err := c.writeStored(m); err != nil {
				return err
			}
		}
		last := msgs[len(msgs)-1].Seq
		if !c.ext {
			if err := c.bc.flush(); err != nil {
				return err
			}
			if err := d.store.Ack(c.user, last); err != nil {
				c.logger().Error("delivered messages not removed", "seq", last, "err", err)
			}
		}
		d.mu.Lock()
		l.sent = last
		d.mu.Unlock()
		c.logger().Info("stored messages sent", "count", len(msgs), "last_seq", last, "confirmed_by_client", c.ext)
		if err := c.sendWaitingLines(); err != nil {
			return err
		}
	}
	return nil
}

// writeStored writes one stored message: RELAYQ to our client, RELAY with
// the time sent in front of the text to the original clients.
func (c *session) writeStored(m offline.Message) error {
	var lines []wire.Query
	if c.ext {
		lines = []wire.Query{wire.RelayQueued{Target: c.user, Sender: m.Sender, Sent: m.Sent, Seq: m.Seq, Text: m.Text}}
	} else {
		for _, r := range wire.OriginalRelays(c.user, m.Sender, m.Sent, time.Now(), m.Text) {
			lines = append(lines, r)
		}
	}
	for _, q := range lines {
		b, err := wire.Format(q)
		if err != nil {
			// Cannot happen: the text was checked when it was stored.
			c.logger().Error("stored message cannot be sent", "seq", m.Seq, "err", err)
			continue
		}
		if _, err := c.conn.Write(b); err != nil {
			return err
		}
	}
	return nil
}
