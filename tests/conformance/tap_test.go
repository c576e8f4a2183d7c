// SPDX-License-Identifier: Apache-2.0

package conformance

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/nwbpf/nwbpf/internal/privtest"
	"github.com/nwbpf/nwbpf/maps"
)

// TestTapVerdicter checks the real-tap verdicter without libvirt: a
// stateful accept lets the answer in only within its case, a VLAN rule
// decides on a tag the kernel moved into skb metadata, and a frame the
// classifier passes but the bridge drops (a multicast source MAC) counts
// as dropped and is reported lost.
func TestTapVerdicter(t *testing.T) {
	privtest.Require(t)
	v, err := NewTapVerdicter(t, testNet.Peer)
	if errors.Is(err, ebpf.ErrNotSupported) && !privtest.CI() {
		t.Skipf("classifier cannot be attached through TCX here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	v.Confirm = 100 * time.Millisecond
	prog, inst := compileDoc(t, `<filter name='pin-tap' chain='root'>
  <rule action='drop' direction='out'><vlan vlanid='42'/></rule>
  <rule action='accept' direction='out'><tcp dstportstart='80'/></rule>
  <rule action='drop' direction='inout'><all/></rule>
</filter>`)
	n := 0
	frames := func(specs ...Spec) []Frame {
		var fs []Frame
		for _, s := range specs {
			n++
			data, err := s.Build(testNet, fmt.Sprintf("pin-tap-%d", n))
			if err != nil {
				t.Fatal(err)
			}
			fs = append(fs, Frame{Spec: s, Data: data})
		}
		return fs
	}
	syn := base(maps.DirOut, KindIPv4, ProtoTCP)
	tagged := func(s Spec, vid uint16) Spec { s.HasVLAN, s.VLAN = true, vid; return s }
	mcastSrc := rawSpec(maps.DirOut, 0x88b5)
	mcastSrc.Src = MACMcast4
	cases := [][]Frame{
		frames(syn, syn.Reply()),                     // NEW out, ESTABLISHED reply in
		frames(syn.Reply()),                          // the same answer, connections flushed
		frames(base(maps.DirIn, KindIPv4, ProtoUDP)), // dropped in
		frames(arpSpec(maps.DirOut, 1), arpSpec(maps.DirIn, 2)),
		frames(tagged(arpSpec(maps.DirOut, 1), 42)),
		frames(tagged(arpSpec(maps.DirOut, 1), 43)),
		frames(mcastSrc),
	}
	want := [][]bool{{true, true}, {false}, {false}, {true, true}, {false}, {true}, {false}}
	got, err := v.Verdicts(prog, inst, cases)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("verdicts %v, want %v", got, want)
	}
	if len(v.Lost) != 1 {
		t.Errorf("lost %q, want the frame with a multicast source only", v.Lost)
	}
}
