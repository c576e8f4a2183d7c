// SPDX-License-Identifier: Apache-2.0

package eval

import (
	"testing"

	"github.com/nwbpf/nwbpf/compiler"
	"github.com/nwbpf/nwbpf/maps"
)

// FuzzParse checks that any bytes parse without panicking and that the
// presence rules of bpf/nwbpf.h hold for the result.
func FuzzParse(f *testing.F) {
	f.Add([]byte{}, false, uint16(0))
	f.Add(rawEth(ethTypeIPv4, 0x45, 0, 0, 20), true, uint16(7))
	f.Fuzz(func(t *testing.T, data []byte, vlan bool, tci uint16) {
		p := Parse(data, Meta{VlanPresent: vlan, VlanTCI: tci, VlanProto: ethType8021Q})
		checkInvariants(t, p)
		if vlan && len(data) >= ethHdrLen {
			if v, ok := FieldValue(p, maps.FVlanID); !ok || v[1] != uint64(tci&0x0fff) {
				t.Errorf("vlan id %v %v, want %d from metadata", v, ok, tci&0x0fff)
			}
		}
	})
}

// program decodes fuzz bytes into stages and instances, covering malformed
// kinds, actions, targets, operators, fields, flags and slots.
func program(b []byte) ([2][2][]maps.Rule, compiler.Instances) {
	next := func() byte {
		if len(b) == 0 {
			return 0
		}
		c := b[0]
		b = b[1:]
		return c
	}
	var stages [2][2][]maps.Rule
	for d := range stages {
		for s := range stages[d] {
			n := int(next() % 9)
			for i := range n {
				r := maps.Rule{
					Kind:   maps.RuleKind(next() % 4),
					Action: maps.Action(next() % 6),
					Target: uint32(next() % 10),
					ID:     uint32(i),
					VSlot:  uint32(next() % 3),
					NCond:  next() % 4,
				}
				if r.NCond == 3 && next()%8 == 0 {
					r.NCond = maps.MaxConds + 1
				}
				for j := range min(int(r.NCond), maps.MaxConds) {
					c := maps.Cond{
						Field: maps.Field(next() % uint8(maps.FieldMax+2)),
						Op:    maps.Op(next() % 5),
						Flags: next() % 16,
						Var:   next() % 3,
						A:     maps.U128{0, uint64(next())},
						B:     maps.U128{0, uint64(next())},
					}
					if next()%2 == 0 {
						c.B = all
					}
					if c.Flags&maps.CFVar != 0 {
						r.NVar++
					}
					r.Cond[j] = c
				}
				if next()%16 == 0 {
					r.NVar++
				}
				stages[d][s] = append(stages[d][s], r)
			}
		}
	}
	inst := make(compiler.Instances, next()%4)
	for s := range inst {
		inst[s] = make([][]maps.CVal, next()%4)
		for i := range inst[s] {
			inst[s][i] = make([]maps.CVal, next()%4)
			for j := range inst[s][i] {
				inst[s][i][j] = maps.CVal{A: maps.U128{0, uint64(next())}, B: all}
			}
		}
	}
	return stages, inst
}

// FuzzEval checks that random frames and random (mostly malformed)
// programs never panic, always stop within the documented step bound and
// give a consistent result.
func FuzzEval(f *testing.F) {
	f.Add(rawEth(ethTypeARP, 0, 1, 8, 0, 6, 4, 0, 1), []byte{2, 0, 0, 0, 0, 1, 3, 2, 2, 0, 4, 5}, uint8(1))
	f.Fuzz(func(t *testing.T, data, prog []byte, ct uint8) {
		stages, inst := program(prog)
		pkt := Parse(data, Meta{})
		view := CT{Present: ct&0x80 != 0, State: ct & 0x0f, Dir: ct >> 4 & 3}
		for dir := range maps.Dir(2) {
			r := Eval(stages, inst, pkt, dir, view)
			if (r.Verdict == VerdictError) != (r.Err != nil) {
				t.Fatalf("verdict %v with error %v", r.Verdict, r.Err)
			}
			if r.Verdict > VerdictError {
				t.Fatalf("verdict %d", r.Verdict)
			}
			if r.Stage == maps.StageL2 && r.Verdict == VerdictReject {
				t.Fatalf("reject from the L2 stage: %+v", r)
			}
			bound := 0
			for _, rules := range stages[dir] {
				bound += len(rules) * (len(rules) + 1)
			}
			if r.Steps > bound {
				t.Fatalf("%d steps, bound %d", r.Steps, bound)
			}
			if n := len(stages[dir][r.Stage]); r.Index < -1 || r.Index > n {
				t.Fatalf("index %d in a stage of %d", r.Index, n)
			}
			if r.Default && r.Verdict != VerdictAccept {
				t.Fatalf("default verdict %v", r.Verdict)
			}
			if again := Eval(stages, inst, pkt, dir, view); again.Verdict != r.Verdict || again.Index != r.Index {
				t.Fatalf("not deterministic: %+v then %+v", r, again)
			}
		}
	})
}
