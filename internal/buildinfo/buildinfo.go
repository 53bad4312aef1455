// Package buildinfo describes the running binary for --version: its module
// version, the commit it was built from and the Go version, all read from
// the build information the Go toolchain embeds.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Info is what --version prints.
type Info struct {
	Version  string // module version, "(devel)" for a build from a work tree
	Commit   string // VCS revision, with "-dirty" if the tree had changes; "unknown" without VCS data
	CommitAt string // VCS commit time (RFC 3339), "" if unknown
	Go       string // Go version the binary was built with, e.g. "go1.26.8"
}

// Read returns the running binary's build information. A binary built
// without module support still gets the Go version; the other fields say
// "unknown".
func Read() Info {
	info := Info{Version: "unknown", Commit: "unknown", Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	if v := bi.Main.Version; v != "" {
		info.Version = v
	}
	if bi.GoVersion != "" {
		info.Go = bi.GoVersion
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value
		case "vcs.time":
			info.CommitAt = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && info.Commit != "unknown" {
		info.Commit += "-dirty"
	}
	return info
}

// String is the description --version prints after the binary's name:
// "version (devel), commit 0123abcd (2026-11-30T05:00:00Z), go1.26.8".
func (i Info) String() string {
	s := fmt.Sprintf("version %s, commit %s", i.Version, i.Commit)
	if i.CommitAt != "" {
		s += " (" + i.CommitAt + ")"
	}
	return s + ", " + i.Go
}

// Line is the --version line of the binary called name:
// "server version (devel), commit 0123abcd, go1.26.8".
func Line(name string) string { return name + " " + Read().String() }
