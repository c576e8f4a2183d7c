// SPDX-License-Identifier: Apache-2.0

package maps

import (
	"fmt"
	"sort"
)

// span is a range [Start, Start+Len) of an array map's indexes.
type span struct {
	Start, Len uint32
}

// end returns the first index after s.
func (s span) end() uint32 { return s.Start + s.Len }

// allocator hands out ranges of an array map's indexes, first fit, and
// merges neighbouring free ranges when they come back.
type allocator struct {
	name string
	cap  uint32
	free []span // sorted by Start, never adjacent
}

func newAllocator(name string, capacity uint32) *allocator {
	a := &allocator{name: name, cap: capacity}
	if capacity > 0 {
		a.free = []span{{0, capacity}}
	}
	return a
}

// alloc returns a free range of n indexes (n == 0 gives an empty range).
func (a *allocator) alloc(n int) (span, error) {
	if n == 0 {
		return span{}, nil
	}
	for i, f := range a.free {
		if uint64(f.Len) < uint64(n) {
			continue
		}
		s := span{f.Start, uint32(n)}
		if f.Len == uint32(n) {
			a.free = append(a.free[:i], a.free[i+1:]...)
		} else {
			a.free[i] = span{f.Start + uint32(n), f.Len - uint32(n)}
		}
		return s, nil
	}
	return span{}, fmt.Errorf("%s: no free range of %d entries (capacity %d, %d free)",
		a.name, n, a.cap, a.available())
}

// release returns s to the free list.
func (a *allocator) release(s span) {
	if s.Len == 0 {
		return
	}
	i := sort.Search(len(a.free), func(i int) bool { return a.free[i].Start > s.Start })
	a.free = append(a.free, span{})
	copy(a.free[i+1:], a.free[i:])
	a.free[i] = s
	// Merge with the next, then with the previous range.
	if i+1 < len(a.free) && a.free[i].end() == a.free[i+1].Start {
		a.free[i].Len += a.free[i+1].Len
		a.free = append(a.free[:i+1], a.free[i+2:]...)
	}
	if i > 0 && a.free[i-1].end() == a.free[i].Start {
		a.free[i-1].Len += a.free[i].Len
		a.free = append(a.free[:i], a.free[i+1:]...)
	}
}

// available returns the number of free indexes.
func (a *allocator) available() uint64 {
	var n uint64
	for _, f := range a.free {
		n += uint64(f.Len)
	}
	return n
}
