package messenger

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// savedFileMode is the mode of a downloaded file: 0666 less the process's
// umask, as any program that creates a file gets (the temporary file is
// 0600 while its data is unchecked).
var savedFileMode = sync.OnceValue(func() fs.FileMode { return 0o666 &^ umask() })

// umask returns the process's file mode creation mask without changing
// it (changing it, even briefly, would race with files other goroutines
// create): from /proc/self/status where the system has it, else from the
// mode of a file created 0666. If neither works it is 022, the usual one.
func umask() fs.FileMode {
	if f, err := os.Open("/proc/self/status"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "Umask:"); ok {
				if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return fs.FileMode(m) & fs.ModePerm
				}
			}
		}
	}
	dir, err := os.MkdirTemp("", "sslm-umask-")
	if err != nil {
		return 0o022
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "probe")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return 0o022
	}
	f.Close()
	st, err := os.Stat(p)
	if err != nil {
		return 0o022
	}
	return 0o666 &^ st.Mode().Perm()
}
