package relay

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"sslmessager/internal/e2e"
	"sslmessager/internal/keydir"
	"sslmessager/internal/wire"
)

// The key directory (ALPN sslm/3 only; PROTOCOL.md "Key directory").
//
// SETKEY publishes the session's user's bundle after checking it with
// package e2e: its signature, that it names exactly this user as
// registered, and that its signed prekey is fresh. GETKEY answers any
// name's bundle, or "-", and makes the session a watcher of that name:
// when the bundle changes (published anew, or withdrawn because the
// account was deleted) the watchers get KEYCHANGE with the bundle as it is
// then. A name that is not a user's, or a user without a bundle, is
// answered "-" alike: the directory tells no more about accounts than the
// bundles it holds.
//
// Ordering: a watcher is added, and its KEY sent, under keyDirectory.mu;
// a notification reads the bundle and sends it under the same lock. So a
// watcher's last KEY or KEYCHANGE for a name always carries the bundle the
// store holds, whatever order changes and fetches run in.

const (
	// maxKeyWatches is how many names one session may watch; a GETKEY
	// past it is answered but watches nothing more.
	maxKeyWatches = 512
	// setKeyBurst and setKeyInterval bound the SETKEYs one session gets
	// checked: a burst of setKeyBurst, then one per setKeyInterval.
	// Checking a signature costs far more than relaying a line; a client
	// publishes once per log-in and per prekey rotation.
	setKeyBurst    = 6
	setKeyInterval = 10 * time.Second
)

// setKeyBudget is the generic cell rate algorithm for one session's
// SETKEYs (see rateLimit). Reader goroutine only.
type setKeyBudget struct{ tat time.Time }

// take counts one SETKEY at now, or says how long until one is allowed.
func (b *setKeyBudget) take(now time.Time) (time.Duration, bool) {
	t := b.tat
	if t.Before(now) {
		t = now
	}
	t = t.Add(setKeyInterval)
	if over := t.Sub(now) - setKeyBurst*setKeyInterval; over > 0 {
		return over, false
	}
	b.tat = t
	return 0, true
}

var (
	lineKeySaved         = wire.MustFormat(wire.OK{Text: wire.ReasonKeySaved})
	lineNoAccountChanged = wire.MustFormat(wire.No{Reason: reasonAccountChanged})
)

// keyDirectory serves the key store to sessions. Its mu comes before
// hub.mu and outbound.mu: it sends lines while holding it (sending never
// blocks; a slow consumer is dropped through hub.remove).
type keyDirectory struct {
	store *keydir.Store
	log   *slog.Logger

	mu       sync.Mutex
	watchers map[string]*keyWatchers          // guarded by mu; by wire.FoldName(name)
	watching map[*session]map[string]struct{} // guarded by mu; the names each session watches
}

// keyWatchers are the sessions watching one name.
type keyWatchers struct {
	sessions map[*session]struct{}
	sent     string // the bundle the watchers were last told of ("" none)
}

// newKeyDirectory returns nil when st is nil: no key directory, and
// ALPN sslm/3 is not offered.
func newKeyDirectory(st *keydir.Store, log *slog.Logger) *keyDirectory {
	if st == nil {
		return nil
	}
	return &keyDirectory{store: st, log: log, watchers: make(map[string]*keyWatchers), watching: make(map[*session]map[string]struct{})}
}

// dispatchKeys runs SETKEY and GETKEY. They exist only for a client that
// negotiated sslm/3; to any other they are an unknown query.
func (c *session) dispatchKeys(q wire.Query) bool {
	if !c.keys {
		c.fail(wire.ReasonProtocol, "sslm/3 query without ALPN sslm/3", q.Verb())
		return false
	}
	switch q := q.(type) {
	case wire.SetKey:
		return c.handleSetKey(q)
	case wire.GetKey:
		c.srv.keys.fetch(c, q.User)
		return true
	}
	c.fail(wire.ReasonProtocol, "unexpected query", q.Verb())
	return false
}

// SETKEY bundle token
//
// Answered OK <key saved>, also when the bundle is the one already
// published, or NO <reason>: too many SETKEYs from this session; a bundle
// that does not verify, names another user, or has a prekey that expired
// or lives more than 90 days; too many changes within the hour; a server
// error.
func (c *session) handleSetKey(q wire.SetKey) bool {
	d := c.srv.keys
	if wait, ok := c.setKeys.take(time.Now()); !ok {
		c.logger().Info("key bundle not checked: too many from this session", "wait", wait)
		c.send(c.format(wire.No{Reason: "too many key bundles sent, try again in " + waitText(wait)}, lineNoServerError))
		return true
	}
	b, err := e2e.ParseBundle(q.Bundle)
	if err != nil {
		c.logger().Info("key bundle refused", "err", err)
		c.send(c.format(wire.No{Reason: "invalid key bundle: " + wire.SafeText(err.Error())}, lineNoServerError))
		return true
	}
	if b.User != c.user {
		c.logger().Warn("key bundle refused: it names another user", "bundle_user", b.User)
		c.send(c.format(wire.No{Reason: "the key bundle is for " + wire.Quote(b.User) + ", not for " + c.user}, lineNoServerError))
		return true
	}
	if err := b.CheckFresh(time.Now()); err != nil {
		c.logger().Info("key bundle refused", "err", err)
		c.send(c.format(wire.No{Reason: "invalid key bundle: " + wire.SafeText(err.Error())}, lineNoServerError))
		return true
	}
	// The account as it is now; a bundle stored for it must not outlive
	// it (see below).
	before, ok := c.srv.cfg.Accounts.Lookup(c.user)
	if !ok || c.out.isClosing() {
		c.send(lineNoAccount)
		return true
	}
	changed, err := d.store.Set(c.user, q.Bundle)
	var rate *keydir.RateError
	switch {
	case errors.As(err, &rate):
		c.logger().Info("key bundle refused: too many changes", "wait", rate.Wait)
		c.send(c.format(wire.No{Reason: "too many key changes, try again in " + waitText(rate.Wait)}, lineNoServerError))
		return true
	case err != nil:
		c.logger().Error("key bundle not stored", "err", err)
		c.send(lineNoServerError)
		return true
	}
	// Deleted (and perhaps made again by someone else) while the bundle
	// was stored, after the deletion removed the bundles: take it back,
	// or it would stand for whoever has the name next.
	if after, ok := c.srv.cfg.Accounts.Lookup(c.user); !ok || !after.Created.Equal(before.Created) || after.Hash != before.Hash {
		if _, err := d.store.RemoveIf(c.user, q.Bundle); err != nil {
			c.logger().Error("key bundle of a changed account not removed", "err", err)
		}
		c.send(lineNoAccountChanged)
		return true
	}
	if changed {
		c.logger().Info("key bundle published", "sha256", keydir.Hash(q.Bundle), "spk_id", b.SPKID, "spk_expires", b.SPKExpires)
		d.notify(c.user, c)
	}
	c.send(lineKeySaved)
	return true
}

// GETKEY user token: answered KEY user bundle or KEY user -, with user as
// asked. A name that may be a user's is watched from now on.
func (d *keyDirectory) fetch(c *session, user string) {
	bundle := ""
	d.mu.Lock()
	defer d.mu.Unlock()
	if wire.CheckUserName(user) == nil {
		d.watchLocked(c, wire.FoldName(user))
		bundle, _ = d.store.Get(user)
	}
	// The parser checked the user word; a stored bundle is a bundle word.
	c.send(c.format(wire.Key{User: user, Bundle: bundle}, lineNoServerError))
}

// watchLocked makes c a watcher of the name key, unless c watches
// maxKeyWatches names already. Must hold d.mu.
func (d *keyDirectory) watchLocked(c *session, key string) {
	names := d.watching[c]
	if _, ok := names[key]; ok {
		return
	}
	if len(names) >= maxKeyWatches {
		c.logger().Debug("key not watched: the session watches the most names it may", "max", maxKeyWatches)
		return
	}
	if names == nil {
		names = make(map[string]struct{})
		d.watching[c] = names
	}
	names[key] = struct{}{}
	w := d.watchers[key]
	if w == nil {
		cur, _ := d.store.Get(key)
		w = &keyWatchers{sessions: make(map[*session]struct{}), sent: cur}
		d.watchers[key] = w
	}
	w.sessions[c] = struct{}{}
}

// notify tells the watchers of user (as registered), all but except (nil:
// none), that its bundle changed: KEYCHANGE user bundle, or user - once it
// has none. Safe on a nil d.
func (d *keyDirectory) notify(user string, except *session) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.watchers[wire.FoldName(user)]
	if w == nil {
		return
	}
	cur, _ := d.store.Get(user)
	if cur == w.sent {
		return // a later notification already told them
	}
	w.sent = cur
	line, err := wire.Format(wire.KeyChange{User: user, Bundle: cur})
	if err != nil { // cannot happen: a registered name and a stored bundle
		d.log.Error("key change cannot be sent", "user", user, "err", err)
		return
	}
	for s := range w.sessions {
		if s != except {
			s.send(line)
		}
	}
}

// leave forgets what c watches; called when c ends. Safe on a nil d.
func (d *keyDirectory) leave(c *session) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for key := range d.watching[c] {
		if w := d.watchers[key]; w != nil {
			delete(w.sessions, c)
			if len(w.sessions) == 0 {
				delete(d.watchers, key)
			}
		}
	}
	delete(d.watching, c)
}

// dropKey removes the bundle of a deleted account and tells its watchers.
// Safe on a nil d.
func (d *keyDirectory) dropKey(name string) error {
	if d == nil {
		return nil
	}
	removed, err := d.store.Remove(name)
	if removed {
		d.notify(name, nil)
	}
	return err
}
