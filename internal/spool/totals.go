package spool

// Totals returns, in one snapshot, what the whole spool holds: files
// (committed plus uploads in progress, as Queued counts them), the
// recipients with at least one of those, and bytes (committed plus
// reserved, as Used counts them). It takes time in proportion to the
// recipients with files queued.
func (s *Spool) Totals() (files, recipients int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.used {
		files += u.files
		if u.files > 0 {
			recipients++
		}
	}
	return files, recipients, s.total
}
