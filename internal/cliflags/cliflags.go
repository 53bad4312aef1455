// Package cliflags gives the project's command-line binaries one way to
// read their arguments: one-line usage errors (exit status 2) instead of
// help pages, refusal of unexpected arguments, sizes with units, flags
// after a command's arguments, and --version from the build information.
package cliflags

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"

	"sslmessager/internal/buildinfo"
)

// ExitUsage is the exit status of a command line that is not valid (as
// for most Unix tools); other failures exit 1.
const ExitUsage = 2

// UsageError is a command line that is not valid: an unknown flag, a flag
// value of the wrong form, an unexpected argument. Its text is one line
// that names the flag or argument and ends with where to look.
type UsageError struct{ msg string }

func (e *UsageError) Error() string { return e.msg }

// Usagef returns a UsageError for the binary app, with "(see NAME --help)"
// appended.
func Usagef(app *cli.App, format string, args ...any) error {
	return &UsageError{msg: fmt.Sprintf(format, args...) + " (see " + app.Name + " --help)"}
}

// ExitStatus is the exit status for an error returned by app.Run: 0 for
// nil, ExitUsage for a UsageError, 1 otherwise.
func ExitStatus(err error) int {
	var ue *UsageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return ExitUsage
	}
	return 1
}

// NoArgs refuses any positional argument: for an Action that takes none.
func NoArgs(cc *cli.Context) error {
	if cc.Args().Present() {
		return Usagef(cc.App, "unexpected argument %q", cc.Args().First())
	}
	return nil
}

// Setup makes app and each of its commands report a command line that
// does not parse as one UsageError line instead of printing help, and
// adds --version (the binary's version, commit and Go version from the
// build information). Call it once on a fully built app.
func Setup(app *cli.App) {
	app.OnUsageError = onUsageError
	var walk func([]*cli.Command)
	walk = func(cmds []*cli.Command) {
		for _, c := range cmds {
			c.OnUsageError = onUsageError
			walk(c.Subcommands)
		}
	}
	walk(app.Commands)
	app.Version = buildinfo.Read().String()
	app.HideVersion = false
	cli.VersionPrinter = func(cc *cli.Context) {
		fmt.Fprintln(writer(cc), buildinfo.Line(cc.App.Name))
	}
	// urfave/cli's -v alias would take a short name some binary may want.
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version, commit and Go version, then exit"}
}

func writer(cc *cli.Context) io.Writer {
	if cc.App.Writer != nil {
		return cc.App.Writer
	}
	return io.Discard
}

// The errors of Go's flag package and of urfave/cli's environment
// variables, which onUsageError rewrites.
var (
	invalidValue = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-+([^\s:]+): (.*)$`)
	envValue     = regexp.MustCompile(`^could not parse "(.*)" (?:as \S+ value )?from (?:env var|environment variable) "?([^" ]+)"?.* for flag (\S+): (.*)$`)
	undefined    = regexp.MustCompile(`^flag provided but not defined: -+(\S+)$`)
	needsArg     = regexp.MustCompile(`^flag needs an argument: -+(\S+)$`)
)

// onUsageError turns a parse error into one line that names the flag and
// the form its value takes.
func onUsageError(cc *cli.Context, err error, _ bool) error {
	msg := err.Error()
	if m := invalidValue.FindStringSubmatch(msg); m != nil {
		return Usagef(cc.App, "%s", valueError(cc, m[2], m[1]))
	}
	if m := envValue.FindStringSubmatch(msg); m != nil {
		return Usagef(cc.App, "%s (from %s)", valueError(cc, m[3], m[1]), m[2])
	}
	if m := undefined.FindStringSubmatch(msg); m != nil {
		return Usagef(cc.App, "unknown flag %s", dashed(m[1]))
	}
	if m := needsArg.FindStringSubmatch(msg); m != nil {
		return Usagef(cc.App, "%s needs a value", dashed(m[1]))
	}
	return Usagef(cc.App, "%s", strings.Join(strings.Fields(msg), " "))
}

// dashed is a flag's name as typed: "--max-conns", "-v".
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// valueError says why value is not valid for the flag called name.
func valueError(cc *cli.Context, name, value string) string {
	var want string
	switch f := lookup(cc, name).(type) {
	case *cli.DurationFlag:
		want = "is not a duration, use e.g. 15s or 1m"
	case *cli.IntFlag, *cli.Int64Flag, *cli.UintFlag, *cli.Uint64Flag:
		want = "is not a whole number"
	case *cli.Float64Flag:
		want = "is not a number"
	case *cli.BoolFlag:
		want = "is not true or false"
	case *SizeFlag:
		want = "is not a size, use e.g. 512KiB, 10MB or 1GiB"
	default:
		_ = f
		want = "is not valid"
	}
	return fmt.Sprintf("%s: %q %s", dashed(name), value, want)
}

// lookup finds the flag called name among cc's command's flags and its
// parents', through any wrapper that has an Unwrap() cli.Flag method.
func lookup(cc *cli.Context, name string) cli.Flag {
	for _, c := range cc.Lineage() {
		var flags []cli.Flag
		switch {
		case c.Command != nil && c.Command.Name != "":
			flags = c.Command.Flags
		case c.App != nil:
			flags = c.App.Flags
		}
		for _, f := range flags {
			for _, n := range f.Names() {
				if n == name {
					return unwrap(f)
				}
			}
		}
	}
	return nil
}

// Wrapper is a flag that wraps another, as the server's configuration
// file flags do; lookup sees through it.
type Wrapper interface{ Unwrap() cli.Flag }

func unwrap(f cli.Flag) cli.Flag {
	for {
		w, ok := f.(Wrapper)
		if !ok {
			return unwrapAltsrc(f)
		}
		f = w.Unwrap()
	}
}

// unwrapAltsrc returns the cli flag inside an altsrc (configuration file)
// flag, or f itself.
func unwrapAltsrc(f cli.Flag) cli.Flag {
	switch f := f.(type) {
	case *altsrc.DurationFlag:
		return f.DurationFlag
	case *altsrc.IntFlag:
		return f.IntFlag
	case *altsrc.BoolFlag:
		return f.BoolFlag
	}
	return f
}
