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
