package messenger

import (
	"testing"

	"sslmessager/internal/keydir"
	"sslmessager/internal/relay/relaytest"
)

// Dial offers sslm/3 then sslm/2: a server with a key directory
// negotiates sslm/3, one without negotiates sslm/2; our extensions are
// there either way.
func TestDialKeyDirectory(t *testing.T) {
	for _, c := range []struct {
		opts relaytest.Options
		keys bool
	}{
		{relaytest.Options{Keys: &keydir.Options{}}, true},
		{relaytest.Options{}, false},
	} {
		srv := relaytest.Start(t, c.opts)
		conn, err := Dial(t.Context(), srv.Addr, srv.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		if conn.KeyDirectory() != c.keys || !conn.Extended() {
			t.Errorf("key directory %v: KeyDirectory() = %v, Extended() = %v", c.keys, conn.KeyDirectory(), conn.Extended())
		}
		if err := conn.Login("alice", "password-alice", true); err != nil {
			t.Fatal(err)
		}
		conn.Close()
	}
}
