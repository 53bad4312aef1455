package spool

// Totals returns the files and bytes of the whole spool: committed files
// plus uploads in progress (and their reservations), as Queued and Used
// count them per recipient.
func (s *Spool) Totals() (files int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.used {
		files += u.files
	}
	return files, s.total
}

// TotalFiles returns the files of the whole spool: committed ones plus
// uploads in progress. It takes time in proportion to the recipients with
// files queued.
func (s *Spool) TotalFiles() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, u := range s.used {
		n += u.files
	}
	return n
}

// Recipients returns how many recipients have files queued (or uploads
// in progress).
func (s *Spool) Recipients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, u := range s.used {
		if u.files > 0 {
			n++
		}
	}
	return n
}
