package cliflags

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// Reorder returns args (os.Args) with the flags that follow a command's
// arguments moved before them, since urfave/cli stops reading flags at
// the first argument: "client upload report.pdf --to bob" becomes
// "client upload --to bob report.pdf". A flag of the app's own (global)
// flags given after the command goes before the command's name. "--"
// ends the flags: what follows it stays an argument, and so does a word
// after an argument that looks like a flag but is none of the command's
// or the app's (the arguments then follow a "--"). Commands listed in
// keep (e.g. one that passes its arguments on verbatim) are left alone.
func Reorder(app *cli.App, args []string, keep ...string) []string {
	if len(args) < 2 {
		return args
	}
	global := valueFlags(app.Flags)
	// Find the command: the first argument that is not a global flag or
	// its value.
	i := 1
	for i < len(args) {
		a := args[i]
		if a == "--" || !isFlag(a) {
			break
		}
		i++
		if takesValue(global, a) && i < len(args) {
			i++
		}
	}
	if i >= len(args) || args[i] == "--" {
		return args
	}
	cmd := findCommand(app.Commands, args[i])
	if cmd == nil || cmd.SkipFlagParsing {
		return args
	}
	for _, k := range keep {
		if cmd.Name == k {
			return args
		}
	}
	local := valueFlags(cmd.Flags)
	var globals, flags, positional []string
	rest := args[i+1:]
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		if a == "--" {
			positional = append(positional, rest[j:]...)
			break
		}
		if !isFlag(a) {
			positional = append(positional, a)
			continue
		}
		dst := &flags
		vals := local
		if _, ok := local[flagName(a)]; !ok {
			_, isGlobal := global[flagName(a)]
			switch {
			case isGlobal:
				dst, vals = &globals, global
			case len(positional) > 0:
				// Not a flag of ours, after an argument: an argument too
				// ("send --to bob it is -5").
				positional = append(positional, a)
				continue
			}
			// Not a flag of ours, before any argument: the parser says so.
		}
		*dst = append(*dst, a)
		if takesValue(vals, a) && j+1 < len(rest) {
			j++
			*dst = append(*dst, rest[j])
		}
	}
	dashed := false
	for k, p := range positional {
		if p == "--" {
			// "a -- -x" becomes "-- a -x": every one stays an argument.
			positional = append(positional[:k:k], positional[k+1:]...)
			dashed = true
			break
		}
		dashed = dashed || isFlag(p)
	}
	if dashed {
		positional = append([]string{"--"}, positional...)
	}
	out := make([]string, 0, len(args)+1)
	out = append(out, args[:i]...)
	out = append(out, globals...)
	out = append(out, args[i])
	out = append(out, flags...)
	return append(out, positional...)
}

// isFlag says whether a is written as a flag ("-x", "--name", "--name=v");
// a lone "-" is an argument (stdin).
func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' }

// flagName is a flag's name without dashes or "=value".
func flagName(a string) string {
	a = strings.TrimLeft(a, "-")
	if k := strings.IndexByte(a, '='); k >= 0 {
		a = a[:k]
	}
	return a
}

// valueFlags maps each name of flags to whether it takes a value (all but
// booleans).
func valueFlags(flags []cli.Flag) map[string]bool {
	m := map[string]bool{"help": false, "h": false, "version": false}
	for _, f := range flags {
		takes := true
		if dv, ok := f.(cli.DocGenerationFlag); ok {
			takes = dv.TakesValue()
		}
		for _, n := range f.Names() {
			m[n] = takes
		}
	}
	return m
}

// takesValue says whether the flag a is followed by its value as the
// next argument: it takes one and a has no "=value".
func takesValue(known map[string]bool, a string) bool {
	return known[flagName(a)] && !strings.Contains(a, "=")
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}
