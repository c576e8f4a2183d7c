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
		t.Error("no frame marked state-dependent, though the checklist has stateful rules")
	}
	var b bytes.Buffer
	if err := Report(&b, res, ReportInfo{Command: "go test", Environment: "a fake"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Divergences", "vlan 4095", "## State-dependent frames", "type 0x88b5"} {
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

// trackingEval is the reference evaluator posing as a Verdicter with
// connection tracking, that delivers the guest's UDP to port 53 whatever
// the filter says.
type trackingEval struct{ EvalVerdicter }

func (trackingEval) Name() string            { return "tracked" }
func (trackingEval) TracksConnections() bool { return true }

func (v trackingEval) Verdicts(prog *compiler.Program, inst compiler.Instances, cases [][]Frame) ([][]bool, error) {
	out, err := v.EvalVerdicter.Verdicts(prog, inst, cases)
	for c, fs := range cases {
		for i, f := range fs {
			if f.Spec.Dir == maps.DirOut && f.Spec.Proto == ProtoUDP && f.Spec.DPort == 53 {
				out[c][i] = true
			}
		}
	}
	return out, err
}

// TestRunTracked checks the strict comparison of a Verdicter that tracks
// connections: where it differs from the reference on a state-dependent
// frame, that is a divergence (unexplained), while the stateless reference
// evaluator's answer to the same frame is only classified (state-agree or
// state-diverge), never a failure.
func TestRunTracked(t *testing.T) {
	set := compiler.NewSet()
	var filters []Filter
	for _, f := range Checklist("t2", testNet) {
		if f.Label == "l4" {
			filters = append(filters, f)
		}
	}
	u := base(maps.DirOut, KindIPv4, ProtoUDP)
	corpus := Corpus{{Group: "l4", Name: "udp 53 out", Specs: []Spec{u}}}
	// The fake drops it: as if the guest's request were refused.
	ref := &fakeRef{t: t, set: set, flip: func(b []byte) bool { return len(b) > 37 && b[23] == ProtoUDP && b[37] == 53 }}
	res, err := Run(ref, set, filters, corpus, testNet, []Verdicter{EvalVerdicter{}, trackingEval{}}, Options{Known: KnownDivergences})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Filters) != 2 || !slices.Equal(res.Tracked, []string{"tracked"}) {
		t.Fatalf("%d filter results, tracked %v", len(res.Filters), res.Tracked)
	}
	for _, f := range res.Filters {
		fr := f.Frames[0]
		if !fr.State {
			t.Fatalf("%s: %s not state-dependent under the l4 tree", f.Verdicter, fr.Frame.Spec)
		}
		// Without a conntrack view the evaluator drops it too.
		want := StateAgree
		if f.Verdicter == "tracked" {
			want = Diverge
		}
		if fr.Status != want || fr.Libvirt || fr.Nwbpf != (f.Verdicter == "tracked") {
			t.Errorf("%s: status %s (libvirt %v, nwbpf %v), want %s", f.Verdicter, fr.Status, fr.Libvirt, fr.Nwbpf, want)
		}
	}
	if un := res.Unexplained(); len(un) != 1 {
		t.Errorf("%d unexplained divergences, want the tracked verdicter's one", len(un))
	}
}

// TestDefragmented checks the frame bridge netfilter forwards for an IPv6
// atomic fragment: the fragment header gone, wherever it sits in the chain,
// and no alternative for other frames.
func TestDefragmented(t *testing.T) {
	build := func(s Spec) []byte {
		b, err := s.Build(testNet, "defrag")
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	u := base(maps.DirOut, KindIPv6, ProtoUDP)
	for _, ext := range [][]uint8{{44}, {0, 43, 44, 60}, {51, 44}} {
		s := u
		s.Ext = ext
		var without []uint8
		for _, e := range ext {
			if e != 44 {
				without = append(without, e)
			}
		}
		w := u
		w.Ext = without
		got, want := Defragmented(build(s)), build(w)
		if got == nil || !bytes.Equal(got[:len(got)-8], want[:len(got)-8]) {
			t.Errorf("ext %v: defragmented\n%x\nwant\n%x", ext, got, want)
		}
	}
	for _, s := range []Spec{u, base(maps.DirOut, KindIPv4, ProtoUDP), func() Spec { s := u; s.Ext = []uint8{0, 60}; return s }()} {
		if got := Defragmented(build(s)); got != nil {
			t.Errorf("%s: defragmented %x, want none", s, got)
		}
	}
	frag := build(func() Spec { s := u; s.Ext = []uint8{44}; return s }())
	frag[14+40+3] |= 1 // more fragments: a real fragment
	if got := Defragmented(frag); got != nil {
		t.Errorf("first fragment of two: defragmented %x, want none", got)
	}
}
