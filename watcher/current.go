package watcher

import "sync/atomic"

// Current holds the active value of a reloadable set (config, compiled policy) for readers
// that must never wait on a reload. The zero value holds nothing; it must not be copied after
// first use.
//
// Readers call Load once per unit of work (one login) and keep using what they got, so a
// reload in the middle never mixes an old and a new value. Values stored must be treated as
// immutable once published.
type Current[T any] struct {
	p atomic.Pointer[T]
}

// NewCurrent returns a Current holding v.
func NewCurrent[T any](v *T) *Current[T] {
	c := &Current[T]{}
	c.p.Store(v)
	return c
}

// Load returns the active value, or nil if none was ever stored. It never blocks and is safe
// for concurrent use with Swap.
func (c *Current[T]) Load() *T { return c.p.Load() }

// Swap makes v the active value in one atomic step and returns the previous one. It is safe
// for concurrent use; readers see either the old or the new value, never a mix.
func (c *Current[T]) Swap(v *T) (old *T) { return c.p.Swap(v) }
