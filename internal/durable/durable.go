// Package durable holds the one way this project makes a file change
// survive a crash: fsync the data, rename it into place, fsync the
// directory. Every package that writes state to disk (accounts, spool,
// certificates, the client's downloads) uses these helpers, so the error
// policy is the same everywhere.
package durable

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// SyncDir fsyncs the directory dir, so that a create, rename or remove in
// it survives a crash. A file system that cannot sync a directory (EINVAL,
// ENOTSUP) is not an error: there the rename is as durable as the system
// allows. Any other failure is returned, wrapped with the directory name.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil && !errors.Is(serr, syscall.EINVAL) && !errors.Is(serr, errors.ErrUnsupported) {
		return fmt.Errorf("sync directory %s: %w", dir, serr)
	}
	if cerr != nil {
		return fmt.Errorf("sync directory %s: %w", dir, cerr)
	}
	return nil
}

// tempInfix marks WriteFile's temporary files: "." + base + tempInfix + random.
const tempInfix = ".tmp-"

// IsTemp reports whether name (a base name) is one of WriteFile's
// temporary files, which only a crash during a WriteFile leaves behind:
// whoever owns the directory may remove them at start.
func IsTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, tempInfix)
}

// RemoveTemps removes the temporary files a crash during WriteFile(path)
// left beside path.
func RemoveTemps(path string) error {
	dir, prefix := filepath.Dir(path), "."+filepath.Base(path)+tempInfix
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// WriteFile replaces path atomically with what write produces: it writes a
// temporary file in the same directory (mode perm), fsyncs it, renames it
// over path and fsyncs the directory. On any error path is unchanged and
// the temporary file is gone. Errors name path, never the temporary file.
func WriteFile(path string, perm os.FileMode, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+tempInfix+"*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, unwrapPath(err))
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
			err = fmt.Errorf("write %s: %w", path, unwrapPath(err))
		}
	}()
	if err = tmp.Chmod(perm); err != nil {
		return err
	}
	if err = write(tmp); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmpName, path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// unwrapPath drops the *PathError around err, whose path would name the
// temporary file.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return fmt.Errorf("%s: %w", le.Op, le.Err)
	}
	return err
}
