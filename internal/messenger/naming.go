package messenger

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Naming: the local name of a downloaded file, the temporary ".part" file
// it is written to first, and how it is put in place without ever
// replacing an existing file.

// Local names.
const (
	// maxLocalNameBytes bounds a saved file's name, leaving room for a
	// " (n)" before the extension within the usual 255-byte limit.
	maxLocalNameBytes = 200
	// tempPrefix starts the names of the files this client writes in the
	// download directory (data being received, the received-record file);
	// saved names never start with a dot, so they cannot clash.
	tempPrefix = ".sslm-"
	// partSuffix ends the name of a file whose data is still being
	// received: tempPrefix + random + partSuffix.
	partSuffix = ".part"
)

// createPart creates the temporary file a download writes into, in dir,
// and locks it (where the system has file locks) so that removeStaleParts
// in another client leaves it alone while this one writes it.
func createPart(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, tempPrefix+"*"+partSuffix)
	if err != nil {
		return nil, err
	}
	if err := lockPart(f); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// isPartName reports whether name is one of our temporary download files.
func isPartName(name string) bool {
	return strings.HasPrefix(name, tempPrefix) && strings.HasSuffix(name, partSuffix) &&
		len(name) > len(tempPrefix)+len(partSuffix)
}

// removeStaleParts removes from dir the temporary download files that a
// crashed or killed run left behind: regular files named like ours whose
// lock nobody holds (a download in progress, in this or another client,
// holds its lock). Nothing else in dir is touched, and nothing outside it.
// It returns how many files it removed; errors are ignored (a file that
// cannot be removed now is tried again next time).
func removeStaleParts(dir string) int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if !e.Type().IsRegular() || !isPartName(e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		if lockPart(f) == nil && os.Remove(p) == nil {
			n++
		}
		f.Close()
	}
	return n
}

// commitFile gives the finished temporary file tmp in dir the name name, or
// "stem (1).ext", "stem (2).ext", ... if that exists, then fsyncs dir with
// syncDir. It never replaces an existing file: the new name is created by a
// hard link, which fails if the name exists; where hard links are not
// supported, the name is first claimed with O_EXCL and the file renamed
// onto that claim. When the directory fsync fails the new name is removed
// again and the error returned: a file whose name may not survive a crash
// counts as not saved (and is not confirmed, so the server keeps it).
func commitFile(dir, tmp, name string, syncDir func(string) error) (string, error) {
	stem, ext := name, filepath.Ext(name)
	if ext != "" && ext != name {
		stem = name[:len(name)-len(ext)]
	} else {
		ext = ""
	}
	placed := func(cand, p string) (string, error) {
		if err := syncDir(dir); err != nil {
			os.Remove(p)
			return "", err
		}
		return cand, nil
	}
	for i := 0; i < 100000; i++ {
		cand := name
		if i > 0 {
			cand = fmt.Sprintf("%s (%d)%s", stem, i, ext)
		}
		p := filepath.Join(dir, cand)
		lerr := os.Link(tmp, p)
		if lerr == nil {
			os.Remove(tmp)
			return placed(cand, p)
		}
		if errors.Is(lerr, fs.ErrExist) {
			continue
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", lerr
		}
		f.Close()
		if err := os.Rename(tmp, p); err != nil {
			os.Remove(p)
			return "", err
		}
		return placed(cand, p)
	}
	return "", errors.New("no free file name")
}
