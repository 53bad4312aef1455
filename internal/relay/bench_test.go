package relay

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"sslmessager/internal/accounts"
	"sslmessager/internal/pki"
	"sslmessager/internal/wire"
)

// BenchmarkGroupFanout queues one group line for every member, the work a
// MSGG costs the sender's reader, for groups of several sizes.
func BenchmarkGroupFanout(b *testing.B) {
	dir := b.TempDir()
	if _, err := pki.Generate(pki.GenerateOptions{Dir: dir, Hosts: []string{"127.0.0.1"}}); err != nil {
		b.Fatal(err)
	}
	tc, err := pki.ServerTLSConfig(filepath.Join(dir, pki.ServerCertFile), filepath.Join(dir, pki.ServerKeyFile))
	if err != nil {
		b.Fatal(err)
	}
	acc, err := accounts.Open(filepath.Join(dir, "users.csv"), accounts.Options{Cost: 4})
	if err != nil {
		b.Fatal(err)
	}
	defer acc.Close()
	srv, err := New(Config{TLSConfig: tc, Accounts: acc, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			h := newHub()
			members := make([]*session, n)
			for i := range members {
				s := &session{srv: srv, out: newOutbound(func() {}, srv.cfg.MaxQueueBytes, srv.cfg.MaxQueueBytes/4), user: fmt.Sprint("u", i)}
				s.key = s.user
				members[i] = s
				h.add(s, 0, func() {})
				h.toggleGroup(s)
			}
			sender := members[0]
			line := wire.MustFormat(wire.RelayGroup{Sender: sender.user, Text: strings.Repeat("x", 100)})
			drain := func() {
				for _, m := range members {
					batch, _ := m.out.take(false)
					m.out.sent(len(batch) * len(line))
					m.out.recycle(batch)
				}
			}
			b.ReportAllocs()
			k := 0
			for b.Loop() {
				for _, m := range h.groupMembers() {
					if m != sender {
						m.send(line)
					}
				}
				if k++; k == 32 {
					b.StopTimer()
					drain()
					b.StartTimer()
					k = 0
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*(n-1)), "ns/delivery")
		})
	}
}
