// SPDX-License-Identifier: Apache-2.0

package compiler

import (
	"fmt"
	"strconv"
	"strings"
)

// maxIterID is libvirt's VIR_NWFILTER_MAX_ITERID.
const maxIterID = 1000

// VarAccess is a variable reference: $NAME (iterator 0), $NAME[@N]
// (iterator N) or $NAME[N] (element N).
type VarAccess struct {
	Name    string
	Element bool // $NAME[N]
	Index   int  // iterator id, or element index
}

// String prints the reference without the leading '$'.
func (v VarAccess) String() string {
	if v.Element {
		return fmt.Sprintf("%s[%d]", v.Name, v.Index)
	}
	if v.Index == 0 {
		return v.Name
	}
	return fmt.Sprintf("%s[@%d]", v.Name, v.Index)
}

// ParseVarAccess parses a reference without its '$'.
func ParseVarAccess(s string) (VarAccess, error) {
	n := len(s) - len(strings.TrimLeft(s, varNameChars))
	name := s[:n]
	if name == "" {
		return VarAccess{}, fmt.Errorf("malformed variable reference $%s", s)
	}
	rest := s[n:]
	if rest == "" {
		return VarAccess{Name: name}, nil
	}
	if rest[0] != '[' {
		return VarAccess{}, fmt.Errorf("malformed variable reference $%s", s)
	}
	rest = strings.TrimLeft(rest[1:], " \t\n\r\v\f")
	iter := false
	if strings.HasPrefix(rest, "@") {
		iter = true
		// strtoul skips blanks before the number.
		rest = strings.TrimLeft(rest[1:], " \t\n\r\v\f")
	}
	d := len(rest) - len(strings.TrimLeft(rest, "0123456789"))
	if d == 0 {
		return VarAccess{}, fmt.Errorf("malformed variable reference $%s", s)
	}
	idx, err := strconv.Atoi(rest[:d])
	if err != nil {
		return VarAccess{}, fmt.Errorf("malformed variable reference $%s", s)
	}
	rest = strings.TrimLeft(rest[d:], " \t\n\r\v\f")
	if !strings.HasPrefix(rest, "]") {
		return VarAccess{}, fmt.Errorf("malformed variable reference $%s", s)
	}
	if iter && idx > maxIterID {
		return VarAccess{}, fmt.Errorf("iterator id %d of $%s is above %d", idx, s, maxIterID)
	}
	return VarAccess{Name: name, Element: !iter, Index: idx}, nil
}

// ErrUnboundVar marks a reference to a variable the binding does not set.
type ErrUnboundVar struct {
	Name string
}

func (e *ErrUnboundVar) Error() string {
	return fmt.Sprintf("variable $%s is not set", e.Name)
}

// expand lists every combination of values for a rule's variable
// accesses, as libvirt's virNWFilterVarCombIter does: accesses sharing an
// iterator id advance in parallel (equal list lengths required), distinct
// iterator ids form a cartesian product (the first registered varies
// fastest), element accesses are fixed, and an iterator position whose
// value tuple repeats an earlier one is skipped. Each combination maps a
// VarAccess to its value.
func expand(accesses []VarAccess, lookup func(string) ([]string, bool)) ([]map[VarAccess]string, error) {
	type iterator struct {
		id     int
		vars   []VarAccess
		values [][]string // per var
		n      int
		pos    []int // distinct positions after dedupe
	}
	var iters []*iterator
	fixed := map[VarAccess]string{}
	for _, va := range accesses {
		vals, ok := lookup(va.Name)
		if !ok || len(vals) == 0 {
			return nil, &ErrUnboundVar{Name: va.Name}
		}
		if va.Element {
			if va.Index >= len(vals) {
				return nil, fmt.Errorf("$%s: element %d is not available (the list has %d)", va.String(), va.Index, len(vals))
			}
			fixed[va] = vals[va.Index]
			continue
		}
		var it *iterator
		for _, x := range iters {
			if x.id == va.Index {
				it = x
			}
		}
		if it == nil {
			it = &iterator{id: va.Index, n: len(vals)}
			iters = append(iters, it)
		}
		if len(vals) != it.n {
			return nil, fmt.Errorf("cardinality of list items must be the same for processing them in parallel: $%s has %d, iterator @%d has %d", va.String(), len(vals), it.id, it.n)
		}
		it.vars = append(it.vars, va)
		it.values = append(it.values, vals)
	}
	for _, it := range iters {
		seen := map[string]bool{}
		for i := 0; i < it.n; i++ {
			var key strings.Builder
			for _, vv := range it.values {
				key.WriteString(vv[i])
				key.WriteByte(0)
			}
			if seen[key.String()] {
				continue
			}
			seen[key.String()] = true
			it.pos = append(it.pos, i)
		}
	}
	total := 1
	for _, it := range iters {
		total *= len(it.pos)
		if total > MaxInstances {
			return nil, fmt.Errorf("variables expand to more than %d instances", MaxInstances)
		}
	}
	out := make([]map[VarAccess]string, 0, total)
	cur := make([]int, len(iters))
	for k := 0; k < total; k++ {
		m := make(map[VarAccess]string, len(accesses))
		for va, v := range fixed {
			m[va] = v
		}
		for j, it := range iters {
			p := it.pos[cur[j]]
			for vi, va := range it.vars {
				m[va] = it.values[vi][p]
			}
		}
		out = append(out, m)
		for j := range cur {
			cur[j]++
			if cur[j] < len(iters[j].pos) {
				break
			}
			cur[j] = 0
		}
	}
	return out, nil
}
