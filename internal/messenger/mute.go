package messenger

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"sslmessager/internal/durable"
	"sslmessager/internal/wire"
)

// Client-side mute: the direct and group messages of a muted user are not
// shown (nor kept for :export:). Carbons, copies of what this user sent
// itself, never are hidden. The server is not told. The list is kept per
// server and user in the configuration directory, so it holds across
// sessions.

// MaxMuted is the most users one mute list holds.
const MaxMuted = 1000

// maxMuteFileBytes bounds how much of a mute file is read.
const maxMuteFileBytes = 64 << 10

// ConfigDirName is the client's directory under os.UserConfigDir
// ($XDG_CONFIG_HOME or ~/.config on Linux).
const ConfigDirName = "sslm"

// DefaultConfigDir is os.UserConfigDir()/sslm.
func DefaultConfigDir() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, ConfigDirName), nil
}

// MuteFile is the path of the mute list for user on server (host:port as
// dialled) in dir: dir/muted-HOST_PORT-user, with every byte of the server
// address other than a letter, digit, '.', '-' or '_' as '_', and the user
// name in lower case (names are one identity in any case).
func MuteFile(dir, server, user string) string {
	safe := []byte(server)
	for i, c := range safe {
		if !(c == '.' || c == '-' || c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			safe[i] = '_'
		}
	}
	return filepath.Join(dir, "muted-"+string(safe)+"-"+wire.FoldName(user))
}

// muteList is the set of muted users. The input loop changes it; the
// receiver reads it.
type muteList struct {
	path string // "": kept for this session only

	mu    sync.Mutex
	names map[string]string // guarded by mu; wire.FoldName(name) -> name as typed
}

// loadMutes reads the list at path (one user name a line). A missing file
// is an empty list. Lines that are no valid user name are skipped and
// reported in the error, as is a file that cannot be read: the list then
// holds what could be read.
func loadMutes(path string) (*muteList, error) {
	m := &muteList{path: path, names: make(map[string]string)}
	if path == "" {
		return m, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return m, fmt.Errorf("mute list: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, maxMuteFileBytes))
	bad := 0
	for sc.Scan() {
		name := strings.TrimSpace(sc.Text())
		switch {
		case name == "":
		case wire.CheckUserName(name) != nil || len(m.names) >= MaxMuted:
			bad++
		default:
			m.names[wire.FoldName(name)] = name
		}
	}
	if err := sc.Err(); err != nil {
		return m, fmt.Errorf("mute list %s: %w", path, err)
	}
	if bad > 0 {
		return m, fmt.Errorf("mute list %s: %d lines skipped (not a user name, or over %d names)", path, bad, MaxMuted)
	}
	return m, nil
}

// muted reports whether name (any case) is muted.
func (m *muteList) muted(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.names[wire.FoldName(name)]
	return ok
}

// list returns the muted names, sorted.
func (m *muteList) list() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.names))
	for _, n := range m.names {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// set mutes (on) or unmutes name and writes the list. It reports whether
// anything changed; on a write error the change is kept for this session.
func (m *muteList) set(name string, on bool) (changed bool, err error) {
	key := wire.FoldName(name)
	m.mu.Lock()
	_, had := m.names[key]
	switch {
	case on == had:
		m.mu.Unlock()
		return false, nil
	case on && len(m.names) >= MaxMuted:
		m.mu.Unlock()
		return false, fmt.Errorf("at most %d users can be muted", MaxMuted)
	case on:
		m.names[key] = name
	default:
		delete(m.names, key)
	}
	m.mu.Unlock()
	return true, m.save()
}

// save writes the list atomically (mode 0600, its directory 0700).
func (m *muteList) save() error {
	if m.path == "" {
		return errors.New("no configuration directory: the mute list holds for this session only")
	}
	if err := os.MkdirAll(filepath.Dir(m.path), 0o700); err != nil {
		return fmt.Errorf("mute list: %w", err)
	}
	names := m.list()
	err := durable.WriteFile(m.path, 0o600, func(w io.Writer) error {
		for _, n := range names {
			if _, err := io.WriteString(w, n+"\n"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mute list: %w", err)
	}
	return nil
}

// :mute: [NAME]
func cmdMute(s *session, arg string) (bool, error) {
	if arg == "" {
		names := s.mutes.list()
		if len(names) == 0 {
			s.out.line("nobody is muted")
		} else {
			s.out.line("muted: " + Sanitize(strings.Join(names, " ")))
		}
		return false, nil
	}
	if err := wire.CheckUserName(arg); err != nil {
		s.out.line("! not muted: " + err.Error())
		return false, nil
	}
	if wire.FoldName(arg) == wire.FoldName(s.c.user) {
		s.out.line("! you cannot mute yourself")
		return false, nil
	}
	changed, err := s.mutes.set(arg, true)
	switch {
	case !changed && err == nil:
		s.out.line(Sanitize(arg) + " is already muted")
		return false, nil
	case !changed:
		s.out.line("! not muted: " + Sanitize(err.Error()))
		return false, nil
	}
	s.out.line("muted " + Sanitize(arg) + ": their messages are not shown (the server is not told)")
	if err != nil {
		s.out.line("! " + Sanitize(err.Error()))
	}
	return false, nil
}

// :unmute: NAME
func cmdUnmute(s *session, arg string) (bool, error) {
	if arg == "" {
		s.out.line("usage: :unmute: NAME (:mute: alone lists who is muted)")
		return false, nil
	}
	if err := wire.CheckUserName(arg); err != nil {
		s.out.line("! " + err.Error())
		return false, nil
	}
	changed, err := s.mutes.set(arg, false)
	if !changed {
		s.out.line(Sanitize(arg) + " is not muted")
		return false, nil
	}
	s.out.line("unmuted " + Sanitize(arg))
	if err != nil {
		s.out.line("! " + Sanitize(err.Error()))
	}
	return false, nil
}

// initMutes loads this user's mute list for this server from
// Options.ConfigDir. A list that cannot be
// read is reported and starts with what could be read; without a
// configuration directory mutes hold for this session only.
func (s *session) initMutes() {
	if s.opts.ConfigDir == "" {
		s.mutes = &muteList{names: make(map[string]string)} // kept for this session only
		return
	}
	m, err := loadMutes(MuteFile(s.opts.ConfigDir, s.c.addr, s.c.user))
	if err != nil {
		s.out.line("! " + Sanitize(err.Error()))
	}
	s.mutes = m
}
