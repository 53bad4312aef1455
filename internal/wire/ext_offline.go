package wire

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Offline direct messages. A MSG to a user who exists but has no session
// is stored by the server and answered with CNT <ReasonQueued>. It is
// delivered at the user's next log-in: as RelayQueued to our client (ALPN
// sslm/2 only), which confirms it with AckMsg, and as a plain Relay with
// the time it was sent in front of the text to the original clients.

// CNT reasons about offline messages. The original clients show any CNT
// reason as it is; ours recognises ReasonQueued.
const (
	// ReasonQueued answers a MSG that was stored for an offline user.
	ReasonQueued = "user offline, message queued"
	// ReasonOfflineStoreFull answers a MSG the server could not store
	// because its storage for offline messages is full.
	ReasonOfflineStoreFull = "server storage is full, message not delivered"
	// ReasonOfflineError answers a MSG the server failed to store.
	ReasonOfflineError = "server error, message not delivered"
)

// ReasonOfflineQueueFull is the CNT reason for a MSG to an offline user
// whose queue of stored messages is full; name is the user as registered.
func ReasonOfflineQueueFull(name string) string {
	return name + "'s offline queue is full, message not delivered"
}

// SentLayout is the form of a RelayQueued's sent time: RFC 3339 in UTC,
// to the second.
const SentLayout = "2006-01-02T15:04:05Z"

// maxSeqDigits bounds a sequence number word (a uint64 has at most 20).
const maxSeqDigits = 20

// RelayQueued carries a direct message stored while its target was
// offline (sslm/2 only): RELAYQ target sender sent seq text. Sent is the
// time the server stored it (SentLayout); Seq grows with every message
// stored for the target, and AckMsg confirms it. The text is escaped as
// in Relay.
type RelayQueued struct {
	Target, Sender string
	Sent           time.Time
	Seq            uint64
	Text           string
}

// AckMsg confirms every stored message up to and including Seq, so that
// the server deletes them (sslm/2 only): ACKM seq token
type AckMsg struct {
	Seq   uint64
	Token string
}

func (RelayQueued) Verb() string { return "RELAYQ" }
func (AckMsg) Verb() string      { return "ACKM" }

func (q AckMsg) SessionToken() string { return q.Token }

func (q RelayQueued) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendWords(append(dst, "RELAYQ"...), "RELAYQ", "target", q.Target, "sender", q.Sender)
	if err != nil {
		return end(dst), err
	}
	if q.Seq == 0 {
		return end(dst), ferr("RELAYQ", "seq", "must be at least 1")
	}
	dst = q.Sent.UTC().AppendFormat(append(dst, ' '), SentLayout)
	dst = strconv.AppendUint(append(dst, ' '), q.Seq, 10)
	dst, err = appendRelayText(dst, "RELAYQ", q.Text)
	return end(dst), err
}

func (q AckMsg) AppendTo(dst []byte) ([]byte, error) {
	if q.Seq == 0 {
		return end(dst), ferr("ACKM", "seq", "must be at least 1")
	}
	dst = strconv.AppendUint(append(dst, "ACKM "...), q.Seq, 10)
	dst, err := appendWords(dst, "ACKM", "token", q.Token)
	return end(dst), err
}

// parseSeq reads a sequence number: 1 to 20 decimal digits, no leading
// zero, at least 1, within uint64. (ParseUint in base 10 takes digits
// only: no sign, no underscore.)
func parseSeq(verb, s string) (uint64, error) {
	if s == "" || len(s) > maxSeqDigits || s[0] == '0' {
		return 0, perr(verb, "bad sequence number %.24q", s)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, perr(verb, "bad sequence number %.24q", s)
	}
	return n, nil
}

// parseRelayQueued parses the words after RELAYQ.
func parseRelayQueued(rest string) (Query, error) {
	const verb = "RELAYQ"
	parts := strings.SplitN(rest, " ", 5)
	if len(parts) != 5 {
		return nil, perr(verb, "want target sender sent seq and a text")
	}
	for _, w := range parts[:2] {
		if !validWord(w, MaxWordBytes) {
			return nil, perr(verb, "empty or over-long word")
		}
	}
	if len(parts[2]) != len(SentLayout) {
		return nil, perr(verb, "bad sent time %.24q", parts[2])
	}
	sent, err := time.Parse(SentLayout, parts[2])
	if err != nil {
		return nil, perr(verb, "bad sent time %.24q", parts[2])
	}
	seq, err := parseSeq(verb, parts[3])
	if err != nil {
		return nil, err
	}
	text := strings.TrimSuffix(Unescape(parts[4]), "\n")
	if err := validText(text); err != nil {
		return nil, perr(verb, "text %v", err)
	}
	return RelayQueued{Target: parts[0], Sender: parts[1], Sent: sent, Seq: seq, Text: text}, nil
}

// parseAckMsg parses the words after ACKM.
func parseAckMsg(rest string) (Query, error) {
	w, err := words("ACKM", rest, 2, MaxWordBytes)
	if err != nil {
		return nil, err
	}
	seq, err := parseSeq("ACKM", w[0])
	if err != nil {
		return nil, err
	}
	return AckMsg{Seq: seq, Token: w[1]}, nil
}

// OriginalSentPrefix is what the original clients see in front of a
// stored message's text, since they know no RELAYQ: "[sent 10:00 UTC 30
// Nov] ", with the year added when it is not now's year.
func OriginalSentPrefix(sent, now time.Time) string {
	sent = sent.UTC()
	layout := "15:04 UTC 2 Jan"
	if sent.Year() != now.UTC().Year() {
		layout = "15:04 UTC 2 Jan 2006"
	}
	return "[sent " + sent.Format(layout) + "] "
}

// OriginalRelays returns the Relay lines that carry a stored message to an
// original client: the text with OriginalSentPrefix in front. A text that
// no longer fits in MaxTextRunes with the prefix goes in two lines, the
// second marked as the rest of the first, so nothing is cut.
func OriginalRelays(target, sender string, sent, now time.Time, text string) []Relay {
	prefix := OriginalSentPrefix(sent, now)
	room := MaxTextRunes - utf8.RuneCountInString(prefix)
	if utf8.RuneCountInString(text) <= room {
		return []Relay{{Target: target, Sender: sender, Text: prefix + text}}
	}
	// Cut after room runes, counted as validText counts them (a byte that
	// is not UTF-8 is one), so the bytes stay as they were.
	cut := 0
	for range room {
		_, n := utf8.DecodeRuneInString(text[cut:])
		cut += n
	}
	cont := strings.TrimSuffix(prefix, "] ") + ", continued] "
	return []Relay{
		{Target: target, Sender: sender, Text: prefix + text[:cut]},
		{Target: target, Sender: sender, Text: cont + text[cut:]},
	}
}
