package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
	"gopkg.in/yaml.v3"

	"sslmessager/internal/cliflags"
)

// configFlag names the flag that points at the configuration file.
const configFlag = "config"

// precedence is how a setting's value is chosen, as --help states it.
const precedence = `A flag on the command line wins over its environment variable,
which wins over the --config file, which wins over the default.`

// fileBacked returns flags with each one that a configuration file can
// set wrapped for altsrc, so every flag, also one added later, can come
// from the file under its long name. --config itself cannot.
func fileBacked(flags []cli.Flag) []cli.Flag {
	out := make([]cli.Flag, 0, len(flags))
	for _, f := range flags {
		switch f := f.(type) {
		case *cli.StringFlag:
			if f.Name == configFlag {
				out = append(out, f)
				continue
			}
			out = append(out, altsrc.NewStringFlag(f))
		case *cli.IntFlag:
			out = append(out, altsrc.NewIntFlag(f))
		case *cli.BoolFlag:
			out = append(out, altsrc.NewBoolFlag(f))
		case *cli.DurationFlag:
			out = append(out, altsrc.NewDurationFlag(f))
		case *cliflags.SizeFlag:
			out = append(out, &fileSize{f})
		default:
			panic(fmt.Sprintf("server: flag %v cannot come from a configuration file; add its type to fileBacked", f.Names()))
		}
	}
	return out
}

// fileSize is a size flag a configuration file can set, as a number of
// bytes (max-file-size: 1073741824) or a string with a unit
// (max-file-size: 1GiB).
type fileSize struct{ *cliflags.SizeFlag }

// Unwrap returns the size flag, for cliflags' error messages.
func (f *fileSize) Unwrap() cli.Flag { return f.SizeFlag }

// ApplyInputSourceValue implements altsrc.FlagInputSourceExtension: the
// file's value applies unless the command line or an environment variable
// set the flag.
func (f *fileSize) ApplyInputSourceValue(cc *cli.Context, isc altsrc.InputSourceContext) error {
	if cc.IsSet(f.Name) {
		return nil
	}
	for _, e := range f.EnvVars {
		if _, ok := os.LookupEnv(e); ok {
			return nil
		}
	}
	// String fails only for a value that is there but not a string.
	text, err := isc.String(f.Name)
	if err != nil {
		n, nerr := isc.Int64(f.Name)
		if nerr != nil {
			return fmt.Errorf("%s: want a size such as 1073741824 or 1GiB", f.Name)
		}
		text = strconv.FormatInt(n, 10)
	}
	if text == "" {
		return nil // not in the file
	}
	if err := cc.Set(f.Name, text); err != nil {
		return fmt.Errorf("%s: %q is not a size, use e.g. 512KiB, 10MB or 1GiB", f.Name, text)
	}
	return nil
}

// loadConfigFile is the app's Before: when --config names a file, the
// flags neither given on the command line nor set by their environment
// variable take their values from it (altsrc does that part).
func loadConfigFile(flags []cli.Flag) cli.BeforeFunc {
	return func(cc *cli.Context) error {
		path := cc.String(configFlag)
		if path == "" {
			return nil
		}
		src, err := openConfig(path, flags)
		if err != nil {
			return err
		}
		if err := altsrc.ApplyInputSourceValues(cc, src, flags); err != nil {
			return fmt.Errorf("--config %s: %s", path, oneLine(err))
		}
		return nil
	}
}

// openConfig checks the configuration file at path, YAML (.yaml, .yml) or
// TOML (.toml) by its extension, and returns it as altsrc's input source.
// Every error is one line that names the file: unreadable, not the
// format its extension says, or a setting that is no flag's name.
func openConfig(path string, flags []cli.Flag) (altsrc.InputSourceContext, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("--config %s: %s", path, fmt.Sprintf(format, args...))
	}
	if strings.Contains(path, "://") {
		return nil, fail("want a local file, not a URL")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fail("%v", err)
	}
	settings := map[string]any{}
	var load func(string) (altsrc.InputSourceContext, error)
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".yaml", ".yml":
		err, load = yaml.Unmarshal(data, &settings), altsrc.NewYamlSourceFromFile
	case ".toml":
		_, err = toml.Decode(string(data), &settings)
		load = altsrc.NewTomlSourceFromFile
	default:
		return nil, fail("unknown format %q: name the file .yaml, .yml or .toml", ext)
	}
	if err != nil {
		return nil, fail("%s", oneLine(err))
	}
	known := map[string]bool{}
	for _, f := range flags {
		for _, n := range f.Names() {
			known[n] = true
		}
	}
	var unknown []string
	for k := range settings {
		if !known[k] || k == configFlag {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, fail("unknown setting %q (the settings are the flags' long names, see --help)", unknown[0])
	}
	src, err := load(path)
	if err != nil {
		return nil, fail("%s", oneLine(err))
	}
	return src, nil
}

// oneLine joins an error's lines, for a one-line log or error message.
func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }
