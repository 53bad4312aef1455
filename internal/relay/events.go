package relay

// Events receives what the server does, for metrics. Its methods are
// called on the sessions' goroutines, often concurrently, and must return
// at once; they must not call back into the Server. Config.Events nil
// means nobody listens.
type Events interface {
	// ConnAccepted: a TCP connection passed the connection caps.
	ConnAccepted()
	// ConnRefused: a TCP connection was closed at accept; reason is one
	// of the Refused* constants.
	ConnRefused(reason string)
	// LoggedIn: a session logged in, by LoginAuth or LoginSignUp.
	LoggedIn(how string)
	// LoginRefused: an AUTH or PUT was refused; reason is one of the
	// Refused* constants.
	LoginRefused(reason string)
	// Relayed: one message was queued for its recipients; kind is one of
	// the Kind* constants. A direct message counts once however many
	// sessions its target has; each carbon copy counts as KindCarbon.
	Relayed(kind string)
	// SlowConsumer: a session was dropped because its queue overflowed.
	SlowConsumer()
	// Uploaded: a file of size bytes was committed to the spool.
	Uploaded(size int64)
	// Sent: a queued file of size bytes was written to its recipient.
	Sent(size int64)
}

// How a session logged in (Events.LoggedIn).
const (
	LoginAuth   = "auth"
	LoginSignUp = "signup"
)

// Why a connection or log-in was refused (Events.ConnRefused,
// Events.LoginRefused). The values are stable: metrics label by them.
const (
	RefusedMaxConns        = "max_conns"          // the connection cap
	RefusedMaxConnsPerIP   = "max_conns_per_ip"   // the per-address connection cap
	RefusedBadCredentials  = "bad_credentials"    // unknown user or wrong password
	RefusedThrottled       = "throttled"          // failed log-ins per address or per account
	RefusedLoginTimeout    = "login_timeout"      // the log-in phase timed out
	RefusedSignUpClosed    = "signup_closed"      // --signup closed
	RefusedSignUpThrottled = "signup_throttled"   // sign-ups per address
	RefusedNameTaken       = "name_taken"         // sign-up of an existing name
	RefusedInvalid         = "invalid_credential" // sign-up with a name or password that breaks the rules
)

// Kinds of relayed messages (Events.Relayed).
const (
	KindDirect = "dm"
	KindGroup  = "group"
	KindCarbon = "carbon"
)

// noEvents is the Events of a server nobody watches.
type noEvents struct{}

func (noEvents) ConnAccepted()       {}
func (noEvents) ConnRefused(string)  {}
func (noEvents) LoggedIn(string)     {}
func (noEvents) LoginRefused(string) {}
func (noEvents) Relayed(string)      {}
func (noEvents) SlowConsumer()       {}
func (noEvents) Uploaded(int64)      {}
func (noEvents) Sent(int64)          {}
