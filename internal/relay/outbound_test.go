package relay

import "testing"

// While a download streams, lines wait behind it without stalling their
// producers, up to backlogFactor times the cap; after it, the queue keeps
// that room until it has drained under the cap, so the lines that waited
// cannot get their reader dropped the moment the download ends.
func TestOutboundBacklogBehindADownload(t *testing.T) {
	const max = 1000
	o := newOutbound(func() {}, max, max/4)
	line := make([]byte, 100)
	fill := func(n int) (res enqueueResult, stalled bool) {
		for range n {
			r, ch := o.enqueue(line)
			if r != queued {
				return r, stalled
			}
			stalled = stalled || ch != nil
		}
		return queued, stalled
	}
	if r, stalled := fill(3); r != queued || !stalled {
		t.Fatalf("over high water without a download: %v, stalled %v", r, stalled)
	}
	o.setDownloading(true)
	if r, stalled := fill(37); r != queued || stalled {
		t.Fatalf("behind a download: %v, stalled %v", r, stalled)
	}
	if r, _ := o.enqueue(line); r != overflow {
		t.Fatalf("past %d x the cap: %v, want overflow", backlogFactor, r)
	}
	o.setDownloading(false)
	o.sent(100) // 3900 bytes left, over the cap: the room stays
	if r, ch := o.enqueue(line); r != queued || ch != nil {
		t.Fatalf("draining after the download: %v, stalled %v", r, ch != nil)
	}
	o.sent(3100) // 900 left: back to normal
	if r, _ := o.enqueue(make([]byte, 200)); r != overflow {
		t.Fatalf("over the cap after draining: %v, want overflow", r)
	}
}
