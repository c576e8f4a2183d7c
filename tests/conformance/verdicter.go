// SPDX-License-Identifier: Apache-2.0

package conformance

import (
	"fmt"

	"github.com/nwbpf/nwbpf/compiler"
	"github.com/nwbpf/nwbpf/compiler/eval"
	"github.com/nwbpf/nwbpf/maps"
)

// Frame is one frame of the corpus: its description and its bytes for the
// topology the corpus was built for.
type Frame struct {
	Spec Spec
	Data []byte
}

// Dir is the frame's direction relative to the VM.
func (f Frame) Dir() maps.Dir { return f.Spec.Dir }

// Verdicter gives nwbpf's verdicts: for a compiled program and a binding's
// instances, whether each frame, in order, is delivered. It is the seam
// between the harness and nwbpf's data plane: the reference evaluator, the
// classifier under BPF_PROG_TEST_RUN, or a classifier attached to a real tap
// all answer the same question. The reference evaluator has no connection
// tracking (it judges every frame with no conntrack view); the classifier
// has its conntrack-lite, flushed before each case.
type Verdicter interface {
	// Name identifies the implementation in reports.
	Name() string
	// Verdicts returns one verdict per frame of every case, true meaning
	// delivered; each case starts from empty connection state, as the
	// harness flushes libvirt's conntrack before each case.
	Verdicts(prog *compiler.Program, inst compiler.Instances, cases [][]Frame) ([][]bool, error)
}

// Tracker is implemented by a Verdicter that tracks connections across the
// frames of a case, as libvirt's conntrack does. The harness holds such a
// Verdicter to libvirt's verdict on every frame, state-dependent ones
// included; a Verdicter without connection tracking judges state-dependent
// frames with no conntrack view, and those are only counted.
type Tracker interface {
	// TracksConnections reports whether the Verdicter tracks connections.
	TracksConnections() bool
}

// tracksConnections reports whether v tracks connections (Tracker).
func tracksConnections(v Verdicter) bool {
	t, ok := v.(Tracker)
	return ok && t.TracksConnections()
}

// EvalVerdicter answers with the reference evaluator (compiler/eval).
type EvalVerdicter struct{}

// Name implements Verdicter.
func (EvalVerdicter) Name() string { return "eval" }

// Verdicts implements Verdicter. A malformed program (eval.VerdictError) is an
// error naming the frame.
func (EvalVerdicter) Verdicts(prog *compiler.Program, inst compiler.Instances, cases [][]Frame) ([][]bool, error) {
	out := make([][]bool, len(cases))
	for c, frames := range cases {
		out[c] = make([]bool, len(frames))
		for i, f := range frames {
			r := eval.Eval(prog.Stages, inst, eval.Parse(f.Data, eval.Meta{}), f.Dir(), eval.CT{})
			if r.Verdict == eval.VerdictError {
				return nil, fmt.Errorf("eval case %d frame %d (%s): %w", c, i, f.Spec, r.Err)
			}
			out[c][i] = r.Verdict == eval.VerdictAccept
		}
	}
	return out, nil
}

// ctViews are the connection-tracking views a frame can have: none, and
// every state in both conntrack directions.
var ctViews = func() []eval.CT {
	v := []eval.CT{{}}
	for _, st := range []uint8{maps.CTNew, maps.CTEstablished, maps.CTRelated, maps.CTInvalid} {
		for _, d := range []uint8{maps.CTDirOriginal, maps.CTDirReply} {
			v = append(v, eval.CT{Present: true, State: st, Dir: d})
		}
	}
	return v
}()

// StateDependent reports whether the frame's verdict under prog depends on
// the connection state the classifier would see: whether the reference
// evaluator gives different verdicts for different conntrack views. Only a
// Verdicter that tracks connections (Tracker) can judge such a frame.
func StateDependent(prog *compiler.Program, inst compiler.Instances, f Frame) bool {
	pkt := eval.Parse(f.Data, eval.Meta{})
	first := eval.Eval(prog.Stages, inst, pkt, f.Dir(), ctViews[0]).Verdict
	for _, ct := range ctViews[1:] {
		if eval.Eval(prog.Stages, inst, pkt, f.Dir(), ct).Verdict != first {
			return true
		}
	}
	return false
}

// Decider describes the program entry that decided the frame's verdict
// (with no conntrack view), for reports: "stage #index filter action match",
// or the stage's default.
func Decider(prog *compiler.Program, inst compiler.Instances, f Frame) string {
	r := eval.Eval(prog.Stages, inst, eval.Parse(f.Data, eval.Meta{}), f.Dir(), eval.CT{})
	stage := map[maps.Stage]string{maps.StageL2: "L2", maps.StageL34: "L3/L4"}[r.Stage]
	if r.Index < 0 || int(r.RuleID) >= len(prog.Meta) {
		return fmt.Sprintf("%s: %s by default", stage, r.Verdict)
	}
	m := prog.Meta[r.RuleID]
	s := fmt.Sprintf("%s #%d %s/%s rule %d %s", stage, r.Index, m.Filter, m.Chain, m.Rule, m.Action)
	if m.Match != "" {
		s += " [" + m.Match + "]"
	}
	if m.Reversed {
		s += " (reversed)"
	}
	return s
}
