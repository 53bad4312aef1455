//go:build !linux

package durable

func (w *WriteBehind) hint() { w.started = w.off }
