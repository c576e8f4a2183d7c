// SPDX-License-Identifier: Apache-2.0

package conformance

import (
	"fmt"
	"time"

	"github.com/nwbpf/nwbpf/compiler"
	"github.com/nwbpf/nwbpf/maps"
)

// Reference is the implementation nwbpf is compared with: real libvirt in
// the tests (see tests/libvirtref), a fake in the harness's own tests.
// Methods report problems through the test they were built for.
type Reference interface {
	// Define defines a custom <filter> document.
	Define(filterXML string)
	// Bind instantiates filter for the guest with params (MAC comes from
	// the binding).
	Bind(filter string, params []Param)
	// Unbind removes the binding.
	Unbind()
	// Flush forgets every tracked connection.
	Flush()
	// Send sends frame in dir and reports whether it was delivered,
	// waiting at most timeout for it.
	Send(dir maps.Dir, frame []byte, timeout time.Duration) bool
}

// Options tune Run.
type Options struct {
	// Timeout is how long the Reference waits for a frame before calling
	// it dropped.
	Timeout time.Duration
	// Confirm is the longer wait used to re-check a frame the Reference
	// dropped where nwbpf delivers it, before calling it a divergence.
	Confirm time.Duration
	// Known lists divergences nwbpf makes on purpose.
	Known []Known
	// Logf, when set, receives progress lines.
	Logf func(format string, args ...any)
}

// Status is the outcome of one frame's comparison.
type Status uint8

// Statuses.
const (
	// Agree: stateless verdict, same on both sides.
	Agree Status = iota
	// Diverge: different, not explained. For a Verdicter with connection
	// tracking (Tracker) this includes state-dependent frames.
	Diverge
	// Explained: different on purpose (a Known divergence).
	Explained
	// StateAgree: the verdict depends on connection state, and agrees.
	StateAgree
	// StateDiverge: depends on connection state, and differs, for a
	// Verdicter without connection tracking (which judges the frame
	// with no conntrack view): counted, not a failure.
	StateDiverge
	// BridgeDrop: the bridge drops the frame with no filter at all;
	// not compared.
	BridgeDrop
	numStatus
)

var statusNames = [...]string{"agree", "DIVERGE", "explained", "state-agree", "state-diverge", "bridge-drop"}

// String names the status.
func (s Status) String() string {
	if s < numStatus {
		return statusNames[s]
	}
	return fmt.Sprintf("status%d", s)
}

// FrameResult is one frame's comparison.
type FrameResult struct {
	Case    *Case
	Index   int // the frame's position in its case
	Frame   Frame
	Libvirt bool // delivered by libvirt
	Nwbpf   bool // delivered by nwbpf (this Verdicter)
	Status  Status
	// State says the verdict depends on connection state
	// (StateDependent).
	State bool
	// Decider is the nwbpf entry that decided (reference evaluator).
	Decider string
	// Known is the divergence that explains it, with Explained.
	Known *Known
	// Confirmed says the Reference's drop was re-checked with the longer
	// timeout.
	Confirmed bool
}

// FilterResult is one filter tree's comparison with one Verdicter.
type FilterResult struct {
	Filter    Filter
	Verdicter string
	// Tracked says the Verdicter tracks connections (Tracker): its
	// state-dependent frames are compared exactly.
	Tracked bool
	Frames  []FrameResult
	Counts  [numStatus]int
	// Flaky counts frames whose Reference verdict changed on
	// confirmation (delivered late).
	Flaky int
}

// Unexplained returns the divergences that fail a run: every Diverge
// (state-dependent frames included for a Verdicter that tracks
// connections).
func (r *FilterResult) Unexplained() []FrameResult {
	var out []FrameResult
	for _, f := range r.Frames {
		if f.Status == Diverge {
			out = append(out, f)
		}
	}
	return out
}

// Result is a whole run.
type Result struct {
	Seed        uint64
	RandomCases int
	Cases       int
	Frames      int
	BridgeDrops []Frame
	Filters     []*FilterResult
	Verdicters  []string
	// Tracked lists the Verdicters that track connections (Tracker).
	Tracked  []string
	Duration time.Duration
}

// Run compares every filter of filters between ref and each Verdicter over
// the corpus, for topology n. set must hold the stock filters; the custom
// ones of filters are defined in it (and in ref) here. A first pass with no
// binding finds the bridge drops, which no filter pass sends again.
func Run(ref Reference, set *compiler.Set, filters []Filter, corpus Corpus, n Net, vs []Verdicter, opts Options) (*Result, error) {
	start := time.Now()
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	frames, err := corpus.Frames(n)
	if err != nil {
		return nil, err
	}
	res := &Result{Cases: len(corpus)}
	for _, v := range vs {
		res.Verdicters = append(res.Verdicters, v.Name())
		if tracksConnections(v) {
			res.Tracked = append(res.Tracked, v.Name())
		}
	}
	// Baseline: what the bridge delivers with no filter bound.
	bridged := make([][]bool, len(frames))
	for i, fs := range frames {
		ref.Flush()
		bridged[i] = make([]bool, len(fs))
		for j, f := range fs {
			res.Frames++
			bridged[i][j] = ref.Send(f.Dir(), f.Data, opts.Timeout)
			if !bridged[i][j] && opts.Confirm > 0 {
				ref.Flush()
				bridged[i][j] = ref.Send(f.Dir(), f.Data, opts.Confirm)
			}
			if !bridged[i][j] {
				res.BridgeDrops = append(res.BridgeDrops, f)
			}
		}
	}
	logf("baseline: %d cases, %d frames, %d bridge drops", len(frames), res.Frames, len(res.BridgeDrops))

	for _, f := range filters {
		if err := f.Define(set); err != nil {
			return nil, err
		}
		prog, err := set.Compile(f.Name, compiler.Options{})
		if err != nil {
			return nil, fmt.Errorf("compile %s: %w", f.Label, err)
		}
		inst, err := prog.Bind(f.Vars(n))
		if err != nil {
			return nil, fmt.Errorf("bind %s: %w", f.Label, err)
		}
		for _, d := range f.Defs {
			ref.Define(d)
		}
		ref.Bind(f.Name, f.Params)
		lib := make([][]bool, len(frames))
		cases := make([][]Frame, len(frames))
		for i, fs := range frames {
			ref.Flush()
			lib[i] = make([]bool, len(fs))
			for j, fr := range fs {
				if !bridged[i][j] {
					continue
				}
				lib[i][j] = ref.Send(fr.Dir(), fr.Data, opts.Timeout)
				cases[i] = append(cases[i], fr)
			}
		}
		for _, v := range vs {
			got, err := v.Verdicts(prog, inst, cases)
			if err != nil {
				return nil, fmt.Errorf("%s verdicts for %s: %w", v.Name(), f.Label, err)
			}
			tracked := tracksConnections(v)
			fr := &FilterResult{Filter: f, Verdicter: v.Name(), Tracked: tracked}
			for i, fs := range frames {
				k := 0
				for j, frame := range fs {
					r := FrameResult{Case: &corpus[i], Index: j, Frame: frame, Libvirt: lib[i][j]}
					if !bridged[i][j] {
						r.Status = BridgeDrop
						fr.Frames = append(fr.Frames, r)
						fr.Counts[r.Status]++
						continue
					}
					r.Nwbpf = got[i][k]
					k++
					state := StateDependent(prog, inst, frame)
					r.State = state
					if r.Libvirt != r.Nwbpf && !r.Libvirt && (!state || tracked) && opts.Confirm > 0 {
						// Re-check a drop that nwbpf does not make:
						// replay the case up to this frame.
						ref.Flush()
						for jj := 0; jj < j; jj++ {
							if bridged[i][jj] {
								ref.Send(fs[jj].Dir(), fs[jj].Data, opts.Timeout)
							}
						}
						r.Confirmed = true
						if ref.Send(frame.Dir(), frame.Data, opts.Confirm) {
							r.Libvirt, lib[i][j] = true, true
							fr.Flaky++
						}
					}
					switch {
					case state && r.Libvirt == r.Nwbpf:
						r.Status = StateAgree
					case state && !tracked:
						r.Status = StateDiverge
					case r.Libvirt == r.Nwbpf:
						r.Status = Agree
					default:
						r.Status = Diverge
						for ki := range opts.Known {
							if opts.Known[ki].Stateful && !tracked {
								continue
							}
							if opts.Known[ki].Explains(f, frame) {
								r.Status, r.Known = Explained, &opts.Known[ki]
								break
							}
						}
					}
					if r.Status != Agree && r.Status != StateAgree {
						r.Decider = Decider(prog, inst, frame)
					}
					fr.Frames = append(fr.Frames, r)
					fr.Counts[r.Status]++
				}
			}
			res.Filters = append(res.Filters, fr)
			logf("%-28s %-8s agree %4d  diverge %d  explained %d  state %d/%d  (flaky %d)", f.Label, v.Name(),
				fr.Counts[Agree], fr.Counts[Diverge], fr.Counts[Explained], fr.Counts[StateAgree], fr.Counts[StateDiverge], fr.Flaky)
		}
		ref.Unbind()
	}
	res.Duration = time.Since(start)
	return res, nil
}

// Explained counts, per Known ID, the frames it explained.
func (r *Result) Explained() map[string]int {
	m := map[string]int{}
	for _, f := range r.Filters {
		for _, fr := range f.Frames {
			if fr.Status == Explained {
				m[fr.Known.ID]++
			}
		}
	}
	return m
}

// Unexplained returns every divergence that fails the run.
func (r *Result) Unexplained() []FrameResult {
	var out []FrameResult
	for _, f := range r.Filters {
		out = append(out, f.Unexplained()...)
	}
	return out
}

// Known is a divergence the harness expects: libvirt behaviour that is a bug
// nwbpf deliberately does not copy, or (Open) an nwbpf bug that is reported
// and not fixed yet.
type Known struct {
	// ID names it in the report.
	ID string
	// Filter, when not empty, limits it to the filter tree of that Label.
	Filter string
	// Match selects the frames it explains.
	Match func(Spec) bool
	// Reason says who is wrong and why.
	Reason string
	// Test names the test that pins nwbpf's verdict.
	Test string
	// Open marks an nwbpf bug awaiting its fix: the run fails once it no
	// longer occurs, so that the entry is removed with the fix.
	Open bool
	// Stateful marks a divergence of connection tracking: it explains
	// frames of Verdicters that track connections (Tracker) only.
	Stateful bool
}

// Explains reports whether k explains a divergence on frame under f.
func (k *Known) Explains(f Filter, frame Frame) bool {
	return (k.Filter == "" || k.Filter == f.Label) && k.Match(frame.Spec)
}

// Disagreement is a frame two Verdicters judge differently.
type Disagreement struct {
	Filter Filter
	// A and B are the two Verdicters' results for the frame.
	A, B FrameResult
}

// Disagreements returns the frames that Verdicters a and b both judged and
// judged differently, filter by filter. Two implementations of nwbpf's
// data plane (the classifier under BPF_PROG_TEST_RUN and attached to a
// real tap) must never disagree: each difference is a bug of one of them,
// or of the kernel path in front of the classifier.
func (r *Result) Disagreements(a, b string) []Disagreement {
	byLabel := map[string]*FilterResult{}
	for _, f := range r.Filters {
		if f.Verdicter == b {
			byLabel[f.Filter.Label] = f
		}
	}
	var out []Disagreement
	for _, fa := range r.Filters {
		fb := byLabel[fa.Filter.Label]
		if fa.Verdicter != a || fb == nil || len(fb.Frames) != len(fa.Frames) {
			continue
		}
		for i, x := range fa.Frames {
			y := fb.Frames[i]
			if x.Status != BridgeDrop && y.Status != BridgeDrop && x.Nwbpf != y.Nwbpf {
				out = append(out, Disagreement{Filter: fa.Filter, A: x, B: y})
			}
		}
	}
	return out
}
