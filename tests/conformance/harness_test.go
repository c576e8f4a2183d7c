// SPDX-License-Identifier: Apache-2.0

package conformance

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nwbpf/nwbpf/compiler"
	"github.com/nwbpf/nwbpf/compiler/eval"
	"github.com/nwbpf/nwbpf/maps"
)

// fakeRef is a Reference that answers with the reference evaluator for the
// bound tree (so every verdict agrees), except that it drops every frame
// flip selects, and that the bridge drops frames with a zero source MAC.
type fakeRef struct {
	t     *testing.T
	set   *compiler.Set
	prog  *compiler.Program
	inst  compiler.Instances
	flip  func([]byte) bool
	sends int
}

func (r *fakeRef) Define(string) {}

func (r *fakeRef) Bind(filter string, params []Param) {
	var err error
	if r.prog, err = r.set.Compile(filter, compiler.Options{}); err != nil {
		r.t.Fatal(err)
	}
	if r.inst, err = r.prog.Bind(Filter{Params: params}.Vars(testNet)); err != nil {
		r.t.Fatal(err)
	}
}

func (r *fakeRef) Unbind() { r.prog = nil }
func (r *fakeRef) Flush()  {}

func (r *fakeRef) Send(dir maps.Dir, frame []byte, _ time.Duration) bool {
	r.sends++
	if bytes.Equal(frame[6:12], make([]byte, 6)) {
		return false
	}
	if r.prog == nil {
		return true
	}
	if r.flip != nil && r.flip(frame) {
		return false
	}
	return eval.Eval(r.prog.Stages, r.inst, eval.Parse(frame, eval.Meta{}), dir, eval.CT{}).Verdict == eval.VerdictAccept
}

// TestRunAgainstFake runs the whole harness without privileges against a
// reference that is the evaluator itself, with one injected divergence:
// the harness must find exactly that one, keep the bridge drop out, mark
// the stateful frames, and write a report naming the divergence.
func TestRunAgainstFake(t *testing.T) {
	set := compiler.NewSet()
	filters := Checklist("t1", testNet)
	corpus := append(Fixed(), Random(7, 50)...)
	zero := Spec{Dir: maps.DirOut, Kind: KindRaw, EtherType: 0x88b5, Src: MACZero, Dst: MACPeer}
	corpus = append(corpus, Case{Group: "bridge", Name: "zero source MAC", Specs: []Spec{zero}})
	// The injected divergence: the fake "drops" every frame tagged with
	// VLAN 4095, which few checklist trees drop themselves.
	ref := &fakeRef{t: t, set: set, flip: func(b []byte) bool {
		return b[12] == 0x81 && b[13] == 0x00 && b[14]&0x0f == 0x0f && b[15] == 0xff
	}}
	res, err := Run(ref, set, filters, corpus, testNet, []Verdicter{EvalVerdicter{}}, Options{Known: KnownDivergences})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.BridgeDrops) != 1 || res.BridgeDrops[0].Spec.Src != MACZero {
		t.Errorf("bridge drops %v, want the zero-source frame", res.BridgeDrops)
	}
	var diverged []string
	state := 0
	for _, f := range res.Filters {
		for _, d := range f.Unexplained() {
			diverged = append(diverged, f.Filter.Label+": "+d.Case.Name)
			if !strings.Contains(d.Frame.Spec.String(), "vlan 4095") {
				t.Errorf("%s: divergence on %s, which the fake does not flip", f.Filter.Label, d.Frame.Spec)
			}
		}
		state += f.Counts[StateAgree] + f.Counts[StateDiverge]
		if f.Counts[Explained] != 0 {
			t.Errorf("%s: %d explained divergences against a fake that only flips VLAN 4095", f.Filter.Label, f.Counts[Explained])
		}
	}
	if len(diverged) == 0 {
		t.Error("the injected divergence was not found")
	}
	if state == 0 {
		t.Error("no frame marked as needing conntrack-lite, though the checklist has stateful rules")
	}
	var b bytes.Buffer
	if err := Report(&b, res, ReportInfo{Command: "go test", Environment: "a fake"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Divergences", "vlan 4095", "## Needs conntrack-lite", "type 0x88b5"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	t.Logf("%d divergences found: %v", len(diverged), diverged)
}

// TestFramesParse checks every fixed and random frame against gopacket's
// own decoder and the reference evaluator's parse: the frames are what
// their Spec says.
func TestFramesParse(t *testing.T) {
	frames, err := append(Fixed(), Random(1, 300)...).Frames(testNet)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, fs := range frames {
		for _, f := range fs {
			if len(f.Data) < 60 {
				t.Errorf("%s: %d bytes, below the Ethernet minimum", f.Spec, len(f.Data))
			}
			pkt := eval.Parse(f.Data, eval.Meta{})
			// L3 fields exist for untagged frames only (ebtables' view);
			// L4PROTO skips AH like an extension header (ebt_ip6).
			ah := f.Spec.Kind == KindIPv6 && (f.Spec.Proto == ProtoAH || slices.Contains(f.Spec.Ext, ProtoAH))
			if (f.Spec.Kind == KindIPv4 || f.Spec.Kind == KindIPv6) && !f.Spec.HasVLAN && !ah {
				v, ok := eval.FieldValue(pkt, maps.FL4Proto)
				if !ok || v[1] != uint64(f.Spec.Proto) {
					t.Errorf("%s: L4 protocol %v (present %v), want %d", f.Spec, v, ok, f.Spec.Proto)
				}
			}
			if seen[string(f.Data)] {
				t.Errorf("%s: the same bytes as an earlier frame", f.Spec)
			}
			seen[string(f.Data)] = true
		}
	}
}
