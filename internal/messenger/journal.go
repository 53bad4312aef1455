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

	"sslmessager/internal/durable"
	"sslmessager/internal/wire"
)

// The received-record journal: which file ids were saved, so that a file
// the server sends again (its ACKF was lost) is confirmed, not saved twice.

// maxJournalBytes bounds what is read of a journal file.
const maxJournalBytes = 64 << 20

// journal remembers the ids of files saved but perhaps not yet confirmed:
// a confirmation (ACKF) lost with the connection makes the server send
// the file again, and the journal lets the next download confirm it
// without saving a second copy. A complete download forgets the ids the
// server no longer sent. One journal per user and download directory: the
// file DIR/.sslm-received-USER (USER folded to lower case, or a hash of a
// name that is not plain letters, digits and _), one "id sha256" line per
// file, mode 0600. Every change is fsynced, and so is the directory when
// the file is created or replaced.
type journal struct {
	path string
	ids  map[string]string // id -> sha256, lower case
}

func journalPath(dir, user string) string {
	key := wire.FoldName(user)
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			sum := sha256.Sum256([]byte(user))
			key = hex.EncodeToString(sum[:8])
			break
		}
	}
	return filepath.Join(dir, tempPrefix+"received-"+key)
}

// openJournal reads the journal; a missing or damaged one is empty (a
// damaged line is skipped).
func openJournal(dir, user string) *journal {
	j := &journal{path: journalPath(dir, user), ids: map[string]string{}}
	f, err := os.Open(j.path)
	if err != nil {
		return j
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, maxJournalBytes))
	for sc.Scan() {
		if id, sum, ok := strings.Cut(sc.Text(), " "); ok && id != "" && sum != "" {
			j.ids[id] = strings.ToLower(sum)
		}
	}
	return j
}

func (j *journal) has(id, sum string) bool {
	return id != "" && strings.EqualFold(j.ids[id], sum)
}

// add records id durably: the line is fsynced, and the directory too when
// this creates the file. An error means the record may be lost in a
// crash (the file itself is saved all the same).
func (j *journal) add(id, sum string) error {
	if id == "" {
		return nil
	}
	created := false
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND, 0)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
		created = err == nil
		if errors.Is(err, fs.ErrExist) { // created by another client just now
			f, err = os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND, 0)
		}
	}
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
	if err == nil && created {
		err = durable.SyncDir(filepath.Dir(j.path))
	}
	if err == nil {
		j.ids[id] = strings.ToLower(sum)
	}
	return err
}

// keepOnly forgets every id not in keep, replacing the file atomically
// (or removing it when nothing is left).
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
	return durable.WriteFile(j.path, 0o600, func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		for id, sum := range j.ids {
			fmt.Fprintf(bw, "%s %s\n", id, sum)
		}
		return bw.Flush()
	})
}
