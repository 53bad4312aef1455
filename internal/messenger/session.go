package messenger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"

	"sslmessager/internal/wire"
)

// Options shape an interactive session.
type Options struct {
	// Target is the first user messages go to; empty asks "target: ".
	Target string
	// Color shows group messages in green.
	Color bool
	// NoTimestamps drops the "[15:04:05] " before messages.
	NoTimestamps bool
	// Terminal says in and out are a terminal already in raw mode: input is
	// read through a term.Terminal, so incoming messages never garble the
	// line being typed. Otherwise input is read as plain lines (pipes).
	Terminal bool
	// Width and Height are the terminal size in Terminal mode (0: 80x24).
	Width, Height int
	// Now is the clock for timestamps (nil: time.Now).
	Now func() time.Time
	// QuitTimeout is how long quitting waits for END <end accepted>
	// (0: QuitTimeout).
	QuitTimeout time.Duration
	// Downloads is the directory :download: saves files into, created
	// (0700) when needed ("": DefaultDownloads).
	Downloads string
	// Progress receives transfer progress bars; nil shows none. The client
	// binary passes stderr when it is a terminal.
	Progress io.Writer
	// ConfigDir is where the client keeps what it remembers between
	// sessions: the mute lists (mute.go) and which offline messages were
	// shown (offline.go). "" remembers nothing; the client binary passes
	// --config-dir or DefaultConfigDir().
	ConfigDir string
	// Group starts the session in group chat (RunReconnecting restores
	// it this way after a reconnect).
	Group bool
	// Suspend, in Terminal mode, is called when the user types Ctrl-Z
	// (raw mode turns it into a plain byte). It should restore the
	// terminal, stop the process and make the terminal raw again once it
	// continues; the prompt and the line being typed are then redrawn.
	// nil: Ctrl-Z is ignored.
	Suspend func()
	// Resize, in Terminal mode, receives the new size after the terminal
	// was resized; the line being typed is laid out again for it.
	Resize <-chan TermSize
	// Keys are the user's end-to-end keys on this server (OpenKeys); nil:
	// every message is plaintext, as with a server without a key
	// directory (e2e.go).
	Keys *Keys
	// E2E is the end-to-end policy (--e2e): E2EPrefer, E2ERequire or
	// E2EOff.
	E2E E2EPolicy
}

// TermSize is a terminal size in columns and rows.
type TermSize struct{ Width, Height int }

// session is the state of one Run.
type session struct {
	c      *Conn
	opts   Options
	out    *printer
	in     lineInput
	term   *term.Terminal // nil in plain mode
	render renderer

	// Owned by the input loop.
	target string
	group  bool

	lastMu   sync.Mutex
	lastSent string // target of the last direct message, for CNT lines

	// Scripts (plain mode): what was not delivered, and whether lines were
	// sent since the server last answered everything (sync.go).
	undelivered atomic.Int64 // input lines refused here or by the server
	unsynced    bool         // input loop only

	// File transfer (files.go).
	downloads   string
	sendq       *sendQueue      // confirmations and repeated gets
	fileMu      sync.Mutex      // guards upAnswers and dlEnd
	upAnswers   chan wire.Query // answers for the upload in progress, or nil
	dlEnd       chan struct{}   // closed when the download in progress ends
	uploading   atomic.Bool     // an upload holds the write lock
	downloading atomic.Bool     // :download: sent, final notice not yet seen
	dl          *downloader     // receiver only: the download in progress
	stored      *storedMessages // offline messages shown and to confirm (offline.go)
	cancel      chan struct{}   // closed when ctx ends: an upload stops

	// Account commands, ping, mute and export (account.go, mute.go,
	// export.go).
	replyMu  sync.Mutex
	replies  chan wire.Query // guarded by replyMu: where the receiver hands OK, NO and PONG, or nil
	deleting atomic.Bool     // :delete_account: sent, its answer not yet seen
	pingSeq  uint64          // input loop only: the last ping's nonce
	mutes    *muteList
	hist     history
	admin    adminState  // the admin role and :admin: requests (admin.go)
	e2e      *e2eSession // end-to-end encryption (e2e.go)

	keptMu sync.Mutex
	kept   kept // guarded by keptMu: target and group chat, for a reconnect

	quitting    atomic.Bool   // Quit was sent (or is about to be)
	endAccepted chan struct{} // closed by the receiver on END <end accepted>
	recvGone    chan struct{} // closed when the receiver returns
	done        chan struct{} // closed when Run returns
}

// Run is the interactive session on a logged-in connection. It starts two
// goroutines: the receiver, which reads server lines and prints them to
// out (and reads downloaded files), and the input loop, which reads lines
// from in and sends them (it is the only writer to the connection, apart
// from the Quit that Run sends itself when ctx ends and the send queue that
// writes the receiver's file confirmations; see files.go).
//
// Right after it starts, Run asks the server for carbons (CMD <carbons>):
// the direct messages this user sends from its other sessions are shown
// as "[15:04:05] you → bob (other session): text". With sslm/2 it also
// asks for pushes (PUSH): a file uploaded to the user while the session
// runs is saved into Downloads as it arrives, as :download: would.
//
// Input lines are messages to the current target (or to the group in group
// chat), or commands such as :quit: (see :help:). End of input quits like
// :quit:. Run returns nil after a quit the server confirmed (or did not
// answer within QuitTimeout), a *ClosedError or another error when the
// server ended the session or the connection broke, and ctx.Err() when ctx
// ended. In plain mode (not Terminal) a session that ended as asked
// returns an *UndeliveredError when input lines were not delivered (see
// sync.go). Run closes the connection before it returns.
//
// When the server ends the session while the input loop is blocked reading
// in, Run returns at once; that goroutine then ends at its next line or
// when in is closed, touching neither the connection nor out.
func (c *Conn) Run(ctx context.Context, in io.Reader, out io.Writer, opts Options) error {
	if c.token == "" {
		return errors.New("not logged in")
	}
	opts = opts.withDefaults()
	sc := newScreen(in, out, opts)
	defer sc.close()
	err, _ := c.run(ctx, sc, sc.in, opts)
	return err
}

// withDefaults fills in the zero fields that have defaults.
func (opts Options) withDefaults() Options {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.QuitTimeout <= 0 {
		opts.QuitTimeout = QuitTimeout
	}
	if opts.Downloads == "" {
		opts.Downloads = DefaultDownloads
	}
	return opts
}

// kept is what a reconnect restores: the target and group chat.
type kept struct {
	target string
	group  bool
}

// run is one session of Run or RunReconnecting on the screen sc, reading
// its lines from in. It returns what ended it and the target and group
// chat at that moment. It closes c before it returns; sc stays open.
func (c *Conn) run(ctx context.Context, sc *screen, in lineInput, opts Options) (error, kept) {
	s := &session{
		c:           c,
		opts:        opts,
		render:      renderer{color: opts.Color, timestamps: !opts.NoTimestamps, now: opts.Now},
		downloads:   opts.Downloads,
		sendq:       newSendQueue(c),
		cancel:      make(chan struct{}),
		endAccepted: make(chan struct{}),
		recvGone:    make(chan struct{}),
		done:        make(chan struct{}),
		out:         sc.out,
		in:          in,
		term:        sc.term,
		kept:        kept{target: opts.Target, group: opts.Group},
	}
	s.initMutes()
	s.e2e = newE2ESession(opts, c)
	defer s.endE2E()
	// Copies of what this user sends from its other sessions are shown
	// here too (CARBON lines); the server sends them only on request.
	opening := []wire.Query{wire.Carbons{Token: c.token}}
	// Files uploaded to us from now on arrive as they are uploaded
	// (stream.go); a server without sslm/2 knows no such query.
	if c.ext {
		opening = append(opening, wire.Push{Token: c.token})
	}
	if opts.Group {
		// A new session starts outside group chat: toggle it back on.
		opening = append(opening, wire.Group{Token: c.token})
		s.group = true
	}
	// One write for all: a server that has just ended the session (and
	// sent END) still takes the first write after it, and the receiver
	// then shows its reason; a second write would fail first.
	if err := c.sendAll(opening...); err != nil {
		c.Close()
		return err, s.kept
	}
	go s.sendq.run(s.done)
	s.stored = newStoredMessages(storedPath(opts.ConfigDir, c.addr, c.user), s.out,
		func(seq uint64) { s.sendq.push(wire.AckMsg{Seq: seq, Token: c.token}) })
	go s.stored.run(s.done)

	recvDone := make(chan error, 1)
	inputDone := make(chan error, 1)
	go func() {
		err := guard(s.receive)
		close(s.recvGone)
		recvDone <- err
	}()
	go func() { inputDone <- guard(s.inputLoop) }()

	var err error
	select {
	case err = <-recvDone:
		if s.quitting.Load() {
			// The input loop is finishing its quit; let it.
			select {
			case <-inputDone:
			case <-time.After(opts.QuitTimeout):
			}
		}
	case err = <-inputDone:
		c.Close()
		if rerr := <-recvDone; err != nil {
			var ce *ClosedError
			if errors.As(rerr, &ce) {
				err = rerr // the server's reason explains the failed write
			}
		} else if rerr != nil {
			err = rerr
		}
	case <-ctx.Done():
		s.quitting.Store(true)
		close(s.cancel)
		if s.uploading.Load() {
			// An upload owns the stream until its last byte: no quit can
			// be sent politely. The server drops the partial file.
			c.Close()
		}
		s.stored.save()
		s.sendq.flush()
		if c.send(wire.Quit{Token: c.token}) == nil && !s.downloading.Load() {
			// (During a download the server would answer only after
			// the last file; what is not saved stays queued.)
			select {
			case <-s.recvGone:
			case <-time.After(opts.QuitTimeout):
			}
			s.stored.save() // as in quit: what arrived meanwhile is recorded
		}
		c.Close()
		<-recvDone
		err = ctx.Err()
	}
	if n := s.undelivered.Load(); err == nil && s.term == nil && n > 0 {
		err = &UndeliveredError{Lines: int(n)}
	}
	c.Close()
	close(s.done)
	s.keptMu.Lock()
	k := s.kept
	s.keptMu.Unlock()
	return err, k
}

// PanicError is a panic in a session goroutine, returned by Run so that
// the caller can restore the terminal before it reports it.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("internal error: %v\n%s", e.Value, e.Stack)
}

// guard runs f and turns a panic in it into a *PanicError.
func guard(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return f()
}

// stopped says whether Run has returned.
func (s *session) stopped() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// receive reads and prints server lines until the session ends.
func (s *session) receive() error {
	for {
		q, err := s.c.read()
		var pe *wire.ProtocolError
		if errors.As(err, &pe) {
			s.out.line("! unreadable line from the server: " + Sanitize(pe.Error()))
			continue
		}
		if err != nil {
			if s.quitting.Load() {
				return nil
			}
			return err
		}
		if h, ok := q.(wire.StreamHeader); ok { // a push (stream.go)
			if err := s.receivePush(h); err != nil {
				if s.quitting.Load() {
					return nil
				}
				s.out.line("! streamed file interrupted: " + Sanitize(err.Error()) + "; a file not saved stays on the server")
				return err
			}
			continue
		}
		if b, ok := q.(wire.Begin); ok {
			if err := s.receiveFiles(b.Count); err != nil {
				if s.quitting.Load() {
					return nil
				}
				s.out.line("! download interrupted: " + Sanitize(err.Error()) + "; files not saved stay on the server")
				return err
			}
			continue
		}
		if done, err := s.handleServer(q); done || err != nil {
			return err
		}
	}
}

// handleServer acts on one line from the server other than BEGIN, in the
// receiver; the downloader hands it the lines that arrive between two
// files. done reports that the session is over (with err nil when it ended
// as asked).
func (s *session) handleServer(q wire.Query) (done bool, err error) {
	if s.handleKeyLine(q) || s.show(q) || s.adminLine(q) {
		return false, nil
	}
	switch q := q.(type) {
	case wire.Check:
	case wire.OnlineList:
		names := "nobody"
		if len(q.Users) > 0 {
			names = Sanitize(strings.Join(q.Users, " "))
		}
		s.out.line("online: " + names)
	case wire.FileHeader, wire.Begin, wire.StreamHeader, wire.Chunk, wire.StreamEnd, wire.StreamAbort:
		s.out.line("! the server sent a file outside a download")
		return true, errors.New("the server sent a file outside a download")
	case wire.Notice:
		switch {
		case q.Text == wire.NoticeSendComplete && s.dl != nil:
			s.endRound()
		case q.Text != wire.NoticeSendComplete && s.deliverUploadAnswer(q):
		default:
			s.out.line("! " + Sanitize(q.Text))
		}
	case wire.Proceed:
		if !s.deliverUploadAnswer(q) {
			s.out.line("! unexpected PROCEED from the server")
		}
	case wire.Stop:
		if !s.deliverUploadAnswer(q) {
			s.out.line("! upload refused: " + Sanitize(q.Reason))
		}
	case wire.OK, wire.No, wire.Pong, wire.Members:
		if !s.deliverReply(q) {
			s.out.line("! unexpected answer from the server: " + Sanitize(q.Verb()))
		}
	case wire.End:
		if s.accountDeletedEnd(q) { // after :delete_account: (account.go)
			return true, nil
		}
		if s.quitting.Load() && !q.Fatal {
			if q.Reason == wire.ReasonEndAccepted {
				close(s.endAccepted)
			} else {
				s.out.line("! server closed the session: " + Sanitize(q.Reason))
			}
			return true, nil
		}
		s.out.line("! server closed the session: " + Sanitize(q.Reason))
		return true, &ClosedError{Reason: q.Reason, Fatal: q.Fatal}
	default:
		s.out.line("! unexpected line from the server: " + Sanitize(q.Verb()))
	}
	return false, nil
}

// show prints a line that is part of the conversation (a message, a
// carbon, a refusal of a message) and reports whether q was one. The
// receiver calls it for every line, and the downloader for the lines the
// server sends between two files.
func (s *session) show(q wire.Query) bool {
	if s.e2eShow(q) { // e2edm.go: encrypted words, tagged plaintext
		return true
	}
	switch q := q.(type) {
	case wire.Relay:
		if s.mutes.muted(q.Sender) {
			return true
		}
		s.out.line(s.render.message(q.Sender, q.Text, false))
		s.remember(q.Sender, q.Text)
	case wire.RelayGroup:
		if s.mutes.muted(q.Sender) {
			return true
		}
		s.out.line(s.render.message(q.Sender, q.Text, true))
		s.remember("[group] "+q.Sender, q.Text)
	case wire.Carbon:
		// Never muted: it is what this user sent itself.
		mine := wire.FoldName(q.Sender) == wire.FoldName(s.c.user)
		s.out.line(s.render.carbon(q.Sender, q.Target, q.Text, mine))
		from := "you"
		if !mine {
			from = q.Sender
		}
		s.remember(from+" → "+q.Target+" (other session)", q.Text)
	case wire.RelayQueued:
		s.showStored(q) // offline.go
	case wire.NotOnline:
		if s.foldCNT() { // the other parts of an encrypted text (e2edm.go)
			return true
		}
		s.lastMu.Lock()
		to := s.lastSent
		s.lastMu.Unlock()
		note, mark := "message not delivered: "+q.Reason, "! "
		switch {
		case q.Reason == wire.ReasonNotOnline && to != "":
			note = to + " is not online"
		case q.Reason == wire.ReasonQueued && to != "":
			note, mark = "queued for "+to+" (offline)", ""
		}
		if q.Reason != wire.ReasonQueued {
			s.undelivered.Add(1)
		}
		s.out.line(mark + Sanitize(note))
		s.remember("!", note)
	default:
		return false
	}
	return true
}

// inputLoop reads input lines and acts on them until quit or end of input.
func (s *session) inputLoop() error {
	if err := s.publishKey(); err != nil { // e2e.go
		return err
	}
	s.target = s.opts.Target
	if s.target != "" {
		if err := wire.CheckUserName(s.target); err != nil {
			s.out.line("! target: " + err.Error())
			s.target = ""
		}
	}
	for s.target == "" {
		line, err := s.in.ask("target: ")
		if s.stopped() {
			return nil
		}
		if err != nil {
			return s.quit(err)
		}
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.EqualFold(line, ":quit:"):
			return s.quit(nil)
		case parseInput(line).kind == inputCommand:
			// A command runs (:new_target: NAME sets the target) or is
			// refused; it never becomes the target.
			quit, err := s.handle(line)
			if err != nil {
				return err
			}
			if quit {
				return s.quit(nil)
			}
		default:
			if err := wire.CheckUserName(line); err != nil {
				s.refused("! target: " + err.Error())
				continue
			}
			s.target = line
		}
	}
	s.updatePrompt()
	s.targetChanged() // e2e.go: the target's key and the prompt's state
	for {
		line, err := s.in.readLine()
		if s.stopped() {
			return nil
		}
		if errors.Is(err, errInputTooLong) {
			s.syncOutput()
			s.refused(fmt.Sprintf("! line not sent: longer than %d characters", wire.MaxTextRunes))
			continue
		}
		if err != nil {
			return s.quit(err)
		}
		quit, err := s.handle(line)
		if s.stopped() {
			return nil
		}
		if err != nil {
			return err
		}
		if quit {
			return s.quit(nil)
		}
	}
}

// quit sends Quit and waits up to QuitTimeout for END <end accepted>.
// readErr is why input ended: nil for :quit: and end of input.
func (s *session) quit(readErr error) error {
	if errors.Is(readErr, io.EOF) {
		readErr = nil
	}
	if s.term == nil {
		// Scripted use (:download: then end of input): let the download
		// finish, or its files would be saved but never confirmed. On a
		// terminal the user quits at once; what is not saved stays queued.
		s.fileMu.Lock()
		end := s.dlEnd
		s.fileMu.Unlock()
		if end != nil {
			select {
			case <-end:
			case <-s.recvGone:
			}
		}
	}
	s.settle()
	s.quitting.Store(true)
	s.stored.save() // offline messages shown: recorded and confirmed
	s.sendq.flush() // confirmations first, or the server keeps those files
	if err := s.c.send(wire.Quit{Token: s.c.token}); err == nil {
		t := time.NewTimer(s.opts.QuitTimeout)
		defer t.Stop()
		select {
		case <-s.endAccepted:
		case <-s.recvGone:
		case <-t.C:
			s.out.line("! the server did not confirm the quit")
		}
	}
	// Offline messages that arrived after the quit was sent were shown but
	// cannot be confirmed any more: record them, so that when the server
	// sends them again at the next log-in they are confirmed, not shown.
	s.stored.save()
	if readErr != nil {
		return &InputError{Err: readErr}
	}
	return nil
}

// InputError is Run's error when reading the input failed.
type InputError struct{ Err error }

func (e *InputError) Error() string { return "read input: " + e.Err.Error() }

func (e *InputError) Unwrap() error { return e.Err }

// handle acts on one input line. It reports whether the user quits, and
// an error only when the connection failed.
func (s *session) handle(line string) (quit bool, err error) {
	in := parseInput(line)
	switch in.kind {
	case inputEmpty:
		return false, nil
	case inputMessage:
		return false, s.sendText(in.text)
	}
	// What the command prints follows the answers to the lines before.
	s.syncOutput()
	defer func() { s.unsynced = true }()
	cmd := lookupCommand(in.name)
	switch {
	case cmd == nil:
		s.refused("unknown command :" + Sanitize(in.name) + ":, try :help:")
		return false, nil
	case in.arg != "" && !cmd.takesArg:
		s.refused("! :" + cmd.name + ": takes no argument")
		return false, nil
	}
	return cmd.run(s, in.arg)
}

// sendText sends a message to the target, or to the group in group chat.
func (s *session) sendText(text string) error {
	if err := checkText(text); err != nil {
		s.syncOutput()
		s.refused("! " + err.Error())
		return nil
	}
	var q wire.Query
	label := "you → [group]"
	if s.group {
		if handled, err := s.sendGroupE2E(text); handled || err != nil { // e2egroup.go
			return err
		}
		q = wire.GroupMsg{Sender: s.c.user, Text: text, Token: s.c.token}
	} else {
		handled, tag, err := s.sendDirect(s.target, text) // e2edm.go
		if handled || err != nil {
			return err
		}
		s.lastMu.Lock()
		s.lastSent = s.target
		s.lastMu.Unlock()
		q = wire.Msg{Target: s.target, Sender: s.c.user, Text: text, Token: s.c.token}
		label = "you → " + s.target
		if tag != "" {
			label += " " + tag
		}
	}
	// Into the history first: the server's answer (CNT) may be read
	// before send returns, and must follow the message there.
	s.remember(label, text)
	err := s.c.send(q)
	if errors.Is(err, wire.ErrField) {
		s.syncOutput()
		s.refused("! message not sent: " + Sanitize(err.Error()))
		s.remember("!", "message not sent: "+err.Error())
		return nil
	}
	s.unsynced = true
	return err
}

// updatePrompt shows the target (or the group) in terminal mode.
func (s *session) updatePrompt() {
	s.keptMu.Lock()
	s.kept = kept{target: s.target, group: s.group}
	s.keptMu.Unlock()
	if s.group {
		p := "[group]> "
		if s.term != nil && s.opts.Color {
			// The prompt and the line typed after it are green, like
			// the group lines of others; every printed line resets it.
			p = colorGreen + p
		}
		s.in.setPrompt(p)
	} else {
		s.in.setPrompt(s.promptFor(s.target)) // e2e.go: with the encryption state
	}
}
