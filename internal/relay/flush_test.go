package relay_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"sslmessager/internal/relay"
	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

// Tests of the reader's flush: a reader writes the lines it relayed to
// other sessions itself when it can do so without waiting, and leaves them
// to the recipient's writer goroutine otherwise (PROTOCOL.md, "Who writes
// to a socket"). relay.FlushCounts tells which path ran.

// readerFlushed fails the test unless readers wrote some relayed lines
// themselves since before (a FlushCounts result).
func readerFlushed(t *testing.T, h *relaytest.Server, before uint64) {
	t.Helper()
	byReader, handedOff := relay.FlushCounts(h.Server)
	if byReader <= before {
		t.Fatalf("no reader flush (by reader %d, handed off %d): the reader path did not run", byReader, handedOff)
	}
	t.Logf("flushes by readers %d, handed to writer goroutines %d", byReader-before, handedOff)
}

// TestReaderFlushStillDropsSlowConsumer: bob stops reading; alice sends
// him one line per write, so her reader writes to bob's socket itself
// until it is full. The reader never waits for it: carol's chat with
// alice goes on, bob's queue overflows and he is dropped with the slow
// consumer line, and alice, the producer, stays.
func TestReaderFlushStillDropsSlowConsumer(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{
		Config: func(c *relay.Config) {
			c.MaxQueueBytes = 2 * wire.MaxLineBytes
			c.StallWait = 2 * time.Millisecond
		},
		Wrap: func(l net.Listener) net.Listener { return smallBuffers{l} },
	})
	bob := h.DialWith(t, nil, func(c *net.TCPConn) { c.SetReadBuffer(4096) })
	bob.SignUp("bob")
	alice, carol := h.Dial(t), h.Dial(t)
	alice.SignUp("alice")
	carol.SignUp("carol")
	before, _ := relay.FlushCounts(h.Server)

	text := strings.Repeat("slow ", 200)
	sent := 0
	start := time.Now()
	for ; sent < 20000 && slices.Contains(h.Online(), "bob"); sent++ {
		alice.Msg("bob", text)
		if sent%100 == 0 {
			// alice's reader is never stuck in bob's socket: carol's
			// line to her arrives while bob reads nothing.
			carol.Msg("alice", fmt.Sprint("ping ", sent))
			want := wire.Relay{Target: "alice", Sender: "carol", Text: fmt.Sprint("ping ", sent)}
			for {
				q := nextNotCheck(alice)
				if q == want {
					break
				}
				if _, ok := q.(wire.NotOnline); !ok {
					t.Fatalf("alice got %#v, want %#v", q, want)
				}
			}
		}
	}
	checkFor(t, "bob dropped", 10*time.Second, func() bool { return !slices.Contains(h.Online(), "bob") })
	t.Logf("bob was dropped after %d lines (%v)", sent, time.Since(start))
	readerFlushed(t, h, before)
	if !slices.Contains(h.Online(), "alice") {
		t.Fatal("alice, the producer, was dropped")
	}
	var last wire.Query
	for {
		q, err := bob.Next()
		if err != nil {
			break
		}
		last = q
	}
	if want := (wire.End{Fatal: true, Reason: wire.ReasonSlowConsumer}); !reflect.DeepEqual(last, want) {
		t.Fatalf("bob's last line %#v, want %#v", last, want)
	}
}

// TestReaderFlushFloodSlowsFlooder: alice floods bob, one line per write
// and in bursts, far faster than bob reads and with 20 times his queue's
// cap in all. The flood must pause alice (her reader waits while bob's
// queue is above its high-water mark) rather than cost bob his
// connection: bob, who reads steadily, gets every line in order.
func TestReaderFlushFloodSlowsFlooder(t *testing.T) {
	const queueCap = 2 * wire.MaxLineBytes
	h := relaytest.Start(t, relaytest.Options{
		Config: func(c *relay.Config) {
			c.MaxQueueBytes = queueCap
			c.StallWait = 10 * time.Second
		},
		Wrap: func(l net.Listener) net.Listener { return bufferSize{l, 64 << 10} },
	})
	// Socket buffers far below what alice sends: without the pause her
	// flood would overflow bob's queue.
	bob := h.DialWith(t, nil, func(c *net.TCPConn) { c.SetReadBuffer(64 << 10) })
	bob.SignUp("bob")
	alice := h.DialWith(t, nil, func(c *net.TCPConn) { c.SetWriteBuffer(64 << 10) })
	alice.SignUp("alice")
	before, _ := relay.FlushCounts(h.Server)

	text := func(i int) string { return fmt.Sprintf("%05d ", i) + strings.Repeat("f", 1000) }
	n := 20 * queueCap / len(text(0))
	done := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		for i := 0; i < n; {
			if i%3 == 0 { // a burst of lines in one write
				var b strings.Builder
				for k := 0; k < 20 && i < n; k++ {
					q, _ := wire.Format(wire.Msg{Target: "bob", Sender: "alice", Text: text(i), Token: alice.Token})
					b.Write(q)
					i++
				}
				alice.Raw(b.String())
				continue
			}
			alice.Msg("bob", text(i))
			i++
		}
		done <- time.Since(start)
	}()
	// bob reads steadily but slowly: about 1 MB/s, under what alice sends.
	for i := range n {
		q := nextNotCheck(bob)
		if want := (wire.Relay{Target: "bob", Sender: "alice", Text: text(i)}); q != want {
			t.Fatalf("line %d: got %.60v", i, q)
		}
		if i%4 == 3 {
			time.Sleep(4 * time.Millisecond)
		}
	}
	took := <-done
	t.Logf("alice's %d lines (%d KB, %d x bob's queue cap) took her %v to send", n, n*len(text(0))>>10, n*len(text(0))/queueCap, took)
	// bob's reading takes over 2.5 s; the sockets hold a few hundred KB.
	if took < time.Second {
		t.Errorf("alice sent everything in %v: her reader was not paused for bob", took)
	}
	readerFlushed(t, h, before)
	if !slices.Contains(h.Online(), "bob") || !slices.Contains(h.Online(), "alice") {
		t.Fatalf("online now: %v, want alice and bob", h.Online())
	}
}

// TestReaderFlushNoLineInsideDownload: bob downloads two files (the
// original's CMD <get> and our CMD <get ack>) and reads them slowly while
// carol sends him a line per write before, during and after the download.
// No line lands inside the file bytes: both files arrive byte-exact, the
// lines come only outside them (with CMD <get>, none between BEGIN and
// CMD <file send complete>), every line once and in order.
func TestReaderFlushNoLineInsideDownload(t *testing.T) {
	for _, ack := range []bool{false, true} {
		t.Run(fmt.Sprint("ack=", ack), func(t *testing.T) {
			h := relaytest.Start(t, relaytest.Options{})
			alice, bob := twoUsers(t, h)
			carol := h.Dial(t)
			carol.SignUp("carol")
			big := randomBytes(t, 8<<20)
			alice.Upload("bob", "big.bin", big)
			alice.Upload("bob", "small.bin", []byte("ENDF and a line\r\n"))
			before, _ := relay.FlushCounts(h.Server)

			const n = 600
			text := func(i int) string { return fmt.Sprintf("%04d", i) + " ENDF RELAY bob carol fake" }
			getSent := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				for i := range n {
					if i == 50 {
						<-getSent
					}
					carol.Msg("bob", text(i))
					if i%10 == 0 {
						time.Sleep(time.Millisecond)
					}
				}
			})
			var lines []wire.Query
			for len(lines) < 50 {
				lines = append(lines, nextNotCheck(bob))
			}
			bob.Send(wire.Get{Ack: ack, Token: bob.Token})
			close(getSent)
			var files []relaytest.File
			inside := 0 // lines between BEGIN and CMD <file send complete>
			for stage := 0; stage < 2; {
				q := nextNotCheck(bob)
				switch q := q.(type) {
				case wire.Begin:
					if q.Count != 2 {
						t.Fatalf("BEGIN %d, want 2", q.Count)
					}
					stage = 1
				case wire.FileHeader:
					data := make([]byte, q.Size)
					for off := 0; off < len(data); {
						bob.Conn.SetReadDeadline(time.Now().Add(30 * time.Second))
						k, err := io.ReadFull(bob.R, data[off:min(off+512<<10, len(data))])
						if err != nil {
							t.Fatalf("file data after %d bytes: %v", off, err)
						}
						off += k
						time.Sleep(2 * time.Millisecond)
					}
					if q := nextNotCheck(bob); q != (wire.FileEnd{}) {
						t.Fatalf("after the file data: %#v", q)
					}
					files = append(files, relaytest.File{Header: q, Data: data})
				case wire.Notice:
					if q.Text != wire.NoticeSendComplete {
						t.Fatalf("got %#v", q)
					}
					stage = 2
				default:
					if stage == 1 {
						inside++
					}
					lines = append(lines, q)
				}
			}
			wg.Wait()
			for len(lines) < n {
				lines = append(lines, nextNotCheck(bob))
			}
			for i, q := range lines {
				if want := (wire.Relay{Target: "bob", Sender: "carol", Text: text(i)}); q != want {
					t.Fatalf("line %d: got %.80v", i, q)
				}
			}
			if len(files) != 2 || !bytes.Equal(files[0].Data, big) || string(files[1].Data) != "ENDF and a line\r\n" {
				t.Fatalf("files: %d, first byte-exact %v", len(files), len(files) > 0 && bytes.Equal(files[0].Data, big))
			}
			if !ack && inside > 0 {
				t.Fatalf("%d lines inside an original CMD <get> download", inside)
			}
			t.Logf("%d of %d lines between BEGIN and the end of the download", inside, n)
			readerFlushed(t, h, before)
		})
	}
}

// TestReaderFlushKeepsOrderPerSender: three senders send bob, who has two
// sessions, 400 lines each, one per write or in bursts of several per
// write, all at once. Each of bob's sessions gets each sender's lines once
// and in order, and so do the carbons of alice's second session.
func TestReaderFlushKeepsOrderPerSender(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	bob1, bob2 := h.Dial(t), h.Dial(t)
	bob1.SignUp("bob")
	bob2.LogIn("bob")
	alice1, alice2 := h.Dial(t), h.DialExt(t)
	alice1.SignUp("alice")
	alice2.LogIn("alice")
	alice2.Send(wire.Carbons{Token: alice2.Token})
	alice2.Send(wire.Online{Token: alice2.Token}) // answered once carbons are on
	if _, ok := nextNotCheck(alice2).(wire.OnlineList); !ok {
		t.Fatal("want the online list")
	}
	carol, dave := h.Dial(t), h.Dial(t)
	carol.SignUp("carol")
	dave.SignUp("dave")
	before, _ := relay.FlushCounts(h.Server)

	const n = 400
	senders := []*relaytest.Client{alice1, carol, dave}
	var wg sync.WaitGroup
	for k, c := range senders {
		wg.Go(func() {
			for i := 0; i < n; {
				burst := 1
				if k == 1 {
					burst = 1 + i%7 // carol writes several lines at a time
				}
				var b strings.Builder
				for ; burst > 0 && i < n; burst-- {
					q, _ := wire.Format(wire.Msg{Target: "bob", Sender: c.User, Text: strconv.Itoa(i), Token: c.Token})
					b.Write(q)
					i++
				}
				c.Raw(b.String())
			}
		})
	}
	check := func(c *relaytest.Client, want int, key func(wire.Query) (string, string, bool)) {
		next := map[string]int{}
		for got := 0; got < want; got++ {
			q := nextNotCheck(c)
			sender, text, ok := key(q)
			if !ok {
				t.Fatalf("%s got %#v", c.User, q)
			}
			if text != strconv.Itoa(next[sender]) {
				t.Fatalf("%s: from %s got %q, want %d", c.User, sender, text, next[sender])
			}
			next[sender]++
		}
	}
	relayed := func(q wire.Query) (string, string, bool) {
		r, ok := q.(wire.Relay)
		return r.Sender, r.Text, ok && r.Target == "bob"
	}
	var rg sync.WaitGroup
	rg.Go(func() { check(bob1, 3*n, relayed) })
	rg.Go(func() { check(bob2, 3*n, relayed) })
	rg.Go(func() {
		check(alice2, n, func(q wire.Query) (string, string, bool) {
			c, ok := q.(wire.Carbon)
			return c.Sender, c.Text, ok && c.Target == "bob" && c.Sender == "alice"
		})
	})
	wg.Wait()
	rg.Wait()
	readerFlushed(t, h, before)
}

// TestReaderFlushStress mixes direct messages, group messages, carbons
// and downloads across 12 sessions of 8 users (four users with two
// sessions) for a few thousand lines, all senders at once, one line or a
// burst per write. Every session then checks what it received: each
// (sender session, target) stream once, complete and in order, and every
// file byte-exact.
func TestReaderFlushStress(t *testing.T) {
	h := relaytest.Start(t, relaytest.Options{})
	const users = 8
	type sess struct {
		c   *relaytest.Client
		idx int
		mu  sync.Mutex // c's writes: the sender and the reader (ACKF)
		// filled by the reader
		got   map[string][]int // stream key -> sequence numbers in order of arrival
		files int
	}
	var ss []*sess
	name := func(u int) string { return fmt.Sprintf("user%d", u) }
	for u := range users {
		for k := range 1 + btoi(u < 4) {
			var c *relaytest.Client
			if u%2 == 0 {
				c = h.DialExt(t) // our client: may ask for carbons
			} else {
				c = h.Dial(t)
			}
			if k == 0 {
				c.SignUp(name(u))
			} else {
				c.LogIn(name(u))
			}
			ss = append(ss, &sess{c: c, idx: len(ss), got: map[string][]int{}})
		}
	}
	// Files for the single-session users 4..7, to download mid-stream:
	// user4 and user6 with CMD <get ack>, user5 and user7 with CMD <get>.
	up := h.Dial(t)
	up.SignUp("uploader")
	fileData := map[string][]byte{}
	for u := 4; u < users; u++ {
		for f := range 2 {
			data := randomBytes(t, 256<<10+f*1000+u)
			fn := fmt.Sprintf("%s-%d.bin", name(u), f)
			fileData[fn] = data
			up.Upload(name(u), fn, data)
		}
	}
	carbons := map[int]bool{}
	for _, s := range ss {
		s.c.Send(wire.Group{Token: s.c.Token})
		if s.c.Conn.ConnectionState().NegotiatedProtocol == wire.ALPN && s.idx%3 != 0 {
			s.c.Send(wire.Carbons{Token: s.c.Token})
			carbons[s.idx] = true
		}
		s.c.Send(wire.Online{Token: s.c.Token}) // answered after the two above
		if _, ok := nextNotCheck(s.c).(wire.OnlineList); !ok {
			t.Fatal("want the online list")
		}
	}
	if got := h.Stats().GroupMembers; got != len(ss) {
		t.Fatalf("%d group members, want %d", got, len(ss))
	}
	before, _ := relay.FlushCounts(h.Server)

	// Each session sends perSession lines: direct messages to another
	// user (stream "d <from> <to>"), group messages ("g <from>"), and,
	// for users 4..7, one CMD <get> half-way.
	const perSession = 300
	userOf := func(s *sess) int {
		n, _ := strconv.Atoi(strings.TrimPrefix(s.c.User, "user"))
		return n
	}
	type plan struct{ dm, group map[string]int }
	plans := make([]plan, len(ss))
	var wg sync.WaitGroup
	for _, s := range ss {
		p := plan{dm: map[string]int{}, group: map[string]int{}}
		plans[s.idx] = p
		rng := rand.New(rand.NewPCG(uint64(s.idx), 7))
		lines := make([][]byte, 0, perSession)
		getAt := -1
		if u := userOf(s); u >= 4 {
			getAt = perSession / 2
		}
		for i := range perSession {
			var q wire.Query
			if rng.IntN(3) == 0 {
				key := fmt.Sprintf("g %d", s.idx)
				q = wire.GroupMsg{Sender: s.c.User, Text: fmt.Sprintf("%s %d", key, p.group[key]), Token: s.c.Token}
				p.group[key]++
			} else {
				to := rng.IntN(users - 1)
				if to >= userOf(s) {
					to++
				}
				key := fmt.Sprintf("d %d %s", s.idx, name(to))
				q = wire.Msg{Target: name(to), Sender: s.c.User, Text: fmt.Sprintf("%s %d", key, p.dm[key]), Token: s.c.Token}
				p.dm[key]++
			}
			if i == getAt {
				b, _ := wire.Format(wire.Get{Ack: userOf(s)%2 == 0, Token: s.c.Token})
				lines = append(lines, b)
			}
			b, _ := wire.Format(q)
			lines = append(lines, b)
		}
		wg.Go(func() {
			for i := 0; i < len(lines); {
				k := 1
				if rng.IntN(4) == 0 {
					k = 1 + rng.IntN(10)
				}
				k = min(k, len(lines)-i)
				s.mu.Lock()
				s.c.Raw(string(bytes.Join(lines[i:i+k], nil)))
				s.mu.Unlock()
				i += k
			}
		})
	}
	// What each session must receive.
	want := make([]map[string]int, len(ss))
	for _, r := range ss {
		w := map[string]int{}
		for _, s := range ss {
			for key, n := range plans[s.idx].dm {
				to := key[strings.LastIndexByte(key, ' ')+1:]
				switch {
				case to == r.c.User:
					w["RELAY "+key] = n
				case s.c.User == r.c.User && s != r && carbons[r.idx]:
					w["CARBON "+key] = n
				}
			}
			if s != r {
				for key, n := range plans[s.idx].group {
					w["RELAYG "+key] = n
				}
			}
		}
		want[r.idx] = w
	}
	total := func(w map[string]int) (n int) {
		for _, k := range w {
			n += k
		}
		return n
	}
	var rg sync.WaitGroup
	errs := make(chan error, len(ss))
	for _, r := range ss {
		rg.Go(func() {
			errs <- readStress(r.c, &r.mu, total(want[r.idx]), userOf(r) >= 4, r.got, fileData, &r.files)
		})
	}
	wg.Wait()
	rg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	lines := 0
	for _, r := range ss {
		for key, n := range want[r.idx] {
			seq := r.got[key]
			lines += len(seq)
			if len(seq) != n {
				t.Fatalf("%s (session %d): stream %q: %d lines, want %d", r.c.User, r.idx, key, len(seq), n)
			}
			for i, v := range seq {
				if v != i {
					t.Fatalf("%s (session %d): stream %q: line %d has number %d", r.c.User, r.idx, key, i, v)
				}
			}
		}
		for key := range r.got {
			if _, ok := want[r.idx][key]; !ok {
				t.Fatalf("%s (session %d): unexpected stream %q", r.c.User, r.idx, key)
			}
		}
		if u := userOf(r); u >= 4 && r.files != 2 {
			t.Fatalf("%s: %d files, want 2", r.c.User, r.files)
		}
	}
	t.Logf("%d sessions sent %d lines; %d lines received and checked", len(ss), len(ss)*perSession, lines)
	readerFlushed(t, h, before)
	checkFor(t, "every downloaded file confirmed or sent", 10*time.Second, func() bool {
		for u := 4; u < users; u++ {
			if left, _ := h.Spool.List(name(u), 0); len(left) != 0 {
				return false
			}
		}
		return true
	})
}

// bufferSize sets the server side's socket buffers of each accepted
// connection to size bytes.
type bufferSize struct {
	net.Listener
	size int
}

func (l bufferSize) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(l.size)
		tc.SetReadBuffer(l.size)
	}
	return c, err
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// readStress reads c's stream until it has n message lines (and, with
// download, the end of a download), counting each
// line under its stream key ("RELAY d 3 user5", "RELAYG g 2", "CARBON d 1
// user2") with its sequence number, and reading every download: files
// must match fileData; with CMD <get ack> each is confirmed with ACKF.
func readStress(c *relaytest.Client, mu *sync.Mutex, n int, download bool, got map[string][]int, fileData map[string][]byte, files *int) error {
	add := func(verb, text string) error {
		i := strings.LastIndexByte(text, ' ')
		v, err := strconv.Atoi(text[i+1:])
		if i < 0 || err != nil {
			return fmt.Errorf("%s: bad text %q", c.User, text)
		}
		key := verb + " " + text[:i]
		got[key] = append(got[key], v)
		return nil
	}
	var acks []string
	complete := false
	for seen := 0; seen < n || download && !complete; {
		c.Conn.SetReadDeadline(time.Now().Add(60 * time.Second))
		q, err := c.Next()
		if err != nil {
			return fmt.Errorf("%s after %d of %d lines: %w", c.User, seen, n, err)
		}
		switch q := q.(type) {
		case wire.Relay:
			err = add("RELAY", q.Text)
			seen++
		case wire.RelayGroup:
			err = add("RELAYG", q.Text)
			seen++
		case wire.Carbon:
			err = add("CARBON", q.Text)
			seen++
		case wire.Begin:
		case wire.FileHeader:
			data := make([]byte, q.Size)
			c.Conn.SetReadDeadline(time.Now().Add(60 * time.Second))
			if _, err := io.ReadFull(c.R, data); err != nil {
				return fmt.Errorf("%s: file data: %w", c.User, err)
			}
			if q2, err := c.Next(); err != nil || q2 != (wire.FileEnd{}) {
				return fmt.Errorf("%s: after the file data: %#v, %v", c.User, q2, err)
			}
			if !bytes.Equal(data, fileData[q.Name]) {
				return fmt.Errorf("%s: file %s not byte-exact", c.User, q.Name)
			}
			*files++
			acks = append(acks, q.ID)
		case wire.Notice:
			if q.Text != wire.NoticeSendComplete {
				return fmt.Errorf("%s: got %#v", c.User, q)
			}
			if strings.HasSuffix(c.User, "4") || strings.HasSuffix(c.User, "6") {
				mu.Lock()
				for _, id := range acks {
					c.Send(wire.AckFile{ID: id, Token: c.Token})
				}
				mu.Unlock()
			}
			acks, complete = nil, true
		default:
			return fmt.Errorf("%s: got %#v", c.User, q)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
