package wire

// Lines of our extensions (ALPN sslm/2 only): the server sends them only
// on connections that negotiated ALPN, in answer to our queries.

// OK answers one of our queries that succeeded: OK <text>
type OK struct{ Text string }

// No refuses one of our queries, saying why: NO <reason>
type No struct{ Reason string }

func (OK) Verb() string { return "OK" }
func (No) Verb() string { return "NO" }

func (q OK) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendReason(append(dst, "OK"...), "OK", q.Text)
	return end(dst), err
}

func (q No) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendReason(append(dst, "NO"...), "NO", q.Reason)
	return end(dst), err
}
