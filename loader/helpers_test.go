// SPDX-License-Identifier: Apache-2.0

package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"

	"github.com/nwbpf/nwbpf/internal/privtest"
	"github.com/nwbpf/nwbpf/maps"
	"github.com/nwbpf/nwbpf/tests/netenv"
)

// shared is one classifier loaded (with tracing) for the whole test binary:
// its maps are large, and sharing it also exercises many bindings in one
// set of maps.
var shared struct {
	once  sync.Once
	dir   string
	l     *Loader
	store *maps.Store
	err   error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.l != nil {
		shared.l.Close()
	}
	if shared.dir != "" {
		if err := os.RemoveAll(shared.dir); err != nil {
			fmt.Fprintf(os.Stderr, "unpin %s: %v\n", shared.dir, err)
			code = 1
		}
	}
	os.Exit(code)
}

// testLoader returns the shared traced classifier and its Store.
func testLoader(tb testing.TB) (*Loader, *maps.Store) {
	tb.Helper()
	privtest.Require(tb)
	shared.once.Do(func() {
		shared.dir = filepath.Join(privtest.BPFFS, netenv.Name("nwbpft"))
		shared.l, shared.err = Load(Options{PinDir: shared.dir, Trace: true})
		if shared.err != nil {
			return
		}
		shared.store, shared.err = maps.NewStore(shared.l.Maps(), maps.Options{})
	})
	if shared.err != nil {
		tb.Fatalf("load shared classifier: %v", shared.err)
	}
	return shared.l, shared.store
}

// dummy creates a link in the test's network namespace whose ifindex
// BPF_PROG_TEST_RUN accepts as the frame's device (a veth: this kernel has
// no dummy driver), and returns its ifindex.
func dummy(tb testing.TB) int {
	tb.Helper()
	name := netenv.Name("nwd")
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}
	if err := netlink.LinkAdd(veth); err != nil {
		tb.Fatalf("add veth %s: %v", name, err)
	}
	tb.Cleanup(func() {
		if lk, err := netlink.LinkByName(name); err == nil {
			if err := netlink.LinkDel(lk); err != nil {
				tb.Errorf("delete veth %s: %v", name, err)
			}
		}
	})
	lk, err := netlink.LinkByName(name)
	if err != nil {
		tb.Fatalf("find veth %s: %v", name, err)
	}
	ifindex := lk.Attrs().Index
	tb.Cleanup(func() {
		if err := shared.store.Unbind(uint32(ifindex)); err != nil && !errors.Is(err, maps.ErrNotBound) {
			tb.Errorf("unbind %s: %v", name, err)
		}
	})
	return ifindex
}

// skbCtx is the head of struct __sk_buff, up to ifindex: the part of the
// context BPF_PROG_TEST_RUN lets a caller set that the classifier reads.
type skbCtx struct {
	Len, PktType, Mark, QueueMapping, Protocol     uint32
	VlanPresent, VlanTCI, VlanProto, Priority      uint32
	IngressIfindex, Ifindex                        uint32
	TCIndex                                        uint32
	CB                                             [5]uint32
	Hash, TCClassid, Data, DataEnd, NapiID, Family uint32
	RemoteIP4, LocalIP4                            uint32
	RemoteIP6, LocalIP6                            [4]uint32
	RemotePort, LocalPort, DataMeta, _             uint32
	FlowKeys, Tstamp                               uint64
	WireLen, GsoSegs                               uint32
	Sk                                             uint64
	GsoSize                                        uint32
	TstampType, _, _, _                            uint8
	Hwtstamp                                       uint64
}

// result is what one run of the classifier reports.
type result struct {
	ret   uint32
	trace maps.Trace
	pkt   maps.Pkt
	cpu   int
}

// run runs the hook's program once on frame as if it came through ifindex,
// and returns the TC verdict with the trace and parse of the CPU it ran on.
func run(tb testing.TB, l *Loader, hook maps.Hook, ifindex int, frame []byte) result {
	tb.Helper()
	before := traces(tb, l)
	ret, err := l.Program(hook).Run(&ebpf.RunOptions{
		Data:    frame,
		Context: skbCtx{Ifindex: uint32(ifindex)},
	})
	if err != nil {
		tb.Fatalf("run %s program: %v", hookName(hook), err)
	}
	after := traces(tb, l)
	res := result{ret: ret, cpu: -1}
	for cpu := range after {
		if after[cpu].Seq != before[cpu].Seq {
			res.cpu, res.trace = cpu, after[cpu]
		}
	}
	if res.cpu < 0 {
		return res // unbound interface: nothing traced
	}
	var pkts []maps.Pkt
	if err := l.Map("nwf_scratch").Lookup(uint32(0), &pkts); err != nil {
		tb.Fatalf("read nwf_scratch: %v", err)
	}
	res.pkt = pkts[res.cpu]
	return res
}

func traces(tb testing.TB, l *Loader) []maps.Trace {
	tb.Helper()
	var ts []maps.Trace
	if err := l.Map("nwf_trace").Lookup(uint32(0), &ts); err != nil {
		tb.Fatalf("read nwf_trace: %v", err)
	}
	return ts
}

func hookName(h maps.Hook) string {
	if h == maps.HookEgress {
		return "egress"
	}
	return "ingress"
}

// ruleCount sums an entry's per-CPU counters.
func ruleCount(tb testing.TB, l *Loader, entry uint32) maps.Count {
	tb.Helper()
	var cs []maps.Count
	if err := l.Map("nwf_rule_stats").Lookup(entry, &cs); err != nil {
		tb.Fatalf("read nwf_rule_stats[%d]: %v", entry, err)
	}
	var sum maps.Count
	for _, c := range cs {
		sum.Packets += c.Packets
		sum.Bytes += c.Bytes
	}
	return sum
}

// dropCount sums a reason's per-CPU drop counters in one direction.
func dropCount(tb testing.TB, l *Loader, r maps.DropReason, d maps.Dir) maps.DropCount {
	tb.Helper()
	var cs []maps.DropCount
	if err := l.Map("nwf_drop_stats").Lookup(maps.DropStatsKey(r, d), &cs); err != nil {
		tb.Fatalf("read nwf_drop_stats: %v", err)
	}
	var sum maps.DropCount
	for _, c := range cs {
		sum.Packets += c.Packets
		sum.Bytes += c.Bytes
		sum.ShadowPackets += c.ShadowPackets
		sum.ShadowBytes += c.ShadowBytes
	}
	return sum
}

// ---- Entries ----

var all = maps.U128{^uint64(0), ^uint64(0)}

func u(v uint64) maps.U128 { return maps.U128{0, v} }

// eq tests field == v (full mask).
func eq(f maps.Field, v uint64) maps.Cond {
	return maps.Cond{Field: f, Op: maps.OpEq, A: u(v), B: all}
}

// eq128 tests a 16-byte field.
func eq128(f maps.Field, v maps.U128) maps.Cond {
	return maps.Cond{Field: f, Op: maps.OpEq, A: v, B: all}
}

// masked tests field & mask == v.
func masked(f maps.Field, v, mask uint64) maps.Cond {
	return maps.Cond{Field: f, Op: maps.OpEq, A: u(v), B: u(mask)}
}

func rng(f maps.Field, lo, hi uint64) maps.Cond {
	return maps.Cond{Field: f, Op: maps.OpRange, A: u(lo), B: u(hi)}
}

func anybit(f maps.Field, bits uint64) maps.Cond {
	return maps.Cond{Field: f, Op: maps.OpAnyBit, A: u(bits)}
}

func tcpopt(kind uint64) maps.Cond {
	return maps.Cond{Op: maps.OpTCPOpt, A: u(kind)}
}

func neg(c maps.Cond) maps.Cond {
	c.Flags |= maps.CFNeg
	return c
}

// variable makes c take its values from instance value index i.
func variable(c maps.Cond, i uint8) maps.Cond {
	c.Flags |= maps.CFVar
	c.Var = i
	c.A, c.B = maps.U128{}, maps.U128{}
	return c
}

var nextID uint32 = 100

func entry(kind maps.RuleKind, act maps.Action, cs ...maps.Cond) maps.Rule {
	nextID++
	r := maps.Rule{Kind: kind, Action: act, NCond: uint8(len(cs)), ID: nextID}
	copy(r.Cond[:], cs)
	for _, c := range cs {
		if c.Flags&maps.CFVar != 0 {
			r.NVar++
		}
	}
	return r
}

func match(act maps.Action, cs ...maps.Cond) maps.Rule { return entry(maps.RKMatch, act, cs...) }

func jump(target uint32, cs ...maps.Cond) maps.Rule {
	r := entry(maps.RKJump, maps.ActAccept, cs...)
	r.Target = target
	return r
}

func end(act maps.Action) maps.Rule { return entry(maps.RKChainEnd, act) }

// slot sets an entry's variable slot.
func slot(r maps.Rule, s uint32) maps.Rule {
	r.VSlot = s
	return r
}

// ---- Frames ----

var (
	macVM  = net.HardwareAddr{0x52, 0x54, 0x00, 0x56, 0x44, 0x32}
	macGW  = net.HardwareAddr{0x52, 0x54, 0x00, 0x00, 0x00, 0x01}
	macSTP = net.HardwareAddr{0x01, 0x80, 0xc2, 0x00, 0x00, 0x00}
	ipVM   = net.IPv4(10, 0, 0, 5).To4()
	ipGW   = net.IPv4(10, 0, 0, 1).To4()
	ip6VM  = net.ParseIP("fd00::5")
	ip6GW  = net.ParseIP("fd00::1")
)

const (
	macVMv = 0x525400564432
	macGWv = 0x525400000001
	ipVMv  = 0x0a000005
	ipGWv  = 0x0a000001
)

func ip6v(ip net.IP) maps.U128 {
	return maps.U128{binary.BigEndian.Uint64(ip[:8]), binary.BigEndian.Uint64(ip[8:16])}
}

// frame serializes layers, fixing lengths and checksums.
func frame(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	for _, l := range ls {
		switch x := l.(type) {
		case *layers.TCP:
			setNet(tb, ls, x.SetNetworkLayerForChecksum)
		case *layers.UDP:
			setNet(tb, ls, x.SetNetworkLayerForChecksum)
		case *layers.ICMPv6:
			setNet(tb, ls, x.SetNetworkLayerForChecksum)
		}
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		tb.Fatalf("serialize: %v", err)
	}
	return buf.Bytes()
}

func setNet(tb testing.TB, ls []gopacket.SerializableLayer, set func(gopacket.NetworkLayer) error) {
	for _, l := range ls {
		if n, ok := l.(gopacket.NetworkLayer); ok {
			if err := set(n); err != nil {
				tb.Fatalf("checksum layer: %v", err)
			}
		}
	}
}

func eth(t layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: macVM, DstMAC: macGW, EthernetType: t}
}

func ip4(proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, SrcIP: ipVM, DstIP: ipGW, Id: 0x1234}
}

func ip6(nh layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: nh, SrcIP: ip6VM, DstIP: ip6GW}
}

func udp(sport, dport uint16) *layers.UDP {
	return &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
}

func tcpSyn(sport, dport uint16) *layers.TCP {
	return &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), SYN: true, Window: 1024,
		Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 0xb4}}}}
}

func payload(n int) gopacket.Payload { return make(gopacket.Payload, n) }

// udp4 is the usual test frame: the VM's UDP from 10.0.0.5:1234 to
// 10.0.0.1:53.
func udp4(tb testing.TB) []byte {
	return frame(tb, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP), udp(1234, 53), payload(8))
}

// rawEth builds an Ethernet header (VM to gateway) followed by payload.
func rawEth(typ uint16, payload ...byte) []byte {
	b := append([]byte{}, macGW...)
	b = append(b, macVM...)
	b = binary.BigEndian.AppendUint16(b, typ)
	return append(b, payload...)
}

// stpHeader is ebt_stp's 6-byte BPDU header (nwbpf.h): LLC, protocol id
// and version; ebt_stp calls the version byte the type.
var stpHeader = []byte{0x42, 0x42, 0x03, 0x00, 0x00, 0x00}

// stpBody is a 31-byte body as ebt_stp reads it from payload offset 6.
var stpBody = []byte{
	0x01,                                     // flags
	0x80, 0x00, 0x52, 0x54, 0x00, 0, 0, 0x99, // root prio, root addr
	0x00, 0x00, 0x00, 0x04, // root cost
	0x80, 0x01, 0x52, 0x54, 0x00, 0, 0, 0x98, // sender prio, addr
	0x80, 0x02, // port
	0x01, 0x00, // message age
	0x14, 0x00, // max age
	0x02, 0x00, // hello time
	0x0f, 0x00, // forward delay
}

// bpdu builds an 802.3 frame to the STP address whose payload is body
// after ebt_stp's header.
func bpdu(body []byte) []byte {
	b := append([]byte{}, macSTP...)
	b = append(b, macVM...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(stpHeader)+len(body)))
	b = append(b, stpHeader...)
	return append(b, body...)
}

// ext6 builds an IPv6 hop-by-hop/routing/destination options header with
// (n+1)*8 bytes.
func ext6(next uint8, n uint8) []byte {
	b := make([]byte, (int(n)+1)*8)
	b[0], b[1] = next, n
	b[2], b[3] = 1, byte(len(b)-4) // PadN
	return b
}

// frag6 builds an IPv6 fragment header.
func frag6(next uint8, off uint16, more bool, id uint32) []byte {
	b := make([]byte, 8)
	b[0] = next
	v := off << 3
	if more {
		v |= 1
	}
	binary.BigEndian.PutUint16(b[2:], v)
	binary.BigEndian.PutUint32(b[4:], id)
	return b
}

// raw6 builds an Ethernet+IPv6 frame with next header nh and the given
// extension headers and L4 bytes.
func raw6(nh uint8, rest ...[]byte) []byte {
	var p []byte
	for _, r := range rest {
		p = append(p, r...)
	}
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(p)))
	h[6], h[7] = nh, 64
	copy(h[8:], ip6VM.To16())
	copy(h[24:], ip6GW.To16())
	b := append([]byte{}, macGW...)
	b = append(b, macVM...)
	b = append(b, 0x86, 0xdd)
	b = append(b, h...)
	return append(b, p...)
}

// udpHdr is a UDP header with no payload checksum.
func udpHdr(sport, dport uint16) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint16(b, sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], 8)
	return b
}
