package wire

import (
	"strconv"
	"strings"
)

// Group members (ALPN sslm/3 only), for end-to-end group messages sealed
// to each member separately:
//
//	client: GROUPMEMBERS token
//	server: MEMBERS total name...
//
// total is how many users are in group chat now (each user once,
// however many sessions); the names that follow are at most
// MaxGroupMembers of them, in the server's order, the asker included when
// in group chat. On any connection that did not negotiate ALPNKeys
// GROUPMEMBERS is an unknown query and MEMBERS is never sent.

// MaxGroupMembers is the most names one MEMBERS line lists. With user
// names of at most MaxUserNameBytes the line stays far under
// MaxLineBytes.
const MaxGroupMembers = 50

// GroupMembers asks who is in group chat: GROUPMEMBERS token. Answered by
// Members.
type GroupMembers struct{ Token string }

// Members answers GroupMembers: MEMBERS total name... with at most
// MaxGroupMembers names, each a valid user name; Total counts every user
// in group chat, listed or not (Total >= len(Names)).
type Members struct {
	Total int
	Names []string
}

func (GroupMembers) Verb() string { return "GROUPMEMBERS" }
func (Members) Verb() string      { return "MEMBERS" }

func (q GroupMembers) SessionToken() string { return q.Token }

func (q GroupMembers) AppendTo(dst []byte) ([]byte, error) {
	dst, err := appendWords(append(dst, "GROUPMEMBERS"...), "GROUPMEMBERS", "token", q.Token)
	return end(dst), err
}

func (q Members) AppendTo(dst []byte) ([]byte, error) {
	dst = append(dst, "MEMBERS "...)
	if len(q.Names) > MaxGroupMembers {
		return end(dst), ferr("MEMBERS", "names", "more than "+strconv.Itoa(MaxGroupMembers))
	}
	if q.Total < len(q.Names) {
		return end(dst), ferr("MEMBERS", "total", "less than the names listed")
	}
	dst = strconv.AppendInt(dst, int64(q.Total), 10)
	for _, n := range q.Names {
		if CheckUserName(n) != nil {
			return end(dst), ferr("MEMBERS", "name", "must be a user name")
		}
		dst = append(append(dst, ' '), n...)
	}
	return end(dst), nil
}

// parseGroupMembers parses the words after GROUPMEMBERS.
func parseGroupMembers(rest string) (Query, error) {
	w, err := words("GROUPMEMBERS", rest, 1, MaxWordBytes)
	if err != nil {
		return nil, err
	}
	return GroupMembers{Token: w[0]}, nil
}

// parseMembers parses the words after MEMBERS.
func parseMembers(rest string) (Query, error) {
	w := strings.Split(rest, " ")
	if len(w) == 0 || len(w)-1 > MaxGroupMembers {
		return nil, perr("MEMBERS", "want a total and at most %d names", MaxGroupMembers)
	}
	total, err := strconv.Atoi(w[0])
	if err != nil || total < len(w)-1 || total > 1<<30 || w[0] != strconv.Itoa(total) {
		return nil, perr("MEMBERS", "bad total")
	}
	q := Members{Total: total}
	for _, n := range w[1:] {
		if CheckUserName(n) != nil {
			return nil, perr("MEMBERS", "bad user name")
		}
		q.Names = append(q.Names, n)
	}
	return q, nil
}
