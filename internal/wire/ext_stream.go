package wire

import "strconv"

// Streamed files (ALPN sslm/2 only). A file being uploaded to a user who
// is online with our client reaches that client while the server still
// receives it. The client asks for it with GetLive (its queued files, then
// the uploads to it under way) or opts in with Push (every upload to the
// user that starts from then on). A streamed file is
//
//	STREAMF name size sender
//	CHUNK n, then exactly n raw bytes   (as often as needed)
//	STREAMEND sha256 id                 (or STREAMABORT <reason>)
//
// and the client confirms it with AckFile once it holds it whole with a
// matching hash. Between two chunks the server may send any other line
// queued for the session; no line lands inside a chunk's bytes.

// MaxChunkBytes bounds the n of a Chunk. Servers send at most 256 KiB.
const MaxChunkBytes = 1 << 20

// ReasonUploadBrokeOff is the StreamAbort reason when the sender's upload
// ended before it was complete, or failed.
const ReasonUploadBrokeOff = "the upload broke off"

// GetLive asks for the queued files as CMD <get ack> does, and then for the
// uploads to the user under way, streamed: GETLIVE token. The answer is
// BEGIN n counting both; a queued file comes as FileHeader, a streamed
// one as StreamHeader.
type GetLive struct{ Token string }

// Push opts the session in to streamed files: every upload to its user
// that starts from then on is streamed to one such session as it
// arrives: PUSH token. No reply.
type Push struct{ Token string }

// StreamHeader starts a streamed file: STREAMF name size sender. Chunks
// carrying exactly Size bytes follow, then StreamEnd or StreamAbort.
type StreamHeader struct {
	Name   string
	Size   int64
	Sender string
}

// Chunk announces n raw bytes of a streamed file: CHUNK n
type Chunk struct{ Size int }

// StreamEnd ends a streamed file whose upload the server committed (fsynced
// and queued): STREAMEND sha256 id. The id is the one AckFile confirms.
type StreamEnd struct{ SHA256, ID string }

// StreamAbort ends a streamed file whose upload broke off: the client
// discards what it got and nothing is queued: STREAMABORT <reason>
type StreamAbort struct{ Reason string }

func (GetLive) Verb() string      { return "GETLIVE" }
func (Push) Verb() string         { return "PUSH" }
func (StreamHeader) Verb() string { return "STREAMF" }
func (Chunk) Verb() string        { return "CHUNK" }
func (StreamEnd) Verb() string    { return "STREAMEND" }
func (StreamAbort) Verb() string  { return "STREAMABORT" }

func (q GetLive) SessionToken() string { return q.Token }
func (q Push) SessionToken() string    { return q.Token }

func (q GetLive) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendWords(append(dst, "GETLIVE"...), "GETLIVE", "token", q.Token)
	return end(dst), err
}

func (q Push) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendWords(append(dst, "PUSH"...), "PUSH", "token", q.Token)
	return end(dst), err
}

func (q StreamHeader) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendWord(append(dst, "STREAMF"...), "STREAMF", "name", EscapeWord(q.Name), MaxFileNameBytes)
	if err != nil {
		return end(dst), err
	}
	if q.Size < 0 || q.Size > MaxFileSize {
		return end(dst), ferr("STREAMF", "size", "out of range")
	}
	dst = strconv.AppendInt(append(dst, ' '), q.Size, 10)
	dst, err = appendWords(dst, "STREAMF", "sender", q.Sender)
	return end(dst), err
}

func (q Chunk) AppendTo(dst []byte) ([]byte, error) {
	if q.Size < 1 || q.Size > MaxChunkBytes {
		return end(dst), ferr("CHUNK", "size", "must be 1 to "+strconv.Itoa(MaxChunkBytes))
	}
	return end(strconv.AppendInt(append(dst, "CHUNK "...), int64(q.Size), 10)), nil
}

func (q StreamEnd) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendWords(append(dst, "STREAMEND"...), "STREAMEND", "sha256", q.SHA256, "id", q.ID)
	return end(dst), err
}

func (q StreamAbort) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendReason(append(dst, "STREAMABORT"...), "STREAMABORT", q.Reason)
	return end(dst), err
}

// parseStreamQuery parses the words after GETLIVE or PUSH.
func parseStreamQuery(verb, rest string) (Query, error) {
	w, err := words(verb, rest, 1, MaxWordBytes)
	if err != nil {
		return nil, err
	}
	if verb == "GETLIVE" {
		return GetLive{Token: w[0]}, nil
	}
	return Push{Token: w[0]}, nil
}

// parseStreamLine parses the words after STREAMF, CHUNK, STREAMEND or
// STREAMABORT.
func parseStreamLine(verb, rest string) (Query, error) {
	switch verb {
	case "STREAMF":
		w, err := words(verb, rest, 3, MaxFileNameBytes)
		if err != nil {
			return nil, err
		}
		if len(w[1]) > MaxWordBytes || len(w[2]) > MaxWordBytes {
			return nil, perr(verb, "over-long word")
		}
		q := StreamHeader{Name: Unescape(w[0]), Sender: w[2]}
		if q.Name == "" {
			return nil, perr(verb, "empty file name")
		}
		if q.Size, err = parseSize(verb, w[1]); err != nil {
			return nil, err
		}
		return q, nil
	case "CHUNK":
		w, err := words(verb, rest, 1, MaxWordBytes)
		if err != nil {
			return nil, err
		}
		n, err := parseSize(verb, w[0])
		if err != nil || n < 1 || n > MaxChunkBytes {
			return nil, perr(verb, "bad chunk size %.24q", w[0])
		}
		return Chunk{Size: int(n)}, nil
	case "STREAMEND":
		w, err := words(verb, rest, 2, MaxWordBytes)
		if err != nil {
			return nil, err
		}
		return StreamEnd{SHA256: w[0], ID: w[1]}, nil
	}
	r, err := bracketed(verb, rest)
	if err != nil {
		return nil, err
	}
	return StreamAbort{Reason: r}, nil
}
