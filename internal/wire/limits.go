// Package wire is the SSL-Messager line protocol: every query a client sends
// and every line a server sends, as typed values, with the one parser and the
// one formatter for each. No other package builds or splits protocol lines.
//
// A line is words separated by single spaces. Lines end with CR LF; the
// original client puts a space before it and so does every formatter here.
// A bare LF is data, not the end of a line: the original client leaves its
// input's newline on message text. PROTOCOL.md at the repository root is the
// specification; this package is its implementation.
package wire

// Limits of the protocol. They are the same for both directions.
const (
	// MaxLineBytes bounds one line, CR LF excluded: room for a text of
	// MaxTextRunes characters that escaping made four times longer. A
	// longer line is a protocol error and the reader refuses it without
	// buffering it whole.
	MaxLineBytes = 64 << 10

	// MaxTextRunes bounds the text of one message, as the original client
	// does (4000 characters).
	MaxTextRunes = 4000

	// MaxWordBytes bounds one word (a name, a token, a size) on the wire.
	MaxWordBytes = 64

	// MinPasswordBytes and MaxPasswordBytes bound a password: bcrypt
	// reads at most 72 bytes, so a longer one would be cut silently.
	MinPasswordBytes = 8
	MaxPasswordBytes = 72

	// MaxPasswordWordBytes bounds the password word of AUTH and PUT on
	// the wire. It is above MaxPasswordBytes so that a password that is
	// too long reaches the account rules and gets a TRY with the reason,
	// not a protocol error.
	MaxPasswordWordBytes = 256

	// MaxFileNameBytes bounds the escaped file name word of BEGINF.
	MaxFileNameBytes = 1024

	// MaxOnline is the most names one online list carries.
	MaxOnline = 100

	// MaxFilesPerGet is the most files a server sends for one CMD <get>;
	// the client asks again for the rest.
	MaxFilesPerGet = 100

	// MaxRecordData is the most file data one TLS record carries (the
	// TLS record limit, 16 KiB).
	MaxRecordData = 16 << 10

	// MaxFileSize is the largest size a BEGINF line may announce; servers
	// enforce their own, smaller limit.
	MaxFileSize = 1 << 50
)

// ALPN is the TLS application protocol our client offers and our server
// accepts. A connection that negotiated it speaks the protocol with our
// extensions (the queries PROTOCOL.md marks "sslm/2 only"); the original
// clients offer no ALPN, so they never receive a line they do not know.
// ALPNKeys (ext_keys.go) is this protocol plus the key directory.
const ALPN = "sslm/2"

// End of line as sent by every formatter: a space, then CR LF.
const eol = " \r\n"
