package messenger

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Naming: the local name of a downloaded file, and how it is put in
// place without ever replacing an existing file.

// localName makes a file name from the server safe as one name in the
// download directory, more strictly than the server: the last path
// element, without control, format or other characters that are not
// shown as they are (so no raw escape sequence or bidi override), no
// leading or trailing dots and spaces (so never ".", ".." or a hidden
// file), at most maxLocalNameBytes; "file" if nothing is left.
func localName(name string) string {
	name = strings.TrimRight(name, `/\`)
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	var b strings.Builder
	for _, r := range name { // invalid UTF-8 arrives as U+FFFD, which is shown
		if r == ' ' || (isShown(r) && !unicode.IsSpace(r)) {
			b.WriteRune(r)
		}
	}
	trim := func(s string) string {
		return strings.TrimFunc(s, func(r rune) bool { return r == '.' || r == ' ' })
	}
	name = trim(b.String())
	if len(name) > maxLocalNameBytes {
		ext := filepath.Ext(name)
		if len(ext) > maxExtBytes || len(ext) == len(name) {
			ext = ""
		}
		name = trim(cutRunes(name[:len(name)-len(ext)], maxLocalNameBytes-len(ext))) + ext
		name = trim(name)
	}
	if name == "" {
		return "file"
	}
	return name
}

// cutRunes returns the longest prefix of s of at most n bytes that ends on
// a rune boundary.
func cutRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// commitFile gives the finished temporary file tmp in dir the name name, or
// "stem (1).ext", "stem (2).ext", ... if that exists. It never replaces an
// existing file: the new name is created by a hard link, which fails if
// the name exists; where hard links are not supported, the name is first
// claimed with O_EXCL and the file renamed onto that claim.
func commitFile(dir, tmp, name string) (string, error) {
	stem, ext := name, filepath.Ext(name)
	if ext != "" && ext != name {
		stem = name[:len(name)-len(ext)]
	} else {
		ext = ""
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
			syncDir(dir) // best effort: the file itself is synced
			return cand, nil
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
		syncDir(dir)
		return cand, nil
	}
	return "", errors.New("no free file name")
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}
