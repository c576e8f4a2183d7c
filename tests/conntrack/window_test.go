// SPDX-License-Identifier: Apache-2.0

package conntrack_test

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/nwbpf/nwbpf/internal/privtest"
	"github.com/nwbpf/nwbpf/loader"
	"github.com/nwbpf/nwbpf/maps"
	"github.com/nwbpf/nwbpf/tests/libvirtref"
)

// TCP window tracking against Linux: the same numbered TCP conversations
// go through libvirt's rules (ebtables + iptables on the kernel's
// nf_conntrack, nf_conntrack_tcp_be_liberal=0) and through the classifier
// under BPF_PROG_TEST_RUN, and both must deliver exactly the frames the
// case pins. The pinned answers were measured on this kernel (6.18): they
// are nf_conntrack's tcp_in_window (an ACK above what the other side sent,
// or a sequence far past the receiver's window, is INVALID; old data and
// late ACKs below the window are ignored, which passes them as
// ESTABLISHED; a connection picked up mid-stream is tracked liberally).

// The filter of every case: the guest may open TCP to port 80 and accept
// TCP on port 22 (libvirt's default state matches), everything else is
// dropped both ways.
const windowFilter = `<filter name='%s' chain='root'>
  <rule action='accept' direction='out' priority='100'><tcp dstportstart='80'/></rule>
  <rule action='accept' direction='in' priority='100'><tcp dstportstart='22'/></rule>
  <rule action='drop' direction='inout' priority='500'><all/></rule>
</filter>`

// windowStages is what the compiler makes of windowFilter.
func windowStages() [2][2][]maps.Rule {
	const ne = maps.CTNew | maps.CTEstablished
	ip, tcp := eq(maps.FL3, 4), eq(maps.FL4Proto, 6)
	orig, reply := eq(maps.FCTDir, maps.CTDirOriginal), eq(maps.FCTDir, maps.CTDirReply)
	var s [2][2][]maps.Rule
	s[maps.DirOut][maps.StageL34] = []maps.Rule{
		rule(maps.ActAccept, 1, ip, tcp, eq(maps.FDport, 80), st(ne), orig),
		rule(maps.ActAccept, 2, ip, tcp, eq(maps.FSport, 22), st(maps.CTEstablished), reply),
		rule(maps.ActDrop, 3, ip),
	}
	s[maps.DirIn][maps.StageL34] = []maps.Rule{
		rule(maps.ActAccept, 1, ip, tcp, eq(maps.FSport, 80), st(maps.CTEstablished), reply),
		rule(maps.ActAccept, 2, ip, tcp, eq(maps.FDport, 22), st(ne), orig),
		rule(maps.ActDrop, 3, ip),
	}
	return s
}

var (
	wGuest = net.IPv4(10, 77, 0, 5).To4()
	wPeer  = net.IPv4(10, 77, 0, 1).To4()
	wSeq   atomic.Uint32
)

// seg is one TCP segment of a case, from the guest (out) or to it.
type seg struct {
	out      bool
	flags    string // S SYN, A ACK, F FIN, R RST, P PSH
	seq, ack uint32
	win      uint16 // 0: 64240
	zeroWin  bool   // a window of 0
	wscale   int    // window scale option (SYN), -1: none
	sackPerm bool
	sack     []uint32 // SACK block edges (left, right, ...)
	data     int      // payload bytes
	deliver  bool     // what Linux does
}

// s builds a segment without options.
func s(out bool, flags string, seq, ack uint32, data int, deliver bool) seg {
	return seg{out: out, flags: flags, seq: seq, ack: ack, data: data, wscale: -1, deliver: deliver}
}

// frame builds g for a guest port gport talking to the peer's pport,
// with MACs src and dst for an out frame (swapped for in).
func (g seg) frame(t testing.TB, gport, pport uint16, gmac, pmac net.HardwareAddr) []byte {
	t.Helper()
	tc := &layers.TCP{Seq: g.seq, Ack: g.ack, Window: 64240}
	if g.win != 0 {
		tc.Window = g.win
	}
	if g.zeroWin {
		tc.Window = 0
	}
	for _, c := range g.flags {
		switch c {
		case 'S':
			tc.SYN = true
		case 'A':
			tc.ACK = true
		case 'F':
			tc.FIN = true
		case 'R':
			tc.RST = true
		case 'P':
			tc.PSH = true
		}
	}
	if g.wscale >= 0 {
		tc.Options = append(tc.Options, layers.TCPOption{OptionType: layers.TCPOptionKindNop},
			layers.TCPOption{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{byte(g.wscale)}})
	}
	if g.sackPerm {
		tc.Options = append(tc.Options, layers.TCPOption{OptionType: layers.TCPOptionKindNop},
			layers.TCPOption{OptionType: layers.TCPOptionKindNop},
			layers.TCPOption{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2})
	}
	if len(g.sack) > 0 {
		var b []byte
		for _, e := range g.sack {
			b = append(b, byte(e>>24), byte(e>>16), byte(e>>8), byte(e))
		}
		tc.Options = append(tc.Options, layers.TCPOption{OptionType: layers.TCPOptionKindNop},
			layers.TCPOption{OptionType: layers.TCPOptionKindNop},
			layers.TCPOption{OptionType: layers.TCPOptionKindSACK, OptionLength: uint8(2 + len(b)), OptionData: b})
	}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, Id: uint16(wSeq.Add(1))}
	eth := &layers.Ethernet{EthernetType: layers.EthernetTypeIPv4}
	if g.out {
		ip.SrcIP, ip.DstIP = wGuest, wPeer
		eth.SrcMAC, eth.DstMAC = gmac, pmac
		tc.SrcPort, tc.DstPort = layers.TCPPort(gport), layers.TCPPort(pport)
	} else {
		ip.SrcIP, ip.DstIP = wPeer, wGuest
		eth.SrcMAC, eth.DstMAC = pmac, gmac
		tc.SrcPort, tc.DstPort = layers.TCPPort(pport), layers.TCPPort(gport)
	}
	if err := tc.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, g.data)
	for i := range data {
		data[i] = byte('a' + i%26)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, tc, gopacket.Payload(data)); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if len(b) < 60 {
		b = append(b, make([]byte, 60-len(b))...)
	}
	return b
}

// below is a - b, modulo 2^32 as sequence numbers are.
func below(a, b uint32) uint32 { return a - b }

// windowCase is a conversation between the guest's port and the peer's.
type windowCase struct {
	name  string
	pport uint16 // 80: the guest opens; 22: the peer does, to the guest's 22
	segs  []seg
}

// Sequence numbers: the guest starts at 1000, the peer at 7000.
func windowCases() []windowCase {
	const out, in = true, false
	ws := func(g seg, scale int) seg { g.wscale = scale; return g }
	win := func(g seg, w uint16) seg { g.win = w; return g }
	zero := func(g seg) seg { g.zeroWin = true; return g }
	sp := func(g seg) seg { g.sackPerm = true; return g }
	sack := func(g seg, e ...uint32) seg { g.sack = e; return g }
	open := []seg{s(out, "S", 1000, 0, 0, true), s(in, "SA", 7000, 1001, 0, true), s(out, "A", 1001, 7001, 0, true)}
	with := func(more ...seg) []seg { return append(append([]seg(nil), open...), more...) }
	return []windowCase{
		{"handshake and data both ways", 80, with(
			s(out, "PA", 1001, 7001, 100, true), s(in, "A", 7001, 1101, 0, true),
			s(in, "PA", 7001, 1101, 50, true), s(out, "A", 1101, 7051, 0, true))},
		{"SYN-ACK acknowledging unsent data", 80, []seg{
			s(out, "S", 1000, 0, 0, true), s(in, "SA", 7000, 5001, 0, false), s(out, "A", 1001, 7001, 0, false),
			s(in, "SA", 7000, 1001, 0, true), s(out, "A", 1001, 7001, 0, true)}},
		{"SYN-ACK acknowledging the SYN itself", 80, []seg{
			s(out, "S", 1000, 0, 0, true), s(in, "SA", 7000, 1000, 0, true)}},
		{"SYN-ACK acknowledging far below", 80, []seg{
			s(out, "S", 1000, 0, 0, true), s(in, "SA", 7000, below(1001, 200000), 0, true),
			// Ignored, not taken: the flow stays in SYN_SENT, where
			// the guest's ACK is INVALID.
			s(out, "A", 1001, 7001, 0, false)}},
		{"ACK of data the peer never sent", 80, with(s(out, "A", 1001, 7002, 0, false), s(out, "A", 1001, 7001, 0, true))},
		{"ACK far below the peer's data", 80, with(s(out, "A", 1001, below(7001, 200000), 0, true))},
		{"data past the window by less than a window", 80, []seg{
			s(out, "S", 1000, 0, 0, true), win(s(in, "SA", 7000, 1001, 0, true), 1000), s(out, "A", 1001, 7001, 0, true),
			s(out, "PA", 1001+1000+500, 7001, 100, true)}},
		{"data far past the window", 80, with(s(out, "PA", 1001+200000, 7001, 100, false), s(out, "PA", 1001, 7001, 10, true))},
		{"old data below the window", 80, with(s(out, "PA", below(1001, 200000), 7001, 100, true))},
		{"peer data far past the window", 80, with(s(in, "PA", 7001+200000, 1001, 100, false))},
		{"window scale from both SYNs", 80, []seg{
			ws(s(out, "S", 1000, 0, 0, true), 7), win(ws(s(in, "SA", 7000, 1001, 0, true), 7), 512), s(out, "A", 1001, 7001, 0, true),
			win(s(in, "A", 7001, 1001, 0, true), 512), s(out, "PA", 1001+60000, 7001, 100, true)}},
		{"window scale from one SYN only", 80, []seg{
			ws(s(out, "S", 1000, 0, 0, true), 7), win(s(in, "SA", 7000, 1001, 0, true), 512), s(out, "A", 1001, 7001, 0, true),
			win(s(in, "A", 7001, 1001, 0, true), 512), s(out, "PA", 1001+60000, 7001, 100, false)}},
		{"zero window", 80, []seg{
			s(out, "S", 1000, 0, 0, true), s(in, "SA", 7000, 1001, 0, true), s(out, "A", 1001, 7001, 0, true),
			zero(s(in, "A", 7001, 1001, 0, true)), s(out, "PA", 1001, 7001, 1, true), s(out, "PA", 1001+3000, 7001, 1, true)}},
		{"SACK block above the sent data", 80, []seg{
			sp(s(out, "S", 1000, 0, 0, true)), sp(s(in, "SA", 7000, 1001, 0, true)), s(out, "A", 1001, 7001, 0, true),
			s(in, "PA", 7001, 1001, 100, true), sack(s(out, "A", 1001, 7001, 0, true), 7051, 7101),
			sack(s(out, "A", 1001, 7001, 0, false), 7101, 7201)}},
		{"RST in sequence", 80, with(s(in, "R", 7001, 0, 0, true), s(out, "PA", 1001, 7001, 10, true))},
		{"RST in the window, not in sequence", 80, with(s(in, "R", 7001+100, 0, 0, true), s(out, "PA", 1001, 7001, 10, true))},
		{"RST below the acknowledged sequence", 80, with(s(in, "R", 7001-100, 0, 0, false), s(out, "PA", 1001, 7001, 10, true))},
		{"RST far past the window", 80, with(s(in, "R", 7001+200000, 0, 0, false))},
		{"RST,ACK answering the SYN", 80, []seg{s(out, "S", 1000, 0, 0, true), s(in, "RA", 0, 1001, 0, true), s(in, "SA", 7000, 1001, 0, false)}},
		{"RST from the opener before any answer", 80, []seg{s(out, "S", 1000, 0, 0, true), s(out, "R", 1001, 0, 0, true), s(in, "SA", 7000, 1001, 0, false)}},
		{"SYN retransmitted with a new sequence", 80, []seg{
			s(out, "S", 1000, 0, 0, true), s(out, "S", 3000, 0, 0, true), s(in, "SA", 7000, 1001, 0, true), s(in, "SA", 7000, 3001, 0, true)}},
		{"SYN-ACK retransmitted with a new sequence", 80, []seg{
			s(out, "S", 1000, 0, 0, true), s(in, "SA", 7000, 1001, 0, true), s(in, "SA", 9000, 1001, 0, true),
			// nf_conntrack ignores the second SYN-ACK (SYN_RECV): its
			// sequence is never taken.
			s(out, "A", 1001, 9001, 0, false), s(out, "A", 1001, 7001, 0, true)}},
		{"picked up mid-stream: liberal", 80, []seg{
			s(out, "PA", 1001, 7001, 10, true), s(in, "A", 7001+300000, 1001+400000, 0, true),
			s(out, "PA", 1001+900000, below(7001, 900000), 10, true)}},
		{"to the guest: SYN-ACK acknowledging unsent data", 22, []seg{
			s(in, "S", 7000, 0, 0, true), s(out, "SA", 1000, 7005, 0, false), s(out, "SA", 1000, 7001, 0, true),
			s(in, "A", 7001, 1001, 0, true), s(in, "PA", 7001, 1001, 20, true), s(out, "A", 1001, 7021, 0, true)}},
		{"FIN and the close", 80, with(
			s(out, "FA", 1001, 7001, 0, true), s(in, "FA", 7001, 1002, 0, true), s(out, "A", 1002, 7002, 0, true),
			s(in, "A", 7002, 1003, 0, false))},
	}
}

// TestTCPWindow runs every case through libvirt and the classifier.
func TestTCPWindow(t *testing.T) {
	privtest.Require(t)
	o := libvirtref.New(t)
	name := libvirtref.DefineFilter(t, fmt.Sprintf(windowFilter, "nwbpf-window-"+o.Tap.Name))
	o.Bind(name)
	t.Cleanup(o.Unbind)
	r, err := loader.NewTestRun()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if err := r.Bind(loader.LoopbackIfindex, maps.BindRequest{ID: 1, OutHook: maps.HookIngress, Stages: windowStages()}); err != nil {
		t.Fatal(err)
	}
	for i, c := range windowCases() {
		gport, pport := uint16(41000+i), c.pport
		if pport == 22 {
			gport, pport = 22, uint16(41000+i)
		}
		libvirtref.FlushConntrack(t)
		if err := r.ResetState(); err != nil {
			t.Fatal(err)
		}
		for j, g := range c.segs {
			f := g.frame(t, gport, pport, o.GuestMAC, o.Sink.MAC)
			dir := maps.DirIn
			if g.out {
				dir = maps.DirOut
			}
			lv := o.Send(dir, f)
			d, err := r.Run(loader.LoopbackIfindex, dir, f)
			if err != nil {
				t.Fatal(err)
			}
			nw := d.Ret == loader.TCActOK
			line := kernelFlow(gport, pport)
			if lv != g.deliver || nw != g.deliver {
				t.Errorf("%s, segment %d (%s seq %d ack %d): libvirt delivered %v, nwbpf %v, want %v; conntrack: %s",
					c.name, j, g.flags, g.seq, g.ack, lv, nw, g.deliver, line)
			} else {
				t.Logf("%s, segment %d (%s): %v; conntrack: %s", c.name, j, g.flags, lv, line)
			}
		}
	}
}

// kernelFlow is the kernel's conntrack entry of the case (conntrack -L),
// for the log.
func kernelFlow(gport, pport uint16) string {
	out, _ := exec.Command("conntrack", "-L", "-p", "tcp").Output()
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, fmt.Sprintf("sport=%d dport=%d", gport, pport)) ||
			strings.Contains(l, fmt.Sprintf("sport=%d dport=%d", pport, gport)) {
			return strings.Join(strings.Fields(l), " ")
		}
	}
	return "none"
}
