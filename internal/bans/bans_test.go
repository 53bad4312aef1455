package bans

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseTarget(t *testing.T) {
	cases := []struct {
		in    string
		kind  Kind
		value string
	}{
		{"bob", KindUser, "bob"},
		{"Bob_2", KindUser, "Bob_2"},
		{"127.0.0.2", KindIP, "127.0.0.2"},
		{"::ffff:10.0.0.1", KindIP, "10.0.0.1"},
		{"2001:db8::1", KindIP, "2001:db8::1"},
		{"10.1.2.3/8", KindCIDR, "10.0.0.0/8"},
		{"2001:db8::/32", KindCIDR, "2001:db8::/32"},
		{"::ffff:10.0.0.0/104", KindCIDR, "10.0.0.0/8"},
	}
	for _, c := range cases {
		k, v, err := ParseTarget(c.in)
		if err != nil || k != c.kind || v != c.value {
			t.Errorf("ParseTarget(%q) = %q %q %v, want %q %q", c.in, k, v, err, c.kind, c.value)
		}
	}
	for _, bad := range []string{"", "admin", "10.0.0.0/33", "bob smith", "a/b", "::ffff:0.0.0.0/8", strings.Repeat("x", 16)} {
		if _, _, err := ParseTarget(bad); !errors.Is(err, ErrTarget) {
			t.Errorf("ParseTarget(%q): %v, want ErrTarget", bad, err)
		}
	}
}

func TestBansPersistAndApply(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bans.csv")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.AddrBanned(netip.MustParseAddr("127.0.0.2")) {
		t.Fatal("empty list bans an address")
	}
	if _, err := s.Add("Mallory", time.Time{}, `spam, "lots" of it`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add("127.0.0.2", time.Time{}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add("10.9.0.0/16", time.Now().Add(time.Hour), "net"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("bans.csv: %v %v, want mode 0600", fi, err)
	}
	// A second store on the same file (a restart) sees the same list.
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []*Store{s, s2} {
		if r, ok := st.UserBanned("mallory"); !ok || r != `spam, "lots" of it` {
			t.Errorf("UserBanned(mallory) = %q %v", r, ok)
		}
		if _, ok := st.UserBanned("alice"); ok {
			t.Error("alice banned")
		}
		for addr, want := range map[string]bool{
			"127.0.0.2": true, "::ffff:127.0.0.2": true, "127.0.0.1": false,
			"10.9.255.1": true, "10.8.0.1": false,
		} {
			if got := st.AddrBanned(netip.MustParseAddr(addr)); got != want {
				t.Errorf("AddrBanned(%s) = %v, want %v", addr, got, want)
			}
		}
		if n := len(st.List()); n != 3 {
			t.Errorf("List: %d bans, want 3", n)
		}
	}
	if _, err := s.Remove("MALLORY"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove("mallory"); !errors.Is(err, ErrNotBanned) {
		t.Fatalf("second Remove: %v, want ErrNotBanned", err)
	}
	s3, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s3.UserBanned("mallory"); ok {
		t.Error("unban did not persist")
	}
}

func TestBanExpires(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bans.csv")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s.now = func() time.Time { return now }
	if _, err := s.Add("bob", now.Add(10*time.Minute), "cool off"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add("carol", now, ""); err == nil {
		t.Error("a ban ending now was accepted")
	}
	if _, ok := s.UserBanned("bob"); !ok {
		t.Fatal("bob not banned")
	}
	now = now.Add(11 * time.Minute)
	if _, ok := s.UserBanned("bob"); ok {
		t.Fatal("an expired ban still applies")
	}
	// The next write drops it from the file.
	if _, err := s.Add("dave", time.Time{}, ""); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), "bob") || !strings.Contains(string(data), "dave") {
		t.Errorf("file after expiry:\n%s", data)
	}
}

func TestReloadKeepsListOnBadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bans.csv")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add("bob", time.Time{}, ""); err != nil {
		t.Fatal(err)
	}
	// Edited by hand: add an address ban.
	data, _ := os.ReadFile(path)
	if err := os.WriteFile(path, append(data, "ip,192.0.2.7,,by hand,\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Reload(); err != nil || n != 2 {
		t.Fatalf("Reload = %d, %v; want 2 bans", n, err)
	}
	if !s.AddrBanned(netip.MustParseAddr("192.0.2.7")) {
		t.Fatal("hand-edited ban not in force")
	}
	for _, bad := range []string{
		"kind,value\nuser,bob\n",
		"kind,value,until,reason,created\nip,not-an-ip,,,\n",
		"kind,value,until,reason,created\nuser,10.0.0.1,,,\n",
		"kind,value,until,reason,created\nuser,bob,tomorrow,,\n",
		"kind,value,until,reason,created\nuser,\"bob\n",
	} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Reload(); err == nil {
			t.Errorf("Reload accepted %q", bad)
		}
		if _, ok := s.UserBanned("bob"); !ok || !s.AddrBanned(netip.MustParseAddr("192.0.2.7")) {
			t.Fatalf("a bad file (%q) changed the list in force", bad)
		}
		if _, err := Open(path); err == nil {
			t.Errorf("Open accepted %q", bad)
		}
	}
}

// Readers ask while writers change and reload the list (run with -race).
func TestConcurrentUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bans.csv")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := netip.MustParseAddr("10.0.0.1")
			for {
				select {
				case <-stop:
					return
				default:
				}
				s.AddrBanned(a)
				s.UserBanned("bob")
				s.List()
			}
		}()
	}
	for i := range 20 {
		if _, err := s.Add("10.0.0.0/8", time.Time{}, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Reload(); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if _, err := s.Remove("10.0.0.0/8"); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	if !s.AddrBanned(netip.MustParseAddr("10.0.0.1")) {
		t.Fatal("the last Add is not in force")
	}
}

// The accept loop asks AddrBanned on every connection.
func BenchmarkAddrBanned(b *testing.B) {
	for _, n := range []int{0, 100, 1000} {
		b.Run(fmt.Sprintf("cidrs=%d", n), func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "bans.csv"))
			if err != nil {
				b.Fatal(err)
			}
			bans := make([]Ban, 0, n+1)
			for i := range n {
				bans = append(bans, Ban{Kind: KindCIDR, Value: fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)})
			}
			bans = append(bans, Ban{Kind: KindIP, Value: "192.0.2.1"})
			s.snap.Store(newSnapshot(bans))
			a := netip.MustParseAddr("198.51.100.7")
			b.ReportAllocs()
			for b.Loop() {
				if s.AddrBanned(a) {
					b.Fatal("banned")
				}
			}
		})
	}
}
