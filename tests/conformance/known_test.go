// SPDX-License-Identifier: Apache-2.0

package conformance

import (
	"net"
	"testing"

	"github.com/nwbpf/nwbpf/compiler"
	"github.com/nwbpf/nwbpf/maps"
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
