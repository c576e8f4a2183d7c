// SPDX-License-Identifier: Apache-2.0

package conformance

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nwbpf/nwbpf/compiler"
	"github.com/nwbpf/nwbpf/internal/privtest"
	"github.com/nwbpf/nwbpf/maps"
	"github.com/nwbpf/nwbpf/tests/netenv"
)

var testNet = Net{
	Guest: net.HardwareAddr{0x52, 0x54, 0x00, 0x77, 0x00, 0x05},
	Peer:  net.HardwareAddr{0x52, 0x54, 0x00, 0x77, 0x00, 0x01},
}

// compileDoc compiles a one-filter tree and binds it for testNet.
func compileDoc(t *testing.T, doc string, params ...Param) (*compiler.Program, compiler.Instances) {
	t.Helper()
	def, err := compiler.ParseFilter([]byte(doc), t.Name())
	if err != nil {
		t.Fatal(err)
	}
	set := compiler.NewSet()
	if err := set.Define(def); err != nil {
		t.Fatal(err)
	}
	prog, err := set.Compile(def.Name, compiler.Options{})
	if err != nil {
		t.Fatal(err)
	}
	inst, err := prog.Bind(Filter{Params: params}.Vars(testNet))
	if err != nil {
		t.Fatal(err)
	}
	return prog, inst
}

func verdicts(t *testing.T, prog *compiler.Program, inst compiler.Instances, specs ...Spec) []bool {
	t.Helper()
	var frames []Frame
	for i, s := range specs {
		data, err := s.Build(testNet, "pin-"+string(rune('a'+i)))
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, Frame{Spec: s, Data: data})
	}
	got, err := EvalVerdicter{}.Verdicts(prog, inst, [][]Frame{frames})
	if err != nil {
		t.Fatal(err)
	}
	return got[0]
}

// TestVLANEncapAsLibvirt pins libvirt's --vlan-encap behaviour, which
// nwbpf reproduces (docs/quirks.md): libvirt writes encap-protocol in
// decimal and ebtables reads hex, so 'arp' matches encapsulated type
// 0x2054 and '0x800' matches 0x2048, never ARP or IPv4.
func TestVLANEncapAsLibvirt(t *testing.T) {
	prog, inst := compileDoc(t, `<filter name='pin-vlan' chain='vlan'>
  <rule action='drop' direction='out'><vlan vlanid='42' encap-protocol='arp'/></rule>
  <rule action='drop' direction='out'><vlan vlanid='43' encap-protocol='0x800'/></rule>
</filter>`)
	tag := func(s Spec, vid uint16) Spec { s.HasVLAN, s.VLAN = true, vid; return s }
	cases := []struct {
		name      string
		spec      Spec
		delivered bool
	}{
		{"tagged ARP, vlan 42", tag(arpSpec(maps.DirOut, 1), 42), true},
		{"tagged 0x2054, vlan 42", tag(rawSpec(maps.DirOut, 0x2054), 42), false},
		{"tagged IPv4, vlan 43", tag(base(maps.DirOut, KindIPv4, ProtoUDP), 43), true},
		{"tagged 0x2048, vlan 43", tag(rawSpec(maps.DirOut, 0x2048), 43), false},
		{"tagged IPv4, vlan 42", tag(base(maps.DirOut, KindIPv4, ProtoUDP), 42), true},
	}
	for _, c := range cases {
		if got := verdicts(t, prog, inst, c.spec)[0]; got != c.delivered {
			t.Errorf("%s: delivered %v, want %v", c.name, got, c.delivered)
		}
	}
}

// TestKnownUDPLiteTracked pins nwbpf's side of udplite-checksum: the
// classifier tracks UDP-Lite whatever its checksum, so a stateful accept of
// the guest's UDP-Lite passes the request (NEW) and its answer
// (ESTABLISHED), while an answer with no request stays dropped. (libvirt's
// conntrack calls every correctly checksummed UDP-Lite packet INVALID.)
func TestKnownUDPLiteTracked(t *testing.T) {
	privtest.Require(t)
	v, err := NewTestRunVerdicter(filepath.Join(privtest.BPFFS, netenv.Name("nwbpfk")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := v.Close(); err != nil {
			t.Error(err)
		}
	})
	prog, inst := compileDoc(t, `<filter name='pin-udplite' chain='root'>
  <rule action='accept' direction='out'><udplite/></rule>
  <rule action='accept' direction='out'><all-ipv6/></rule>
  <rule action='drop' direction='inout'><all/></rule>
  <rule action='drop' direction='inout'><all-ipv6/></rule>
</filter>`)
	frames := func(specs ...Spec) []Frame {
		var fs []Frame
		for i, s := range specs {
			data, err := s.Build(testNet, fmt.Sprintf("pin-udplite-%d", i))
			if err != nil {
				t.Fatal(err)
			}
			fs = append(fs, Frame{Spec: s, Data: data})
		}
		return fs
	}
	var cases [][]Frame
	for _, k := range []Kind{KindIPv4, KindIPv6} {
		req := base(maps.DirOut, k, ProtoUDPLite)
		cases = append(cases, frames(req, req.Reply()), frames(req.Reply()))
	}
	got, err := v.Verdicts(prog, inst, cases)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]bool{{true, true}, {false}, {true, true}, {false}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("verdicts %v, want %v (request, answer; answer alone; per IP version)", got, want)
	}
}
