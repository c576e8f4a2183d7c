// SPDX-License-Identifier: Apache-2.0

package eval

import (
	"fmt"

	"github.com/nwbpf/nwbpf/compiler"
	"github.com/nwbpf/nwbpf/maps"
)

// CT is the conntrack-lite view of a packet: what the classifier's
// connection lookup would report before the rules run.
type CT struct {
	// Present says the packet has a conntrack view. CT_STATE is present
	// when it does and the packet has L3; CT_DIR needs a Dir too.
	Present bool
	// State is one of maps.CTNew, CTEstablished, CTRelated, CTInvalid,
	// CTUntracked.
	State uint8
	// Dir is maps.CTDirOriginal or maps.CTDirReply, or 0 when the packet
	// belongs to no connection (INVALID, untracked): CT_DIR is absent then,
	// as the classifier reports it.
	Dir uint8
}

// Verdict is the outcome of a packet.
type Verdict uint8

// Verdicts.
const (
	// VerdictAccept lets the packet through.
	VerdictAccept Verdict = iota
	// VerdictDrop drops it silently (L2 reject included).
	VerdictDrop
	// VerdictReject drops it with an ICMP error (L3/L4 reject).
	VerdictReject
	// VerdictError means the program is malformed; Result.Err says how.
	// The classifier fails closed on it.
	VerdictError
)

var verdictNames = [...]string{"accept", "drop", "reject", "error"}

// String names the verdict.
func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "verdict?"
}

// Result is the outcome of Eval and the entry that decided it: for a drop,
// reject or error, the entry of the stage that stopped the packet; for an
// accept, the entry of the L3/L4 stage that passed it.
type Result struct {
	Verdict Verdict
	// Stage is the stage that decided.
	Stage maps.Stage
	// Index is the deciding entry's index within the stage, -1 when the
	// stage ran off its end (or is empty).
	Index int
	// RuleID is the deciding entry's maps.Rule.ID (0 with Index -1).
	RuleID uint32
	// Action is the deciding entry's action (accept with Index -1).
	Action maps.Action
	// Default is true when no rule decided: the stage passed at a
	// CHAIN_END, by running off its end, or because it is empty.
	Default bool
	// Steps counts the entries executed in both stages.
	Steps int
	// Err says what is malformed, with VerdictError.
	Err error
}

// Eval runs a program's two stages for direction dir over a parsed packet,
// with the binding's instances inst and the packet's conntrack view ct, as
// bpf/nwbpf.h specifies:
//
//   - The L2 stage runs first, from entry 0. MATCH: all conditions true
//     takes the action, else the next entry. JUMP: all conditions true
//     remembers the next entry as the (single) return point and goes to the
//     target. CHAIN_END: ACCEPT passes the stage; RETURN goes back to the
//     return point, or passes the stage when there is none. Actions: accept
//     passes the stage (the L3/L4 stage still runs); drop and reject drop;
//     return goes back to the return point, or passes the stage in the root
//     chain; continue goes to the next entry. Running off the end of the
//     root chain passes.
//   - The L3/L4 stage then runs as one flat chain: accept and return pass,
//     drop drops, reject rejects; CHAIN_END or the end of the list passes.
//   - A rule with NVar > 0 matches if any of its instances
//     (inst[rule.VSlot]) makes all its conditions true.
//
// An entry is checked when it is reached; a malformed one gives
// VerdictError: an unknown kind, action, operator, field or flag, more than
// maps.MaxConds conditions, a JUMP in the L3/L4 stage or while a return
// point is held, a JUMP target not after the JUMP or outside the stage, a
// CHAIN_END other than ACCEPT or RETURN, CONTINUE in the L3/L4 stage
// (nwbpf.h: L2 only), a sub-chain that runs off the end of the stage, a
// variable slot or value index out of range, an instance with other than
// NVar values, more than maps.MaxInstances instances, or NVar not equal to
// the number of conditions flagged maps.CFVar. Because JUMPs go forward
// and never nest, a stage executes at most len*(len+1) entries.
func Eval(stages [2][2][]maps.Rule, inst compiler.Instances, pkt *Packet, dir maps.Dir, ct CT) Result {
	if pkt == nil {
		return errResult(maps.StageL2, -1, nil, 0, fmt.Errorf("nil packet"))
	}
	if dir > maps.DirIn {
		return errResult(maps.StageL2, -1, nil, 0, fmt.Errorf("direction %d out of range", dir))
	}
	e := &evaluator{inst: inst, pkt: pkt, ct: ct}
	l2 := e.runL2(stages[dir][maps.StageL2])
	if l2.Verdict != VerdictAccept {
		return l2
	}
	r := e.runL34(stages[dir][maps.StageL34])
	r.Steps += l2.Steps
	return r
}

type evaluator struct {
	inst compiler.Instances
	pkt  *Packet
	ct   CT
}

func errResult(stage maps.Stage, pc int, r *maps.Rule, steps int, err error) Result {
	res := Result{Verdict: VerdictError, Stage: stage, Index: pc, Steps: steps,
		Err: fmt.Errorf("%s entry %d: %w", stage, pc, err)}
	if r != nil {
		res.RuleID, res.Action = r.ID, r.Action
	}
	return res
}

func decided(v Verdict, stage maps.Stage, pc int, r *maps.Rule, steps int, def bool) Result {
	return Result{Verdict: v, Stage: stage, Index: pc, RuleID: r.ID, Action: r.Action,
		Default: def, Steps: steps}
}

func ranOff(stage maps.Stage, steps int) Result {
	return Result{Verdict: VerdictAccept, Stage: stage, Index: -1, Action: maps.ActAccept,
		Default: true, Steps: steps}
}

func (e *evaluator) runL2(rules []maps.Rule) Result {
	const stage = maps.StageL2
	pc, ret, steps := 0, -1, 0
	for {
		if pc >= len(rules) {
			if ret >= 0 {
				return errResult(stage, pc, nil, steps, fmt.Errorf("sub-chain runs off the end of the stage"))
			}
			return ranOff(stage, steps)
		}
		r := &rules[pc]
		steps++
		switch r.Kind {
		case maps.RKMatch:
			ok, err := e.match(r)
			if err != nil {
				return errResult(stage, pc, r, steps, err)
			}
			if !ok {
				pc++
				continue
			}
			switch r.Action {
			case maps.ActAccept:
				return decided(VerdictAccept, stage, pc, r, steps, false)
			case maps.ActDrop, maps.ActReject:
				return decided(VerdictDrop, stage, pc, r, steps, false)
			case maps.ActReturn:
				if ret < 0 {
					return decided(VerdictAccept, stage, pc, r, steps, false)
				}
				pc, ret = ret, -1
			case maps.ActContinue:
				pc++
			default:
				return errResult(stage, pc, r, steps, fmt.Errorf("unknown action %d", r.Action))
			}
		case maps.RKJump:
			if ret >= 0 {
				return errResult(stage, pc, r, steps, fmt.Errorf("jump inside a sub-chain"))
			}
			if int64(r.Target) <= int64(pc) || int64(r.Target) >= int64(len(rules)) {
				return errResult(stage, pc, r, steps, fmt.Errorf("jump target %d not in (%d, %d)", r.Target, pc, len(rules)))
			}
			ok, err := e.match(r)
			if err != nil {
				return errResult(stage, pc, r, steps, err)
			}
			if !ok {
				pc++
				continue
			}
			pc, ret = int(r.Target), pc+1
		case maps.RKChainEnd:
			switch r.Action {
			case maps.ActAccept:
				return decided(VerdictAccept, stage, pc, r, steps, true)
			case maps.ActReturn:
				if ret < 0 {
					return decided(VerdictAccept, stage, pc, r, steps, true)
				}
				pc, ret = ret, -1
			default:
				return errResult(stage, pc, r, steps, fmt.Errorf("chain end with action %s", r.Action))
			}
		default:
			return errResult(stage, pc, r, steps, fmt.Errorf("unknown entry kind %d", r.Kind))
		}
	}
}

func (e *evaluator) runL34(rules []maps.Rule) Result {
	const stage = maps.StageL34
	steps := 0
	for pc := range rules {
		r := &rules[pc]
		steps++
		switch r.Kind {
		case maps.RKMatch:
			ok, err := e.match(r)
			if err != nil {
				return errResult(stage, pc, r, steps, err)
			}
			if !ok {
				continue
			}
			switch r.Action {
			case maps.ActAccept, maps.ActReturn:
				return decided(VerdictAccept, stage, pc, r, steps, false)
			case maps.ActDrop:
				return decided(VerdictDrop, stage, pc, r, steps, false)
			case maps.ActReject:
				return decided(VerdictReject, stage, pc, r, steps, false)
			default:
				return errResult(stage, pc, r, steps, fmt.Errorf("action %s in the L3/L4 stage", r.Action))
			}
		case maps.RKChainEnd:
			switch r.Action {
			case maps.ActAccept, maps.ActReturn:
				return decided(VerdictAccept, stage, pc, r, steps, true)
			default:
				return errResult(stage, pc, r, steps, fmt.Errorf("chain end with action %s", r.Action))
			}
		case maps.RKJump:
			return errResult(stage, pc, r, steps, fmt.Errorf("jump in the L3/L4 stage"))
		default:
			return errResult(stage, pc, r, steps, fmt.Errorf("unknown entry kind %d", r.Kind))
		}
	}
	return ranOff(stage, steps)
}

// match reports whether an entry's conditions hold, for any instance when
// the entry uses variables. Every condition is checked for well-formedness
// first, so a malformed entry is an error whatever the packet.
func (e *evaluator) match(r *maps.Rule) (bool, error) {
	if r.NCond > maps.MaxConds {
		return false, fmt.Errorf("%d conditions, at most %d", r.NCond, maps.MaxConds)
	}
	nvar := 0
	for i := range int(r.NCond) {
		if r.Cond[i].Flags&maps.CFVar != 0 {
			nvar++
		}
	}
	if nvar != int(r.NVar) {
		return false, fmt.Errorf("nvar %d but %d conditions flagged var", r.NVar, nvar)
	}
	for i := range int(r.NCond) {
		if err := checkCond(&r.Cond[i], r.NVar); err != nil {
			return false, fmt.Errorf("condition %d: %w", i, err)
		}
	}
	if r.NVar == 0 {
		return e.conds(r, nil), nil
	}
	if int64(r.VSlot) >= int64(len(e.inst)) {
		return false, fmt.Errorf("variable slot %d missing (binding has %d)", r.VSlot, len(e.inst))
	}
	insts := e.inst[r.VSlot]
	if len(insts) > maps.MaxInstances {
		return false, fmt.Errorf("slot %d has %d instances, at most %d", r.VSlot, len(insts), maps.MaxInstances)
	}
	for i, vals := range insts {
		if len(vals) != int(r.NVar) {
			return false, fmt.Errorf("slot %d instance %d has %d values, want %d", r.VSlot, i, len(vals), r.NVar)
		}
	}
	for _, vals := range insts {
		if e.conds(r, vals) {
			return true, nil
		}
	}
	return false, nil
}

// conds reports whether all (checked) conditions of r hold with one
// instance's values.
func (e *evaluator) conds(r *maps.Rule, vals []maps.CVal) bool {
	for i := range int(r.NCond) {
		if !e.cond(&r.Cond[i], vals) {
			return false
		}
	}
	return true
}

const knownFlags = maps.CFNeg | maps.CFVar

func checkCond(c *maps.Cond, nvar uint8) error {
	if c.Flags&^knownFlags != 0 {
		return fmt.Errorf("unknown flags %#x", c.Flags)
	}
	if c.Flags&maps.CFVar != 0 && c.Var >= nvar {
		return fmt.Errorf("value index %d, rule has %d", c.Var, nvar)
	}
	if c.Op > maps.OpTCPOpt {
		return fmt.Errorf("unknown operator %d", c.Op)
	}
	if c.Op != maps.OpTCPOpt && c.Field >= maps.FieldMax {
		return fmt.Errorf("unknown field %d", c.Field)
	}
	return nil
}

// cond evaluates one well-formed condition.
func (e *evaluator) cond(c *maps.Cond, vals []maps.CVal) bool {
	a, b := c.A, c.B
	if c.Flags&maps.CFVar != 0 {
		a, b = vals[c.Var].A, vals[c.Var].B
	}
	p := e.pkt
	var present, res bool
	if c.Op == maps.OpTCPOpt {
		present = p.hasTCPOpts
		if a[0] == 0 && a[1] < 256 {
			res, _ = TCPOption(p, uint8(a[1]))
		}
	} else {
		var v maps.U128
		v, present = e.field(c.Field)
		switch c.Op {
		case maps.OpEq:
			res = v[0]&b[0] == a[0] && v[1]&b[1] == a[1]
		case maps.OpRange:
			res = lessEq(a, v) && lessEq(v, b)
		case maps.OpAnyBit:
			res = v[0]&a[0] != 0 || v[1]&a[1] != 0
		}
	}
	if !present {
		return false
	}
	return res != (c.Flags&maps.CFNeg != 0)
}

// field returns a field of the packet, the conntrack ones from the CT view.
func (e *evaluator) field(f maps.Field) (maps.U128, bool) {
	switch f {
	case maps.FCTState, maps.FCTDir:
		if !e.ct.Present || !e.pkt.has[maps.FL3] {
			return maps.U128{}, false
		}
		if f == maps.FCTState {
			return maps.U128{0, uint64(e.ct.State)}, true
		}
		return maps.U128{0, uint64(e.ct.Dir)}, e.ct.Dir != 0
	}
	return FieldValue(e.pkt, f)
}

func lessEq(x, y maps.U128) bool {
	return x[0] < y[0] || x[0] == y[0] && x[1] <= y[1]
}
