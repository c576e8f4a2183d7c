// SPDX-License-Identifier: Apache-2.0

package loader

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/nwbpf/nwbpf/maps"
	"github.com/nwbpf/nwbpf/tests/netenv"
)

// csum is the Internet checksum of b with an initial sum.
func csum(sum uint32, b []byte) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// checkUnreachable checks that reply is a valid ICMP(v6) port unreachable
// for the frame orig, quoting its IP packet (up to limit bytes).
func checkUnreachable(t *testing.T, orig, reply []byte, v6 bool) {
	t.Helper()
	if !bytes.Equal(reply[0:6], orig[6:12]) || !bytes.Equal(reply[6:12], orig[0:6]) {
		t.Errorf("MACs not swapped: % x", reply[:12])
	}
	var ipLen int
	if v6 {
		ipLen = int(binary.BigEndian.Uint16(orig[18:])) + 40
		if binary.BigEndian.Uint16(reply[12:]) != 0x86dd || reply[20] != 58 {
			t.Fatalf("not ICMPv6: % x", reply[:24])
		}
		if !bytes.Equal(reply[22:38], orig[38:54]) || !bytes.Equal(reply[38:54], orig[22:38]) {
			t.Errorf("addresses not swapped")
		}
		icmp := reply[54:]
		if icmp[0] != 1 || icmp[1] != 4 {
			t.Errorf("ICMPv6 %d/%d, want 1/4", icmp[0], icmp[1])
		}
		if int(binary.BigEndian.Uint16(reply[18:])) != len(icmp) {
			t.Errorf("payload length %d, ICMPv6 is %d bytes", binary.BigEndian.Uint16(reply[18:]), len(icmp))
		}
		var sum uint32
		for i := 22; i < 54; i += 2 {
			sum += uint32(binary.BigEndian.Uint16(reply[i:]))
		}
		sum += uint32(len(icmp)) + 58
		if c := csum(sum, icmp); c != 0 {
			t.Errorf("ICMPv6 checksum wrong (residue %#x)", c)
		}
		if q := min(ipLen, 1232); !bytes.Equal(icmp[8:], orig[14:14+q]) {
			t.Errorf("quote is not the original packet's first %d bytes", q)
		}
		return
	}
	ip := reply[14:34]
	if binary.BigEndian.Uint16(reply[12:]) != 0x0800 || ip[0] != 0x45 || ip[9] != 1 {
		t.Fatalf("not ICMP over IPv4: % x", reply[:34])
	}
	if csum(0, ip) != 0 {
		t.Errorf("IPv4 header checksum wrong")
	}
	if !bytes.Equal(ip[12:16], orig[30:34]) || !bytes.Equal(ip[16:20], orig[26:30]) {
		t.Errorf("addresses not swapped")
	}
	if int(binary.BigEndian.Uint16(ip[2:])) != len(reply)-14 {
		t.Errorf("total length %d, frame carries %d", binary.BigEndian.Uint16(ip[2:]), len(reply)-14)
	}
	icmp := reply[34:]
	if icmp[0] != 3 || icmp[1] != 3 {
		t.Errorf("ICMP %d/%d, want 3/3", icmp[0], icmp[1])
	}
	if csum(0, icmp) != 0 {
		t.Errorf("ICMP checksum wrong")
	}
	ipLen = int(binary.BigEndian.Uint16(orig[16:]))
	if q := min(ipLen, 548); !bytes.Equal(icmp[8:], orig[14:14+q]) {
		t.Errorf("quote is not the original packet's first %d bytes", q)
	}
}

// TestReject runs L3/L4 rejects through BPF_PROG_TEST_RUN and checks the
// ICMP error that replaces the frame, or the plain drop where no error may
// be sent.
func TestReject(t *testing.T) {
	l, store := testLoader(t)
	ifindex := dummy(t)
	stages := out(nil, []maps.Rule{match(maps.ActReject)})
	if err := store.Bind(uint32(ifindex), maps.BindRequest{Stages: stages}); err != nil {
		t.Fatal(err)
	}
	badSum := frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), tcpSyn(1, 2))
	badSum[14+20+16] ^= 0xff // as an offloaded (partial) checksum would look
	bcast := udp4(t)
	copy(bcast[0:6], layers.EthernetBroadcast)
	icmpErr := frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 1)}, payload(28))
	icmp6Err := frame(t, eth(layers.EthernetTypeIPv6), ip6(layers.IPProtocolICMPv6),
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(1, 0)}, payload(48))
	padded := append(udp4(t)[:14+20+8], make([]byte, 60-(14+20+8))...) // Ethernet padding
	binary.BigEndian.PutUint16(padded[14+2:], 28)
	binary.BigEndian.PutUint16(padded[14+20+4:], 8)
	binary.BigEndian.PutUint16(padded[14+20+6:], 0) // no UDP checksum
	binary.BigEndian.PutUint16(padded[14+10:], 0)
	binary.BigEndian.PutUint16(padded[14+10:], csum(0, padded[14:34]))
	for _, tc := range []struct {
		name  string
		frame []byte
		v6    bool
		sent  bool
	}{
		{"udp", udp4(t), false, true},
		{"udp, padded frame", padded, false, true},
		{"tcp syn", frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), tcpSyn(40000, 25)), false, true},
		{"icmp echo", frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolICMPv4),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)}, payload(600)), false, true},
		{"udp6", frame(t, eth(layers.EthernetTypeIPv6), ip6(layers.IPProtocolUDP), udp(5, 53), payload(11)), true, true},
		{"tcp6 syn", frame(t, eth(layers.EthernetTypeIPv6), ip6(layers.IPProtocolTCP), tcpSyn(40000, 25)), true, true},
		{"partial checksum: drop only", badSum, false, false},
		{"broadcast: drop only", bcast, false, false},
		{"icmp error: drop only", icmpErr, false, false},
		{"icmpv6 error: drop only", icmp6Err, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := &ebpf.RunOptions{
				Data: tc.frame, DataOut: make([]byte, 4096), Context: skbCtx{Ifindex: uint32(ifindex)},
			}
			ret, err := l.Program(maps.HookIngress).Run(opts)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.sent {
				if ret != tcShot {
					t.Errorf("verdict %d, want a plain drop", ret)
				}
				return
			}
			if ret != tcRedirect {
				t.Fatalf("verdict %d, want redirect", ret)
			}
			reply := opts.DataOut // cut to the output's length by Run
			checkUnreachable(t, tc.frame, reply, tc.v6)
			pkt := gopacket.NewPacket(reply, layers.LayerTypeEthernet, gopacket.Default)
			if e := pkt.ErrorLayer(); e != nil {
				t.Errorf("reply does not decode: %v", e.Error())
			}
		})
	}
}

// TestRejectOnTap sends a frame the L3/L4 stage rejects from a tap's guest
// and receives the ICMP error on the guest's side.
func TestRejectOnTap(t *testing.T) {
	l, store := testLoader(t)
	g := newGuest(t, false)
	a := attachIn(t, g.ns, l, g.tap.Name, AttachOptions{})
	t.Cleanup(func() { detachIn(t, g.ns, l, g.tap.Name) })
	stages := out(nil, []maps.Rule{match(maps.ActReject, eq(maps.FDport, 9))})
	if err := store.Bind(uint32(a.Ifindex), maps.BindRequest{OutHook: a.OutHook, Stages: stages}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Unbind(uint32(a.Ifindex)) })
	f := frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP), udp(7, 9), payload(32))
	if err := netenv.Drain(g.tap); err != nil {
		t.Fatal(err)
	}
	if err := g.tap.Send(f); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		got, err := g.tap.Recv(time.Until(deadline))
		if err != nil {
			t.Fatalf("no ICMP error for the guest: %v", err)
		}
		if len(got) > 34 && got[23] == 1 && got[34] == 3 {
			checkUnreachable(t, f, got, false)
			return
		}
	}
	t.Fatal("no ICMP error for the guest")
}
