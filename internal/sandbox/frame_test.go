// SPDX-License-Identifier: Apache-2.0

package sandbox

import (
	"bytes"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// udp4 builds an IPv4/UDP frame.
func udp4(t *testing.T, smac, dmac net.HardwareAddr, sip, dip net.IP, sport, dport uint16, payload []byte) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: sip.To4(), DstIP: dip.To4()}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: smac, DstMAC: dmac, EthernetType: layers.EthernetTypeIPv4}, ip, udp, gopacket.Payload(payload))
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFrameMatches(t *testing.T) {
	src, dst := net.HardwareAddr{0x52, 0, 0, 0, 0, 1}, net.HardwareAddr{0x52, 0, 0, 0, 0, 2}
	// gopacket pads the 43-byte frame to the Ethernet minimum of 60.
	padded := udp4(t, src, dst, net.IPv4(10, 9, 0, 2), net.IPv4(10, 9, 0, 1), 40000, 9, []byte("x"))
	trimmed := padded[:ipFrameLen(padded)]
	if len(trimmed) != 43 || len(padded) != 60 {
		t.Fatalf("test frame: %d bytes, IP says %d; want 60 and 43", len(padded), len(trimmed))
	}
	// The same frame with an 802.1Q tag (VLAN 7) after the MACs.
	tagged := append(append(bytes.Clone(padded[:12]), 0x81, 0x00, 0x00, 0x07), padded[12:]...)
	other := bytes.Clone(padded)
	other[len(trimmed)-1] ^= 1
	for _, tc := range []struct {
		name      string
		sent, got []byte
		want      bool
	}{
		{"identical", padded, padded, true},
		{"padding trimmed", padded, trimmed, true},
		{"payload differs", padded, other, false},
		{"trimmed too far", padded, trimmed[:len(trimmed)-1], false},
		{"longer", trimmed, padded, false},
		{"tagged identical", tagged, tagged, true},
		{"tagged is never trimmed", tagged, tagged[:len(tagged)-2], false},
		{"empty", padded, nil, false},
	} {
		if got := FrameMatches(tc.sent, tc.got); got != tc.want {
			t.Errorf("%s: FrameMatches = %v, want %v", tc.name, got, tc.want)
		}
	}
}
