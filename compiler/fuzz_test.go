// SPDX-License-Identifier: Apache-2.0

package compiler

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addStockSeeds seeds a fuzz target with the stock filters when they are
// installed (they are not copied into the repository).
func addStockSeeds(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(stockDir, "*.xml"))
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`<filter name='x' chain='ipv4-ip' priority='-10'><rule action='drop' direction='inout' priority='3'><tcp match='no' srcipaddr='$IP[@1]' dstportstart='22' state='NEW'/><icmp type='8' code='$C[0]'/></rule><filterref filter='y'><parameter name='A' value='1'/></filterref></filter>`))
	f.Add([]byte(`<filter name='y'><rule action='accept' direction='out'><stp type='0' root-priority='$P' root-priority-hi='9'/></rule><rule action='return' direction='in'><arp gratuitous='true' arpdstipaddr='$IP'/></rule></filter>`))
}

// FuzzParseFilter: any input either fails with an error or yields a
// filter that defines, compiles and binds without panicking.
func FuzzParseFilter(f *testing.F) {
	addStockSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		flt, err := ParseFilter(data, "fuzz.xml")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.xml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		s := NewSet()
		if err := s.Define(flt); err != nil {
			return
		}
		p, err := s.Compile(flt.Name, Options{})
		if err != nil {
			return
		}
		inst, err := p.Bind(vars("MAC=52:54:00:00:00:01", "IP=10.0.0.1", "IP=10.0.0.2", "C=0", "P=7", "A=5"))
		if err != nil {
			return
		}
		if len(inst) != len(p.VarRules) {
			t.Fatalf("%d instance slots for %d variable rules", len(inst), len(p.VarRules))
		}
		for d := range p.Stages {
			for st := range p.Stages[d] {
				for _, r := range p.Stages[d][st] {
					if int(r.ID) >= len(p.Meta) || int(r.NCond) > len(r.Cond) {
						t.Fatalf("bad entry %+v", r)
					}
					if int(r.Target) > len(p.Stages[d][st]) {
						t.Fatalf("jump target %d out of stage of %d", r.Target, len(p.Stages[d][st]))
					}
				}
			}
		}
		_ = p.List(inst)
	})
}

// FuzzParseBinding: bindings parse or fail cleanly.
func FuzzParseBinding(f *testing.F) {
	f.Add([]byte(`<filterbinding><owner><name>g</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner><portdev name='vnet0'/><mac address='52:54:00:56:44:32'/><filterref filter='clean-traffic'><parameter name='IP' value='10.0.0.5'/></filterref></filterbinding>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBinding(data, "b.xml")
		if err != nil {
			return
		}
		if ValidDeviceName(b.PortDev) != nil {
			t.Fatalf("accepted device name %q", b.PortDev)
		}
		_ = b.Vars()
	})
}

// FuzzExpand: the variable expander never panics, never exceeds its
// bound, and every combination assigns every access.
func FuzzExpand(f *testing.F) {
	f.Add("A B[@1] C[0] A[@2]", "1,2,3,3", "80,90,80,80", "x")
	f.Add("A[@1000] B[ @ 3 ]", "1", "2,3", "")
	f.Fuzz(func(t *testing.T, refs, a, b, c string) {
		var acc []VarAccess
		for _, r := range strings.Fields(refs) {
			va, err := ParseVarAccess(r)
			if err != nil {
				continue
			}
			acc = append(acc, va)
		}
		vals := map[string][]string{}
		for name, s := range map[string]string{"A": a, "B": b, "C": c} {
			if s != "" {
				vals[name] = strings.Split(s, ",")
			}
		}
		combos, err := expand(acc, func(n string) ([]string, bool) { v, ok := vals[n]; return v, ok })
		if err != nil {
			return
		}
		if len(combos) == 0 || len(combos) > MaxInstances {
			t.Fatalf("%d combinations", len(combos))
		}
		for _, m := range combos {
			for _, va := range acc {
				if _, ok := m[va]; !ok {
					t.Fatalf("combination misses %v", va)
				}
			}
		}
	})
}
