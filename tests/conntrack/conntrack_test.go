// SPDX-License-Identifier: Apache-2.0

package conntrack_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"

	"github.com/nwbpf/nwbpf/internal/privtest"
	"github.com/nwbpf/nwbpf/loader"
	"github.com/nwbpf/nwbpf/maps"
	"github.com/nwbpf/nwbpf/tests/netenv"
)

var (
	vmMAC  = net.HardwareAddr{0x52, 0x54, 0x00, 0x11, 0x22, 0x33}
	vmIP   = net.IPv4(10, 0, 0, 5).To4()
	peerIP = net.IPv4(10, 0, 0, 1).To4()
)

func u(v uint64) maps.U128 { return maps.U128{0, v} }

func eq(f maps.Field, v uint64) maps.Cond {
	return maps.Cond{Field: f, Op: maps.OpEq, A: u(v), B: maps.U128{^uint64(0), ^uint64(0)}}
}

func st(bits uint64) maps.Cond { return maps.Cond{Field: maps.FCTState, Op: maps.OpAnyBit, A: u(bits)} }

func rule(act maps.Action, id uint32, cs ...maps.Cond) maps.Rule {
	r := maps.Rule{Kind: maps.RKMatch, Action: act, NCond: uint8(len(cs)), ID: id}
	copy(r.Cond[:], cs)
	return r
}

// documented is what the compiler makes of libvirt's documented stateful
// example: accept in tcp/22 and tcp/80, accept out icmp and udp/53 (each
// NEW,ESTABLISHED + ORIGINAL in its direction, ESTABLISHED + REPLY in the
// other), then drop all (IPv4; the -ipv6 drop would follow, and IPv6 is
// off here). With ssh false, the tcp/22 accept is gone.
func documented(ssh bool) [2][2][]maps.Rule {
	const ne = maps.CTNew | maps.CTEstablished
	ip, tcp, udp, icmp := eq(maps.FL3, 4), eq(maps.FL4Proto, 6), eq(maps.FL4Proto, 17), eq(maps.FL4Proto, 1)
	orig, reply := eq(maps.FCTDir, maps.CTDirOriginal), eq(maps.FCTDir, maps.CTDirReply)
	var s [2][2][]maps.Rule
	var in, out []maps.Rule
	for _, port := range []uint64{22, 80} {
		if port == 22 && !ssh {
			continue
		}
		in = append(in, rule(maps.ActAccept, 1, ip, tcp, eq(maps.FDport, port), st(ne), orig))
		out = append(out, rule(maps.ActAccept, 1, ip, tcp, eq(maps.FSport, port), st(maps.CTEstablished), reply))
	}
	out = append(out, rule(maps.ActAccept, 2, ip, icmp, st(ne), orig), rule(maps.ActAccept, 3, ip, udp, eq(maps.FDport, 53), st(ne), orig))
	in = append(in, rule(maps.ActAccept, 2, ip, icmp, st(maps.CTEstablished), reply), rule(maps.ActAccept, 3, ip, udp, eq(maps.FSport, 53), st(maps.CTEstablished), reply))
	s[maps.DirIn][maps.StageL34] = append(in, rule(maps.ActDrop, 4, ip))
	s[maps.DirOut][maps.StageL34] = append(out, rule(maps.ActDrop, 4, ip))
	return s
}

type env struct {
	tap     *netenv.Tap
	peer    *netenv.NS
	peerMAC net.HardwareAddr
	store   *maps.Store
	ifindex int
	outHook maps.Hook
}

// setup: the test plays the VM on a tap bridged to a veth whose other end
// is in a peer namespace (10.0.0.1, a real kernel stack); the classifier
// is attached to the tap and runs the documented filter.
func setup(t *testing.T) *env {
	privtest.Require(t)
	ns, peer := netenv.NewNS(t), netenv.NewNS(t)
	br := ns.AddBridge(t)
	tap := ns.AddTap(t)
	ns.Attach(t, ns.Link(t, tap.Name), br)
	local, remote := ns.AddVeth(t, peer)
	ns.Attach(t, local, br)
	if err := peer.Handle.AddrAdd(remote, &netlink.Addr{IPNet: &net.IPNet{IP: peerIP, Mask: net.CIDRMask(24, 32)}}); err != nil {
		t.Fatal(err)
	}
	if err := peer.Handle.NeighAdd(&netlink.Neigh{LinkIndex: remote.Attrs().Index, State: netlink.NUD_PERMANENT,
		IP: vmIP, HardwareAddr: vmMAC}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(privtest.BPFFS, netenv.Name("nwbpfct"))
	l, err := loader.Load(loader.Options{PinDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Close()
		os.RemoveAll(dir)
	})
	var a *loader.Attachment
	if err := ns.Do(func() (err error) { a, err = l.Attach(tap.Name, loader.AttachOptions{}); return err }); err != nil {
		t.Fatal(err)
	}
	store, err := maps.NewStore(l.Maps(), maps.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{tap: tap, peer: peer, peerMAC: peer.Link(t, remote.Attrs().Name).Attrs().HardwareAddr,
		store: store, ifindex: a.Ifindex, outHook: a.OutHook}
	e.bind(t, documented(true))
	return e
}

func (e *env) bind(t *testing.T, s [2][2][]maps.Rule) {
	t.Helper()
	if err := e.store.Bind(uint32(e.ifindex), maps.BindRequest{OutHook: e.outHook, Stages: s}); err != nil {
		t.Fatal(err)
	}
}

// send writes a frame from the VM to the peer.
func (e *env) send(t *testing.T, ls ...gopacket.SerializableLayer) {
	t.Helper()
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, SrcIP: vmIP, DstIP: peerIP}
	switch l := ls[0].(type) {
	case *layers.TCP:
		ip.Protocol = layers.IPProtocolTCP
		l.SetNetworkLayerForChecksum(ip)
	case *layers.UDP:
		ip.Protocol = layers.IPProtocolUDP
		l.SetNetworkLayerForChecksum(ip)
	default:
		ip.Protocol = layers.IPProtocolICMPv4
	}
	all := append([]gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: vmMAC, DstMAC: e.peerMAC, EthernetType: layers.EthernetTypeIPv4}, ip}, ls...)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, all...); err != nil {
		t.Fatal(err)
	}
	if err := e.tap.Send(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
}

// await returns the first packet delivered to the VM that match accepts,
// or nil after timeout.
func (e *env) await(t *testing.T, timeout time.Duration, match func(gopacket.Packet) bool) gopacket.Packet {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		f, err := e.tap.Recv(time.Until(deadline))
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		if match(p) {
			return p
		}
	}
	return nil
}

func tcpOf(p gopacket.Packet) *layers.TCP {
	if l, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP); ok {
		return l
	}
	return nil
}

func TestDocumentedFilterOnTap(t *testing.T) {
	e := setup(t)

	// A TCP connection into the guest's port 22: the peer's kernel dials,
	// the test answers as the guest.
	type dial struct {
		c   net.Conn
		err error
	}
	done := make(chan dial, 1)
	go func() {
		var d dial
		d.err = e.peer.Do(func() (err error) {
			d.c, err = net.DialTimeout("tcp", "10.0.0.5:22", 5*time.Second)
			return err
		})
		done <- d
	}()
	syn := e.await(t, 3*time.Second, func(p gopacket.Packet) bool {
		tc := tcpOf(p)
		return tc != nil && tc.SYN && !tc.ACK && tc.DstPort == 22
	})
	if syn == nil {
		t.Fatal("the peer's SYN to port 22 never reached the guest")
	}
	in := tcpOf(syn)
	const iss = 5000
	e.send(t, &layers.TCP{SrcPort: 22, DstPort: in.SrcPort, SYN: true, ACK: true, Seq: iss, Ack: in.Seq + 1, Window: 65535})
	d := <-done
	if d.err != nil {
		t.Fatalf("connection into the guest: %v", d.err)
	}
	conn := d.c
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	data := e.await(t, 3*time.Second, func(p gopacket.Packet) bool {
		tc := tcpOf(p)
		return tc != nil && tc.DstPort == 22 && bytes.Equal(tc.Payload, []byte("hello"))
	})
	if data == nil {
		t.Fatal("the peer's data never reached the guest")
	}
	dt := tcpOf(data)
	e.send(t, &layers.TCP{SrcPort: 22, DstPort: in.SrcPort, ACK: true, PSH: true, Seq: iss + 1, Ack: dt.Seq + 5, Window: 65535},
		gopacket.Payload("world"))
	buf := make([]byte, 5)
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "world" {
		t.Fatalf("the guest's answer: %q, %v", buf, err)
	}

	// The guest cannot open TCP out: its SYN to the peer's listener never
	// gets a SYN-ACK.
	if err := e.peer.Do(func() error {
		ln, err := net.Listen("tcp", "10.0.0.1:80")
		if err == nil {
			t.Cleanup(func() { ln.Close() })
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	e.send(t, &layers.TCP{SrcPort: 40000, DstPort: 80, SYN: true, Seq: 1, Window: 65535})
	if p := e.await(t, 500*time.Millisecond, func(p gopacket.Packet) bool {
		tc := tcpOf(p)
		return tc != nil && tc.SrcPort == 80 && tc.DstPort == 40000
	}); p != nil {
		t.Errorf("the guest opened TCP out: %v", p)
	}

	// DNS out gets its answer (the peer answers on :53).
	if err := e.peer.Do(func() error {
		pc, err := net.ListenPacket("udp", "10.0.0.1:53")
		if err != nil {
			return err
		}
		t.Cleanup(func() { pc.Close() })
		go func() {
			b := make([]byte, 512)
			for {
				n, from, err := pc.ReadFrom(b)
				if err != nil {
					return
				}
				_, _ = pc.WriteTo(append([]byte("answer:"), b[:n]...), from)
			}
		}()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e.send(t, &layers.UDP{SrcPort: 5353, DstPort: 53}, gopacket.Payload("query"))
	if p := e.await(t, 2*time.Second, func(p gopacket.Packet) bool {
		ul, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		return ok && ul.SrcPort == 53 && bytes.Equal(ul.Payload, []byte("answer:query"))
	}); p == nil {
		t.Error("the DNS answer never reached the guest")
	}

	// Ping out works: the peer's kernel answers.
	e.send(t, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 42, Seq: 1}, gopacket.Payload("ping"))
	if p := e.await(t, 2*time.Second, func(p gopacket.Packet) bool {
		ic, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		return ok && ic.TypeCode.Type() == 0 && ic.Id == 42
	}); p == nil {
		t.Error("the echo reply never reached the guest")
	}

	// Ping in does not: the peer sends an echo request of its own.
	sink := netenv.NewSink(t, e.peer, e.peer.Link(t, peerLinkName(t, e)))
	ping := serialize(t, &layers.Ethernet{SrcMAC: e.peerMAC, DstMAC: vmMAC, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: peerIP, DstIP: vmIP},
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 43, Seq: 1}, gopacket.Payload("ping"))
	if err := sink.Send(ping); err != nil {
		t.Fatal(err)
	}
	if p := e.await(t, 500*time.Millisecond, func(p gopacket.Packet) bool {
		ic, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		return ok && ic.TypeCode.Type() == 8 && ic.Id == 43
	}); p != nil {
		t.Error("a ping reached the guest")
	}

	// The rules change: tcp/22 is no longer accepted. The established
	// connection is cut, as iptables re-evaluates every packet.
	e.bind(t, documented(false))
	if _, err := conn.Write([]byte("again")); err != nil {
		t.Fatal(err)
	}
	if p := e.await(t, time.Second, func(p gopacket.Packet) bool {
		tc := tcpOf(p)
		return tc != nil && tc.DstPort == 22 && len(tc.Payload) > 0
	}); p != nil {
		t.Error("data of the cut connection reached the guest")
	}
}

func peerLinkName(t *testing.T, e *env) string {
	t.Helper()
	links, err := e.peer.Handle.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if bytes.Equal(l.Attrs().HardwareAddr, e.peerMAC) {
			return l.Attrs().Name
		}
	}
	t.Fatal("no peer link")
	return ""
}

func serialize(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
