package cliflags

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"
)

// Size is a number of bytes read with an optional unit: "1048576",
// "10MB" (10^7), "1GiB" (2^30), "512KiB". It is a cli.Generic.
type Size int64

// ParseSize reads a size with an optional decimal (kB, MB, GB, ...) or
// binary (KiB, MiB, GiB, ...) unit. Negative sizes and sizes beyond
// int64 are errors.
func ParseSize(s string) (Size, error) {
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return 0, errors.New("not a size")
	}
	if n > math.MaxInt64 {
		return 0, errors.New("too large")
	}
	return Size(n), nil
}

// Set implements flag.Value.
func (s *Size) Set(v string) error {
	n, err := ParseSize(v)
	if err != nil {
		return err
	}
	*s = n
	return nil
}

// String gives the size exactly, in the largest unit that divides it:
// "1GiB", "10MB", "1000001".
func (s *Size) String() string {
	if s == nil {
		return "0"
	}
	n := int64(*s)
	if n == 0 {
		return "0"
	}
	units := []struct {
		name string
		size int64
	}{
		{"EiB", 1 << 60}, {"PiB", 1 << 50}, {"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
		{"EB", 1e18}, {"PB", 1e15}, {"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3},
	}
	for _, u := range units {
		if n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// Get implements flag.Getter: the size in bytes, an int64.
func (s *Size) Get() any { return int64(*s) }

// SizeFlag is a flag whose value is a Size, shown in --help as
// "--NAME SIZE". Read it with SizeOf.
type SizeFlag struct{ cli.GenericFlag }

// NewSizeFlag returns a size flag called name with the default def
// (bytes); usage is its help text.
func NewSizeFlag(name string, def int64, usage string) *SizeFlag {
	v := Size(def)
	return &SizeFlag{cli.GenericFlag{Name: name, Value: &v, Usage: usage + " (a `SIZE`: 1048576, 512KiB, 10MB, 1GiB)"}}
}

// SizeOf returns the bytes of the size flag called name in cc.
func SizeOf(cc *cli.Context, name string) int64 {
	if s, ok := cc.Generic(name).(*Size); ok && s != nil {
		return int64(*s)
	}
	panic(fmt.Sprintf("cliflags: --%s is not a size flag", name))
}
