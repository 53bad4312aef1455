package admin

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// maxDuration bounds a ban or mute: longer is "forever" (leave it out).
const maxDuration = 100 * 365 * 24 * time.Hour

// ParseDuration reads a ban or mute duration: a Go duration ("90s", "10m",
// "2h30m") or a whole number of days with an optional Go duration after it
// ("7d", "1d12h"). Zero, negative and over-100-year durations are errors.
func ParseDuration(s string) (time.Duration, error) {
	var days time.Duration
	rest := s
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseUint(s[:i], 10, 16)
		if err != nil || i == 0 {
			return 0, fmt.Errorf("duration %q: want 10m, 2h or 7d", s)
		}
		days, rest = time.Duration(n)*24*time.Hour, s[i+1:]
	}
	var d time.Duration
	if rest != "" {
		var err error
		if d, err = time.ParseDuration(rest); err != nil {
			return 0, fmt.Errorf("duration %q: want 10m, 2h or 7d", s)
		}
	}
	d += days
	switch {
	case d <= 0:
		return 0, fmt.Errorf("duration %q: %w", s, errNotPositive)
	case d > maxDuration:
		return 0, fmt.Errorf("duration %q: at most 100 years (leave it out for forever)", s)
	}
	return d, nil
}

var errNotPositive = errors.New("must be more than zero")

// looksLikeDuration says whether a word is meant as a duration: it starts
// with a digit, a sign or a dot. Such a word must then parse, so that a
// mistyped duration is never taken as the start of a reason.
func looksLikeDuration(w string) bool {
	return w != "" && strings.ContainsRune("0123456789+-.", rune(w[0]))
}
