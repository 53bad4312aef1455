package messenger

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// The received-record journal: which file ids were saved, so that a file
// the server sends again (its ACKF was lost) is confirmed, not saved twice.

// journal remembers the ids of files saved but perhaps not yet confirmed:
// a confirmation (ACKF) lost with the connection makes the server send
// the file again, and the journal lets the next download confirm it
// without saving a second copy. A complete download forgets the ids the
// server no longer sent. One journal per user and download directory.
type journal struct {
	path string
	ids  map[string]string // id -> sha256
}

func journalPath(dir, user string) string {
	key := strings.ToLower(user)
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			sum := sha256.Sum256([]byte(user))
			key = hex.EncodeToString(sum[:8])
			break
		}
	}
	return filepath.Join(dir, tempPrefix+"received-"+key)
}

// openJournal reads the journal; a missing or damaged one is empty.
func openJournal(dir, user string) *journal {
	j := &journal{path: journalPath(dir, user), ids: map[string]string{}}
	f, err := os.Open(j.path)
	if err != nil {
		return j
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 64<<20))
	for sc.Scan() {
		if id, sum, ok := strings.Cut(sc.Text(), " "); ok && id != "" && sum != "" {
			j.ids[id] = sum
		}
	}
	return j
}

func (j *journal) has(id, sum string) bool {
	return id != "" && strings.EqualFold(j.ids[id], sum)
}

// add records id durably.
func (j *journal) add(id, sum string) error {
	if id == "" {
		return nil
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "%s %s\n", id, strings.ToLower(sum))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		j.ids[id] = strings.ToLower(sum)
	}
	return err
}

// keepOnly forgets every id not in keep.
func (j *journal) keepOnly(keep map[string]bool) error {
	drop := false
	for id := range j.ids {
		if !keep[id] {
			delete(j.ids, id)
			drop = true
		}
	}
	if !drop {
		return nil
	}
	if len(j.ids) == 0 {
		if err := os.Remove(j.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(j.path), tempPrefix+"journal-*")
	if err != nil {
		return err
	}
	w := bufio.NewWriter(tmp)
	for id, sum := range j.ids {
		fmt.Fprintf(w, "%s %s\n", id, sum)
	}
	err = w.Flush()
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), j.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
