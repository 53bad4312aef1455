package relay_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"testing"
	"time"

	"sslmessager/internal/e2e"
	"sslmessager/internal/keydir"
	"sslmessager/internal/offline"
	"sslmessager/internal/relay"
	"sslmessager/internal/relay/relaytest"
	"sslmessager/internal/wire"
)

// FuzzSession logs in (or not) and sends arbitrary bytes: any verb, any
// words, any bytes, with TOKEN replaced by the session's token so that the
// fuzzer reaches every handler. Then it ends the session and reads until
// the server closes. It asserts: the server never panics (a panic would
// reach the log and close without END), every connection the server ends
// gets an END line last, the server lets go of every connection, session
// and goroutine, and the spool's accounting matches its files.
func FuzzSession(f *testing.F) { fuzzSession(f, "", sessionSeeds) }

// FuzzSessionExt is FuzzSession on connections that negotiated ALPN
// sslm/2, as our client does, with offline messages on: it reaches the
// extension queries (PING, PASSWD, DELACCT, ADMIN, ACKM) as well. The
// account "fuzz" gets its password back before every input, and is made
// again if an input deleted it.
func FuzzSessionExt(f *testing.F) {
	fuzzSession(f, wire.ALPN, append(slices.Clip(sessionSeeds), extSeeds...))
}

// FuzzSessionKeys is FuzzSessionExt on connections that negotiated ALPN
// sslm/3, with a key directory: it reaches SETKEY and GETKEY as well, with
// bundles that verify for "fuzz" and "peer", and tampered ones.
func FuzzSessionKeys(f *testing.F) {
	good := newBundle(f, "fuzz", week)
	seeds := append(slices.Clip(sessionSeeds), extSeeds...)
	seeds = append(seeds,
		"SETKEY "+good+" TOKEN \r\nGETKEY fuzz TOKEN \r\n",
		"GETKEY fuzz TOKEN \r\nSETKEY "+newBundle(f, "fuzz", week)+" TOKEN \r\nSETKEY "+good+" TOKEN \r\n",
		"SETKEY "+newBundle(f, "peer", week)+" TOKEN \r\n",
		"SETKEY "+newBundle(f, "fuzz", -time.Hour)+" TOKEN \r\n",
		"SETKEY "+newBundle(f, "fuzz", 100*24*time.Hour)+" TOKEN \r\n",
		"SETKEY "+good[:100]+"x"+good[101:]+" TOKEN \r\n",
		"SETKEY - TOKEN \r\nGETKEY - TOKEN \r\n",
		"GETKEY PEER TOKEN \r\nGETKEY help TOKEN \r\nGETKEY a.b TOKEN \r\n",
		"SETKEY "+good+" TOKEN \r\nDELACCT password-fuzz TOKEN \r\n",
		"GETKEY fuzz\x00 TOKEN \r\n",
	)
	fuzzSession(f, wire.ALPNKeys, seeds)
}

// extSeeds reach the sslm/2 queries.
var extSeeds = []string{
	"PING 1 TOKEN \r\n",
	"PING " + string(bytes.Repeat([]byte("n"), 40)) + " TOKEN \r\n",
	"PASSWD password-fuzz newpassword TOKEN \r\n",
	"PASSWD wrong-password newpassword TOKEN \r\n",
	"PASSWD password-fuzz short TOKEN \r\n",
	"DELACCT wrong-password TOKEN \r\n",
	"DELACCT password-fuzz TOKEN \r\n",
	"ADMIN online TOKEN \r\n",
	"ADMIN kick peer <x> TOKEN \r\n",
	"ACKM 99999999999 TOKEN \r\n",
	"MSG peer fuzz stored TOKEN \r\nMSG peer fuzz stored2 TOKEN \r\n",
}

var sessionSeeds = []string{
	"MSG peer fuzz hello TOKEN \r\n",
	"MSG <peer> fuzz hi TOKEN \r\n",
	"BEGINF a<b> <x> 3 TOKEN \r\nabcENDF TOKEN \r\n",
	"BEGINF name " + string(bytes.Repeat([]byte("x"), 70)) + " 1 TOKEN \r\nx",
	"BEGINF f.txt fuzz 5 TOKEN \r\nhelloENDF TOKEN \r\nCMD <get> TOKEN \r\n",
	"BEGINF f.txt peer TOKEN \r\ndata\r\nENDF TOKEN \r\n",
	"BEGINF f.txt fuzz 100 TOKEN \r\nshort",
	"CMD <get ack> TOKEN \r\nACKF 0123456789abcdef01234567 TOKEN \r\n",
	"CMD <group> TOKEN \r\nMSGG fuzz all TOKEN \r\nCMD <online> TOKEN \r\n",
	"CMD <carbons> TOKEN \r\nMSG fuzz fuzz self TOKEN \r\n",
	"MSG peer peer impersonate TOKEN \r\n",
	"MSG peer fuzz x wrongtoken \r\n",
	"ENDF TOKEN \r\n",
	"AUTH fuzz password-fuzz \r\n",
	"PUT x\x00y password-123 \r\n",
	"CMD <nope> TOKEN \r\n",
	"\xff\xfe\r\n",
	"MSG peer fuzz " + string(bytes.Repeat([]byte("\x1b"), 5000)) + " TOKEN \r\n",
	"END <user command> TOKEN \r\n",
}

// fuzzSession fuzzes sessions that negotiated the ALPN protocol proto
// ("" for none, as the original clients).
func fuzzSession(f *testing.F, proto string, seeds []string) {
	for _, s := range seeds {
		f.Add(true, []byte(s))
		f.Add(false, []byte(s))
	}
	opts := relaytest.Options{Config: func(c *relay.Config) {
		c.UploadIdleTimeout = 300 * time.Millisecond
		c.LoginTimeout = 2 * time.Second
		c.MaxFailedLogins = relay.NoLimit
		c.LoginBackoffMax = time.Nanosecond // wrong passwords in the input must not lock "fuzz" out
	}}
	if proto != "" {
		opts.Offline = &offline.Options{}
	}
	if proto == wire.ALPNKeys {
		opts.Keys = &keydir.Options{MaxChangesPerHour: keydir.NoLimit}
	}
	srv := relaytest.Start(f, opts)
	dial := func(t testing.TB) *relaytest.Client {
		switch proto {
		case wire.ALPNKeys:
			return srv.DialKeys(t)
		case wire.ALPN:
			return srv.DialExt(t)
		}
		return srv.Dial(t)
	}
	for _, u := range []string{"fuzz", "peer"} {
		c := srv.Dial(f)
		c.SignUp(u)
		c.Conn.Close()
	}
	idle := func(t testing.TB) {
		t.Helper()
		relaytest.CheckFor(t, 10*time.Second, func() error {
			if st := srv.Stats(); st != (relay.Stats{}) {
				return fmt.Errorf("server still holds %+v", st)
			}
			return nil
		})
	}
	idle(f)
	base := runtime.NumGoroutine()

	f.Fuzz(func(t *testing.T, login bool, input []byte) {
		if _, ok := srv.Accounts.Lookup("fuzz"); !ok {
			if _, err := srv.Accounts.Create("fuzz", "password-fuzz"); err != nil {
				t.Fatal(err)
			}
		} else if _, err := srv.Accounts.Authenticate("fuzz", "password-fuzz"); err != nil {
			if err := srv.Accounts.SetPassword("fuzz", "password-fuzz"); err != nil { // an input changed it
				t.Fatal(err)
			}
		}
		c := dial(t)
		if login {
			c.LogIn("fuzz")
		}
		in := bytes.ReplaceAll(input, []byte("TOKEN"), []byte(c.Token))
		// End whatever the input left open: a line, then the session.
		in = append(in, "\r\nEND <user command> "+c.Token+" \r\n"...)
		c.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		c.Conn.Write(in) // the server may close before it has read it all
		c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(io.LimitReader(c.Conn, 64<<20))
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the server kept the connection open 10 s after the session was ended; got %.300q", got)
		}
		if !endsWithEnd(got) {
			t.Fatalf("the server closed without an END line last: %.300q (err %v)", tail(got), err)
		}
		c.Conn.Close()
		idle(t)
		for _, u := range []string{"fuzz", "peer"} {
			metas, err := srv.Spool.List(u, 0)
			if err != nil {
				t.Fatal(err)
			}
			var sum int64
			for _, m := range metas {
				sum += m.Size
			}
			if used := srv.Spool.Used(u); used != sum {
				t.Fatalf("spool of %s: %d bytes used, files hold %d", u, used, sum)
			}
		}
		if srv.Keys != nil {
			// Only fuzz's own bundles, checked, are stored, and none
			// outlives its account.
			if _, ok := srv.Keys.Get("peer"); ok {
				t.Fatal("a bundle for peer was stored from fuzz's session")
			}
			if w, ok := srv.Keys.Get("fuzz"); ok {
				if _, exists := srv.Accounts.Lookup("fuzz"); !exists {
					t.Fatal("fuzz's bundle outlived its account")
				}
				if b, err := e2e.ParseBundle(w); err != nil || b.User != "fuzz" {
					t.Fatalf("stored bundle %.40q: %v", w, err)
				}
			}
		}
		relaytest.CheckFor(t, 5*time.Second, func() error {
			if n := runtime.NumGoroutine(); n > base+4 {
				return fmt.Errorf("%d goroutines, %d before", n, base)
			}
			return nil
		})
	})
}

// endsWithEnd reports whether the last line in b is an END line.
func endsWithEnd(b []byte) bool {
	if !bytes.HasSuffix(b, []byte("\r\n")) {
		return false
	}
	b = b[:len(b)-2]
	if i := bytes.LastIndex(b, []byte("\r\n")); i >= 0 {
		b = b[i+2:]
	}
	return bytes.HasPrefix(b, []byte("END "))
}

func tail(b []byte) []byte { return b[max(0, len(b)-300):] }
