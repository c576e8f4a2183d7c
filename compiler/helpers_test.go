// SPDX-License-Identifier: Apache-2.0

package compiler

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nwbpf/nwbpf/maps"
)

// setOf defines filters from XML documents, failing the test on error.
func setOf(t testing.TB, docs ...string) *Set {
	t.Helper()
	s := NewSet()
	for i, d := range docs {
		f, err := ParseFilter([]byte(d), fmt.Sprintf("doc%d", i))
		if err != nil {
			t.Fatalf("parse doc%d: %v", i, err)
		}
		if err := s.Define(f); err != nil {
			t.Fatalf("define doc%d: %v", i, err)
		}
	}
	return s
}

// vars builds a variable set from "NAME=VALUE" strings.
func vars(kv ...string) *Params {
	p := &Params{}
	for _, s := range kv {
		n, v, _ := strings.Cut(s, "=")
		p.Add(n, v)
	}
	return p
}

// compileBind compiles root and binds it with kv (MAC defaults to
// 52:54:00:00:00:01).
func compileBind(t testing.TB, s *Set, root string, kv ...string) (*Program, Instances) {
	t.Helper()
	p, err := s.Compile(root, Options{})
	if err != nil {
		t.Fatalf("compile %s: %v", root, err)
	}
	v := vars(kv...)
	if _, ok := v.Get("MAC"); !ok {
		v.Add("MAC", "52:54:00:00:00:01")
	}
	inst, err := p.Bind(v)
	if err != nil {
		t.Fatalf("bind %s: %v", root, err)
	}
	return p, inst
}

// stage renders one direction and stage as lines "chain prio action
// filter#rule[r]: match [= instance | ...]".
func stage(p *Program, inst Instances, d maps.Dir, st maps.Stage) []string {
	var out []string
	for _, e := range p.List(inst).Stages[int(d)*2+int(st)].Entries {
		m := e.Meta
		src := ""
		if m.Filter != "" {
			src = fmt.Sprintf(" %s#%d", m.Filter, m.Rule)
			if m.Reversed {
				src += "r"
			}
		}
		line := fmt.Sprintf("%s %d %s%s: %s", m.Chain, m.Priority, m.Action, src, m.Match)
		if e.Target != nil {
			line += fmt.Sprintf(" @%d", *e.Target)
		}
		var insts []string
		for _, in := range e.Instances {
			insts = append(insts, strings.Join(in, ","))
		}
		if len(insts) > 0 {
			line += " = " + strings.Join(insts, " | ")
		}
		out = append(out, line)
	}
	return out
}

func wantLines(t testing.TB, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
