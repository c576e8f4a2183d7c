// SPDX-License-Identifier: Apache-2.0

package loader

import (
	"errors"
	"slices"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/nwbpf/nwbpf/internal/privtest"
	"github.com/nwbpf/nwbpf/maps"
)

func newTestRun(t *testing.T) *TestRun {
	t.Helper()
	privtest.Require(t)
	r, err := NewTestRun()
	if err != nil {
		t.Fatalf("new test run: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("close test run: %v", err)
		}
	})
	return r
}

// TestTestRunDecisions binds a small program on the loopback of a private
// load and checks the decisions Run reports for both directions, on a
// tap-like and a macvtap-like binding.
func TestTestRunDecisions(t *testing.T) {
	r := newTestRun(t)
	var stages [2][2][]maps.Rule
	stages[maps.DirOut][maps.StageL2] = []maps.Rule{match(maps.ActDrop, eq(maps.FSrcMAC, macGWv))}
	stages[maps.DirOut][maps.StageL34] = []maps.Rule{match(maps.ActReject, eq(maps.FDport, 53))}
	stages[maps.DirIn][maps.StageL34] = []maps.Rule{match(maps.ActAccept, eq(maps.FL3, 4)), match(maps.ActDrop)}
	u4 := udp4(t) // the VM's UDP to port 53
	spoofed := frame(t, &layers.Ethernet{SrcMAC: macGW, DstMAC: macVM, EthernetType: layers.EthernetTypeIPv4},
		ip4(layers.IPProtocolUDP), udp(1, 2), payload(8))
	v6 := frame(t, eth(layers.EthernetTypeIPv6), ip6(layers.IPProtocolUDP), udp(1, 2), payload(8))

	if _, err := r.Run(LoopbackIfindex, maps.DirOut, u4); !errors.Is(err, maps.ErrNotBound) {
		t.Fatalf("run unbound: %v, want ErrNotBound", err)
	}
	for _, hook := range []maps.Hook{maps.HookIngress, maps.HookEgress} {
		if err := r.Bind(LoopbackIfindex, maps.BindRequest{ID: 7, OutHook: hook, Stages: stages}); err != nil {
			t.Fatalf("bind: %v", err)
		}
		cases := []struct {
			name  string
			dir   maps.Dir
			frame []byte
			ret   uint32
			want  maps.Verdict
			stage maps.Stage
			index uint32
		}{
			{"out spoofed mac", maps.DirOut, spoofed, TCActShot, maps.VerdictDrop, maps.StageL2, 0},
			{"out udp 53 rejected", maps.DirOut, u4, TCActRedirect, maps.VerdictReject, maps.StageL34, 0},
			{"in ipv4", maps.DirIn, u4, TCActOK, maps.VerdictPass, maps.StageL34, 0},
			{"in ipv6", maps.DirIn, v6, TCActShot, maps.VerdictDrop, maps.StageL34, 1},
		}
		for _, c := range cases {
			d, err := r.Run(LoopbackIfindex, c.dir, c.frame)
			if err != nil {
				t.Fatalf("hook %s, %s: %v", hookName(hook), c.name, err)
			}
			tr := d.Trace
			if !d.Traced || d.Ret != c.ret || tr.Verdict != c.want || tr.Stage != c.stage || tr.Index != c.index || tr.Dir != c.dir || tr.Binding != 7 {
				t.Errorf("hook %s, %s: ret %d traced %v, %s at %s entry %d dir %s binding %d; want ret %d, %s at %s entry %d",
					hookName(hook), c.name, d.Ret, d.Traced, tr.Verdict, tr.Stage, int32(tr.Index), tr.Dir, tr.Binding,
					c.ret, c.want, c.stage, int32(c.index))
			}
		}
	}
	// The parse comes back with the decision.
	d, err := r.Run(LoopbackIfindex, maps.DirIn, u4)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Pkt.Has(maps.FDport) || d.Pkt.Val[maps.FDport] != u(53) {
		t.Errorf("parsed dport present %v value %v, want 53", d.Pkt.Has(maps.FDport), d.Pkt.Val[maps.FDport])
	}
}

// TestTestRunResetState checks that ResetState forgets a first fragment's
// verdict: its later fragment passes before the reset and is dropped as
// an orphan after it.
func TestTestRunResetState(t *testing.T) {
	r := newTestRun(t)
	if got := r.StateMaps(); !slices.Contains(got, "nwf_frags") {
		t.Fatalf("state maps %q, want nwf_frags among them", got)
	}
	stages := out(nil, []maps.Rule{match(maps.ActAccept, eq(maps.FDport, 53)), match(maps.ActDrop, eq(maps.FL3, 4))})
	if err := r.Bind(LoopbackIfindex, maps.BindRequest{Stages: stages}); err != nil {
		t.Fatal(err)
	}
	first := ip4(layers.IPProtocolUDP)
	first.Flags = layers.IPv4MoreFragments
	later := ip4(layers.IPProtocolUDP)
	later.FragOffset = 3
	f1 := frame(t, eth(layers.EthernetTypeIPv4), first, gopacket.Payload(udpHdr(9, 53)), payload(16))
	f2 := frame(t, eth(layers.EthernetTypeIPv4), later, payload(24))
	for i, s := range []struct {
		frame []byte
		reset bool
		ret   uint32
	}{{f1, false, TCActOK}, {f2, false, TCActOK}, {f2, true, TCActShot}} {
		if s.reset {
			if err := r.ResetState(); err != nil {
				t.Fatalf("reset: %v", err)
			}
		}
		d, err := r.Run(LoopbackIfindex, maps.DirOut, s.frame)
		if err != nil {
			t.Fatal(err)
		}
		if d.Ret != s.ret {
			t.Errorf("step %d: ret %d, want %d (reason %s)", i, d.Ret, s.ret, d.Trace.Reason)
		}
	}
}

// TestTestRunResetConntrack checks that ResetState forgets connections: a
// reply is ESTABLISHED after the guest's datagram, and NEW again after a
// reset.
func TestTestRunResetConntrack(t *testing.T) {
	r := newTestRun(t)
	var stages [2][2][]maps.Rule
	stages[maps.DirIn][maps.StageL34] = []maps.Rule{
		match(maps.ActAccept, anybit(maps.FCTState, maps.CTEstablished)),
		match(maps.ActDrop, eq(maps.FL3, 4)),
	}
	if err := r.Bind(LoopbackIfindex, maps.BindRequest{Stages: stages}); err != nil {
		t.Fatal(err)
	}
	request := udp4(t) // 10.0.0.5:1234 -> 10.0.0.1:53
	e := &layers.Ethernet{SrcMAC: macGW, DstMAC: macVM, EthernetType: layers.EthernetTypeIPv4}
	h := ip4(layers.IPProtocolUDP)
	h.SrcIP, h.DstIP = ipGW, ipVM
	reply := frame(t, e, h, udp(53, 1234), payload(8))
	for i, s := range []struct {
		dir   maps.Dir
		frame []byte
		reset bool
		ret   uint32
	}{
		{maps.DirIn, reply, false, TCActShot},  // no connection: NEW
		{maps.DirOut, request, false, TCActOK}, // the guest opens it
		{maps.DirIn, reply, false, TCActOK},    // ESTABLISHED
		{maps.DirIn, reply, true, TCActShot},   // forgotten: NEW again
	} {
		if s.reset {
			if err := r.ResetState(); err != nil {
				t.Fatal(err)
			}
		}
		d, err := r.Run(LoopbackIfindex, s.dir, s.frame)
		if err != nil {
			t.Fatal(err)
		}
		if d.Ret != s.ret {
			t.Errorf("step %d: ret %d, want %d (ct state %#x present %v)", i, d.Ret, s.ret, d.Pkt.Val[maps.FCTState], d.Pkt.Has(maps.FCTState))
		}
	}
}

// TestTestRunPrivate checks that two TestRuns share nothing: a binding in
// one is not seen by the other.
func TestTestRunPrivate(t *testing.T) {
	a, b := newTestRun(t), newTestRun(t)
	if err := a.Bind(LoopbackIfindex, maps.BindRequest{Stages: out([]maps.Rule{match(maps.ActDrop)}, nil)}); err != nil {
		t.Fatal(err)
	}
	d, err := b.RunHook(LoopbackIfindex, maps.HookIngress, udp4(t))
	if err != nil {
		t.Fatal(err)
	}
	if d.Traced || d.Ret != TCActOK {
		t.Errorf("other test run: ret %d traced %v, want an untouched pass", d.Ret, d.Traced)
	}
	if m := a.Map("nwf_rule_stats"); m == nil {
		t.Errorf("Map(nwf_rule_stats) = nil")
	}
}

// TestTestRunRefusedFrames checks that the frames the kernel's
// BPF_PROG_TEST_RUN refuses are reported as ErrFrameRefused, and that the
// shortest it takes run.
func TestTestRunRefusedFrames(t *testing.T) {
	r := newTestRun(t)
	if err := r.Bind(LoopbackIfindex, maps.BindRequest{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		typ     uint16
		n       int
		refused bool
	}{
		{0x0806, 13, true}, {0x0806, 14, false}, {0x8100, 14, false},
		{0x0800, 33, true}, {0x0800, 34, false}, {0x86dd, 53, true}, {0x86dd, 54, false},
	} {
		f := make([]byte, c.n)
		if c.n >= 14 {
			f[12], f[13] = byte(c.typ>>8), byte(c.typ)
		}
		_, err := r.Run(LoopbackIfindex, maps.DirOut, f)
		if got := errors.Is(err, ErrFrameRefused); got != c.refused || (!c.refused && err != nil) {
			t.Errorf("ethertype %#x, %d bytes: %v, want refused %v", c.typ, c.n, err, c.refused)
		}
	}
}
