// SPDX-License-Identifier: Apache-2.0

package loader

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/nwbpf/nwbpf/internal/privtest"
	"github.com/nwbpf/nwbpf/maps"
	"github.com/nwbpf/nwbpf/tests/netenv"
)

// Conntrack-lite through BPF_PROG_TEST_RUN. The VM is 10.0.0.5 behind a
// tap (its frames pass the ingress hook: out), the peer 10.0.0.1.

// Conditions of the compiler's stateful entries.
func ctState(bits uint64) maps.Cond { return anybit(maps.FCTState, bits) }
func ctDir(d uint64) maps.Cond      { return eq(maps.FCTDir, d) }

const newEst = maps.CTNew | maps.CTEstablished

// statefulProgram is what the compiler makes of libvirt's documented
// example: accept in tcp/22, accept out udp/53 and icmp, each with its
// reply entry in the other direction, then drop all IPv4 both ways.
func statefulProgram() [2][2][]maps.Rule {
	ip4c := eq(maps.FL3, 4)
	tcp, udp, icmp := eq(maps.FL4Proto, 6), eq(maps.FL4Proto, 17), eq(maps.FL4Proto, 1)
	var s [2][2][]maps.Rule
	s[maps.DirOut][maps.StageL34] = []maps.Rule{
		match(maps.ActAccept, ip4c, tcp, eq(maps.FSport, 22), ctState(maps.CTEstablished), ctDir(maps.CTDirReply)),
		match(maps.ActAccept, ip4c, udp, eq(maps.FDport, 53), ctState(newEst), ctDir(maps.CTDirOriginal)),
		match(maps.ActAccept, ip4c, icmp, ctState(newEst), ctDir(maps.CTDirOriginal)),
		match(maps.ActDrop, ip4c),
	}
	s[maps.DirIn][maps.StageL34] = []maps.Rule{
		match(maps.ActAccept, ip4c, tcp, eq(maps.FDport, 22), ctState(newEst), ctDir(maps.CTDirOriginal)),
		match(maps.ActAccept, ip4c, udp, eq(maps.FSport, 53), ctState(maps.CTEstablished), ctDir(maps.CTDirReply)),
		match(maps.ActAccept, ip4c, icmp, ctState(maps.CTEstablished), ctDir(maps.CTDirReply)),
		match(maps.ActDrop, ip4c),
	}
	return s
}

// bindProgram binds stages to a fresh interface of l's store and returns
// its ifindex.
func bindProgram(tb testing.TB, store *maps.Store, stages [2][2][]maps.Rule) int {
	tb.Helper()
	ifindex := dummy(tb)
	if err := store.Bind(uint32(ifindex), maps.BindRequest{ID: uint32(ifindex), Stages: stages}); err != nil {
		tb.Fatalf("bind: %v", err)
	}
	return ifindex
}

// ---- Frames between the VM and the peer ----

func ipv4(proto layers.IPProtocol, fromVM bool) *layers.IPv4 {
	ip := ip4(proto)
	if !fromVM {
		ip.SrcIP, ip.DstIP = ipGW, ipVM
	}
	return ip
}

func ethDir(fromVM bool) *layers.Ethernet {
	e := eth(layers.EthernetTypeIPv4)
	if !fromVM {
		e.SrcMAC, e.DstMAC = macGW, macVM
	}
	return e
}

func udpFrame(tb testing.TB, fromVM bool, sport, dport uint16) []byte {
	return frame(tb, ethDir(fromVM), ipv4(layers.IPProtocolUDP, fromVM), udp(sport, dport), payload(8))
}

// tcpFlags: "S" SYN, "SA" SYN-ACK, "A" ACK, "PA" data, "FA", "R", "RA",
// "SF" (invalid), "" no flags.
func tcpFrame(tb testing.TB, fromVM bool, sport, dport uint16, flags string) []byte {
	t := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Window: 1024, Seq: 1000, Ack: 2000}
	for _, c := range flags {
		switch c {
		case 'S':
			t.SYN = true
		case 'A':
			t.ACK = true
		case 'F':
			t.FIN = true
		case 'R':
			t.RST = true
		case 'P':
			t.PSH = true
		}
	}
	return frame(tb, ethDir(fromVM), ipv4(layers.IPProtocolTCP, fromVM), t, payload(4))
}

func icmpFrame(tb testing.TB, fromVM bool, typ uint8, id uint16, quote []byte) []byte {
	ls := []gopacket.SerializableLayer{ethDir(fromVM), ipv4(layers.IPProtocolICMPv4, fromVM),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, 0), Id: id, Seq: 1}}
	if quote != nil {
		ls = append(ls, gopacket.Payload(quote))
	} else {
		ls = append(ls, payload(8))
	}
	return frame(tb, ls...)
}

// quoted is the IP packet of an Ethernet frame, as an ICMP error quotes it.
func quoted(f []byte) []byte { return f[14:] }

// ---- Running frames ----

// step is one frame of a conversation and what the classifier must report.
type step struct {
	name   string
	fromVM bool
	frame  []byte
	pass   bool
	state  uint8 // NWF_CT_* reported (0: CT_STATE absent)
	dir    uint8 // NWF_CTDIR_* reported (0: CT_DIR absent)
}

// send runs f through the hook that sees it (the VM's frames: ingress).
func send(tb testing.TB, l *Loader, ifindex int, fromVM bool, f []byte) result {
	tb.Helper()
	hook := maps.HookEgress
	if fromVM {
		hook = maps.HookIngress
	}
	return run(tb, l, hook, ifindex, f)
}

func runSteps(t *testing.T, l *Loader, ifindex int, steps []step) {
	t.Helper()
	for i, s := range steps {
		checkStep(t, i, s, sendNumbered(t, l, ifindex, s.fromVM, s.frame))
	}
}

// sendNumbered sends a frame as send does, TCP numbered by numberTCP.
func sendNumbered(tb testing.TB, l *Loader, ifindex int, fromVM bool, frame []byte) result {
	tb.Helper()
	f, advance := numberTCP(ifindex, fromVM, frame)
	r := send(tb, l, ifindex, fromVM, f)
	if r.ret == tcOK {
		st, _ := ctOf(&r.pkt)
		advance(st)
	}
	return r
}

// tcpSides is the next sequence number of a connection's VM side [0] and
// peer side [1], per interface and ports (VM's, peer's).
var tcpSides = map[[3]uint32]*[2]uint32{}

// Initial sequence numbers of the VM and of the peer.
var tcpISN = [2]uint32{1000, 7000}

// numberTCP numbers an IPv4 TCP frame of a conversation as the two TCP
// ends would, for conntrack-lite's window tracking: a SYN or SYN-ACK
// carries its side's initial sequence number, other segments the side's
// next one, and every segment with ACK acknowledges the other side's
// next. advance, given the state the passed frame was reported in, moves
// the sender's next sequence on (a SYN or SYN-ACK only when it opened
// the flow: NEW, or the answer). Other frames are returned as they are.
func numberTCP(ifindex int, fromVM bool, frame []byte) ([]byte, func(uint8)) {
	const ip, tcp = 14, 14 + 20
	if len(frame) < tcp+20 || frame[ip+9] != 6 || frame[ip]>>4 != 4 {
		return frame, func(uint8) {}
	}
	f := append([]byte(nil), frame...)
	side := 1
	vmPort, peerPort := binary.BigEndian.Uint16(f[tcp+2:]), binary.BigEndian.Uint16(f[tcp:])
	if fromVM {
		side = 0
		vmPort, peerPort = peerPort, vmPort
	}
	k := [3]uint32{uint32(ifindex), uint32(vmPort), uint32(peerPort)}
	n := tcpSides[k]
	if n == nil {
		n = &[2]uint32{tcpISN[0], tcpISN[1]}
		tcpSides[k] = n
	}
	flags := f[tcp+13]
	seq := n[side]
	if flags&0x02 != 0 {
		seq = tcpISN[side]
	}
	binary.BigEndian.PutUint32(f[tcp+4:], seq)
	binary.BigEndian.PutUint32(f[tcp+8:], n[1-side])
	data := uint32(binary.BigEndian.Uint16(f[ip+2:])) - 20 - uint32(f[tcp+12]>>4)*4
	return f, func(state uint8) {
		switch {
		case flags&0x02 == 0:
			n[side] = seq + data + uint32(flags&0x01)
		case flags&0x10 != 0 || state == maps.CTNew:
			n[side] = seq + 1 + data
		}
	}
}

func checkStep(t *testing.T, i int, s step, r result) {
	t.Helper()
	want := uint32(tcShot)
	if s.pass {
		want = tcOK
	}
	if r.ret != want {
		t.Errorf("step %d %s: TC verdict %d, want %d (trace %+v)", i, s.name, r.ret, want, r.trace)
	}
	st, dir := ctOf(&r.pkt)
	if st != s.state || dir != s.dir {
		t.Errorf("step %d %s: ctstate %#x ctdir %d, want %#x %d", i, s.name, st, dir, s.state, s.dir)
	}
}

func ctOf(p *maps.Pkt) (state, dir uint8) {
	if p.Has(maps.FCTState) {
		state = uint8(p.Val[maps.FCTState][1])
	}
	if p.Has(maps.FCTDir) {
		dir = uint8(p.Val[maps.FCTDir][1])
	}
	return state, dir
}

// flowsOf returns ifindex's flows in l's table.
func flowsOf(tb testing.TB, l *Loader, ifindex int) []Flow {
	tb.Helper()
	all, err := l.Conntrack()
	if err != nil {
		tb.Fatal(err)
	}
	var out []Flow
	for _, f := range all {
		if f.Key.Ifindex == uint32(ifindex) {
			out = append(out, f)
		}
	}
	return out
}

const (
	sNEW = maps.CTNew
	sEST = maps.CTEstablished
	sREL = maps.CTRelated
	sINV = maps.CTInvalid
	dORI = maps.CTDirOriginal
	dREP = maps.CTDirReply
)

// ---- Tests ----

func TestConntrackUDP(t *testing.T) {
	l, store := testLoader(t)
	ifindex := bindProgram(t, store, statefulProgram())
	runSteps(t, l, ifindex, []step{
		{"unsolicited answer", false, udpFrame(t, false, 53, 4000), false, sNEW, dORI},
		{"query", true, udpFrame(t, true, 4000, 53), true, sNEW, dORI},
		{"query again, no answer yet", true, udpFrame(t, true, 4000, 53), true, sNEW, dORI},
		{"answer", false, udpFrame(t, false, 53, 4000), true, sEST, dREP},
		{"query after the answer", true, udpFrame(t, true, 4000, 53), true, sEST, dORI},
		{"another port", false, udpFrame(t, false, 53, 4001), false, sNEW, dORI},
		{"dropped query", true, udpFrame(t, true, 4002, 54), false, sNEW, dORI},
		{"answer to the dropped query", false, udpFrame(t, false, 54, 4002), false, sNEW, dORI},
	})
	fl := flowsOf(t, l, ifindex)
	if len(fl) != 1 {
		t.Fatalf("%d flows, want 1 (only passed frames create flows): %+v", len(fl), fl)
	}
	k, v := fl[0].Key, fl[0].Val
	if k.Proto != 17 || k.Sport != 4000 || k.Dport != 53 || k.Src != u(ipVMv) || k.Dst != u(ipGWv) || v.ODir != maps.DirOut {
		t.Errorf("flow %+v %+v: want the VM's query orientation", k, v)
	}
	if v.Flags&maps.CTFSeenReply == 0 {
		t.Errorf("flow flags %#x: no SEEN_REPLY", v.Flags)
	}
	if left := time.Duration(v.Expires-MonotonicNow()) * time.Nanosecond; left <= 100*time.Second || left > 120*time.Second {
		t.Errorf("flow expires in %v, want the UDP stream timeout (120s)", left)
	}
}

func TestConntrackTCP(t *testing.T) {
	l, store := testLoader(t)
	ifindex := bindProgram(t, store, statefulProgram())
	runSteps(t, l, ifindex, []step{
		{"VM opens tcp out", true, tcpFrame(t, true, 5000, 80, "S"), false, sNEW, dORI},
		{"SYN in", false, tcpFrame(t, false, 33000, 22, "S"), true, sNEW, dORI},
		{"SYN retransmitted", false, tcpFrame(t, false, 33000, 22, "S"), true, sNEW, dORI},
		{"SYN-ACK out", true, tcpFrame(t, true, 22, 33000, "SA"), true, sEST, dREP},
		{"ACK in", false, tcpFrame(t, false, 33000, 22, "A"), true, sEST, dORI},
		{"data out", true, tcpFrame(t, true, 22, 33000, "PA"), true, sEST, dREP},
		{"SYN in, established (ignored)", false, tcpFrame(t, false, 33000, 22, "S"), true, sEST, dORI},
		{"SYN out, reply direction", true, tcpFrame(t, true, 22, 33000, "S"), false, sINV, 0},
		{"SYN+FIN", false, tcpFrame(t, false, 33000, 22, "SF"), false, sINV, 0},
		{"no flags", false, tcpFrame(t, false, 33000, 22, ""), false, sINV, 0},
		{"FIN in", false, tcpFrame(t, false, 33000, 22, "FA"), true, sEST, dORI},
	})
	fl := flowsOf(t, l, ifindex)
	if len(fl) != 1 || fl[0].Val.State != maps.TCPFinWait || fl[0].Val.Flags&maps.CTFAssured == 0 {
		t.Fatalf("flows %+v: want one assured flow in FIN_WAIT", fl)
	}
	runSteps(t, l, ifindex, []step{
		{"FIN out", true, tcpFrame(t, true, 22, 33000, "FA"), true, sEST, dREP},
		{"last ACK in", false, tcpFrame(t, false, 33000, 22, "A"), true, sEST, dORI},
	})
	if fl := flowsOf(t, l, ifindex); len(fl) != 1 || fl[0].Val.State != maps.TCPTimeWait {
		t.Fatalf("flows %+v: want TIME_WAIT", fl)
	}
	runSteps(t, l, ifindex, []step{
		{"SYN reopens", false, tcpFrame(t, false, 33000, 22, "S"), true, sNEW, dORI},
		{"SYN-ACK", true, tcpFrame(t, true, 22, 33000, "SA"), true, sEST, dREP},
		{"RST out", true, tcpFrame(t, true, 22, 33000, "R"), true, sEST, dREP},
	})
	if fl := flowsOf(t, l, ifindex); len(fl) != 1 || fl[0].Val.State != maps.TCPClose {
		t.Fatalf("flows %+v: want CLOSE", fl)
	}
	if left := time.Duration(flowsOf(t, l, ifindex)[0].Val.Expires - MonotonicNow()); left > 10*time.Second {
		t.Errorf("closed flow expires in %v, want at most 10s", left)
	}
}

// TestConntrackTCPInvalid pins how frames without a flow are classified:
// nf_conntrack_tcp_loose=1 (Linux's default) picks up a connection from
// any ACK; every other frame without a SYN is INVALID.
func TestConntrackTCPInvalid(t *testing.T) {
	l, store := testLoader(t)
	ifindex := bindProgram(t, store, statefulProgram())
	runSteps(t, l, ifindex, []step{
		{"FIN without flow", false, tcpFrame(t, false, 33001, 22, "FA"), false, sINV, 0},
		{"RST without flow", false, tcpFrame(t, false, 33001, 22, "R"), false, sINV, 0},
		{"SYN-ACK without flow", false, tcpFrame(t, false, 33001, 22, "SA"), false, sINV, 0},
		{"ACK of the VM without flow", true, tcpFrame(t, true, 22, 33001, "A"), false, sNEW, dORI},
		{"mid-stream ACK in: picked up", false, tcpFrame(t, false, 33001, 22, "PA"), true, sNEW, dORI},
		{"the VM answers", true, tcpFrame(t, true, 22, 33001, "PA"), true, sEST, dREP},
		{"and the peer goes on", false, tcpFrame(t, false, 33001, 22, "A"), true, sEST, dORI},
		{"ACK to a SYN_SENT flow", false, tcpFrame(t, false, 33002, 22, "S"), true, sNEW, dORI},
		// nf_conntrack ignores it (sIG): the flow stays, the frame is
		// ESTABLISHED/REPLY.
		{"reply ACK before the SYN-ACK", true, tcpFrame(t, true, 22, 33002, "A"), true, sEST, dREP},
	})
	if fl := flowsOf(t, l, ifindex); len(fl) != 2 {
		t.Errorf("%d flows, want 2 (INVALID frames create none)", len(fl))
	}
}

func TestConntrackICMP(t *testing.T) {
	l, store := testLoader(t)
	ifindex := bindProgram(t, store, statefulProgram())
	dns := udpFrame(t, true, 4100, 53)
	unknown := udpFrame(t, true, 4101, 53)
	ping := icmpFrame(t, true, 8, 77, nil)
	runSteps(t, l, ifindex, []step{
		{"ping in", false, icmpFrame(t, false, 8, 77, nil), false, sNEW, dORI},
		{"unsolicited echo reply", false, icmpFrame(t, false, 0, 77, nil), false, sINV, 0},
		{"ping out", true, ping, true, sNEW, dORI},
		{"echo reply", false, icmpFrame(t, false, 0, 77, nil), true, sEST, dREP},
		{"next ping out", true, icmpFrame(t, true, 8, 77, nil), true, sEST, dORI},
		{"echo reply, other id", false, icmpFrame(t, false, 0, 78, nil), false, sINV, 0},
		{"peer's ping with the same id", false, icmpFrame(t, false, 8, 77, nil), false, sNEW, dORI},
		{"router advertisement", false, icmpFrame(t, false, 9, 0, nil), false, sINV, 0},
		{"dns query", true, dns, true, sNEW, dORI},
		{"port unreachable quoting it", false, icmpFrame(t, false, 3, 0, quoted(dns)), false, sREL, dREP},
		{"unreachable quoting an unknown flow", false, icmpFrame(t, false, 3, 0, quoted(unknown)), false, sINV, 0},
		{"time exceeded quoting the ping", false, icmpFrame(t, false, 11, 0, quoted(ping)), false, sREL, dREP},
	})
	// A quoted packet the error does not go back to is INVALID
	// (nf_conntrack_inet_error's outer/inner address check).
	other := icmpFrame(t, false, 3, 0, quoted(dns))
	copy(other[14+16:14+20], []byte{10, 0, 0, 9}) // outer destination
	runSteps(t, l, ifindex, []step{{"error to someone else", false, other, false, sINV, 0}})
}

func TestConntrackICMPv6(t *testing.T) {
	l, store := testLoader(t)
	var s [2][2][]maps.Rule
	s[maps.DirIn][maps.StageL34] = []maps.Rule{match(maps.ActDrop, eq(maps.FL3, 6), ctState(maps.CTNew|maps.CTEstablished|maps.CTRelated|maps.CTInvalid))}
	ifindex := bindProgram(t, store, s)
	ns := frame(t, &layers.Ethernet{SrcMAC: macGW, DstMAC: macVM, EthernetType: layers.EthernetTypeIPv6},
		&layers.IPv6{Version: 6, HopLimit: 255, NextHeader: layers.IPProtocolICMPv6, SrcIP: ip6GW, DstIP: ip6VM},
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(135, 0)}, payload(20))
	echo := frame(t, &layers.Ethernet{SrcMAC: macGW, DstMAC: macVM, EthernetType: layers.EthernetTypeIPv6},
		&layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolICMPv6, SrcIP: ip6GW, DstIP: ip6VM},
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}, payload(8))
	runSteps(t, l, ifindex, []step{
		{"neighbour solicitation: untracked", false, ns, true, maps.CTUntracked, 0},
		{"echo request: NEW", false, echo, false, sNEW, dORI},
	})
}

// TestConntrackIPv6NoNextHeader checks IPv6 packets whose header chain
// ends in "no next header" (59), directly or after an authentication
// header: nf_conntrack's ipv6_skip_exthdr finds no protocol in them, so
// they get no entry and are INVALID, twice in a row; AH before a real
// protocol is skipped and the flow tracked.
func TestConntrackIPv6NoNextHeader(t *testing.T) {
	l, store := testLoader(t)
	var s [2][2][]maps.Rule
	s[maps.DirOut][maps.StageL34] = []maps.Rule{
		match(maps.ActAccept, eq(maps.FL3, 6), ctState(newEst)),
		match(maps.ActDrop, eq(maps.FL3, 6)),
	}
	ifindex := bindProgram(t, store, s)
	ip6 := func(next layers.IPProtocol) *layers.IPv6 {
		return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next, SrcIP: ip6VM, DstIP: ip6GW}
	}
	e6 := &layers.Ethernet{SrcMAC: macVM, DstMAC: macGW, EthernetType: layers.EthernetTypeIPv6}
	// An authentication header (4-byte ICV) naming next header nh.
	ah := func(nh byte) gopacket.Payload {
		return gopacket.Payload([]byte{nh, 2, 0, 0, 0, 0, 0x30, 0, 0, 0, 0, 1, 0, 0, 0, 0})
	}
	none := frame(t, e6, ip6(layers.IPProtocolNoNextHeader), payload(16))
	ahNone := frame(t, e6, ip6(layers.IPProtocolAH), append(ah(59), payload(16)...))
	udpHdr := []byte{0x9c, 0x40, 0, 53, 0, 16, 0, 0}
	ahUDP := frame(t, e6, ip6(layers.IPProtocolAH), append(append(ah(17), udpHdr...), payload(8)...))
	runSteps(t, l, ifindex, []step{
		{"no next header: INVALID", true, none, false, sINV, 0},
		{"again: still no flow, INVALID", true, none, false, sINV, 0},
		{"AH then no next header: INVALID", true, ahNone, false, sINV, 0},
		{"AH then UDP: NEW", true, ahUDP, true, sNEW, dORI},
		{"AH then UDP again: NEW", true, ahUDP, true, sNEW, dORI},
	})
	if n := len(flowsOf(t, l, ifindex)); n != 1 {
		t.Errorf("%d flows, want the UDP one", n)
	}
}

// TestConntrackPerInterface runs the same flow on two interfaces: a flow
// is one interface's, overlapping guest addresses never meet.
func TestConntrackPerInterface(t *testing.T) {
	l, store := testLoader(t)
	a := bindProgram(t, store, statefulProgram())
	b := bindProgram(t, store, statefulProgram())
	runSteps(t, l, a, []step{{"query on a", true, udpFrame(t, true, 4200, 53), true, sNEW, dORI}})
	runSteps(t, l, b, []step{{"answer on b", false, udpFrame(t, false, 53, 4200), false, sNEW, dORI}})
	runSteps(t, l, a, []step{{"answer on a", false, udpFrame(t, false, 53, 4200), true, sEST, dREP}})
}

func TestConntrackFlushAndStats(t *testing.T) {
	l, store := testLoader(t)
	ifindex := bindProgram(t, store, statefulProgram())
	before, err := l.ConntrackStats()
	if err != nil {
		t.Fatal(err)
	}
	runSteps(t, l, ifindex, []step{{"query", true, udpFrame(t, true, 4300, 53), true, sNEW, dORI}})
	after, err := l.ConntrackStats()
	if err != nil {
		t.Fatal(err)
	}
	if after.Inserts != before.Inserts+1 || after.Capacity != maps.CTDefaultSize || after.Entries < 1 {
		t.Errorf("stats %+v after one new flow, before %+v", after, before)
	}
	if err := l.FlushConntrack(); err != nil {
		t.Fatal(err)
	}
	if fl, _ := l.Conntrack(); len(fl) != 0 {
		t.Errorf("%d flows after flush", len(fl))
	}
	runSteps(t, l, ifindex, []step{{"answer after flush", false, udpFrame(t, false, 53, 4300), false, sNEW, dORI}})
}

// privateLoader loads a classifier of its own with opts (tracing on).
func privateLoader(tb testing.TB, opts Options) (*Loader, *maps.Store) {
	tb.Helper()
	testLoader(tb) // privileges
	opts.PinDir = filepath.Join(privtest.BPFFS, netenv.Name("nwbpfc"))
	opts.Trace = true
	l, err := Load(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		l.Close()
		os.RemoveAll(opts.PinDir)
	})
	store, err := maps.NewStore(l.Maps(), maps.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return l, store
}

// TestConntrackExpiry uses short configured timeouts: an expired flow is
// absent for the next frame, and GC removes expired flows only.
func TestConntrackExpiry(t *testing.T) {
	l, store := privateLoader(t, Options{ConntrackTimeouts: map[maps.CTTimeout]time.Duration{
		maps.CTTUDP: 200 * time.Millisecond, maps.CTTUDPStream: 200 * time.Millisecond,
	}})
	ifindex := bindProgram(t, store, statefulProgram())
	runSteps(t, l, ifindex, []step{
		{"query", true, udpFrame(t, true, 4400, 53), true, sNEW, dORI},
		{"answer in time", false, udpFrame(t, false, 53, 4400), true, sEST, dREP},
		{"tcp SYN in", false, tcpFrame(t, false, 33100, 22, "S"), true, sNEW, dORI},
	})
	time.Sleep(300 * time.Millisecond)
	runSteps(t, l, ifindex, []step{{"answer too late", false, udpFrame(t, false, 53, 4400), false, sNEW, dORI}})
	if n := len(flowsOf(t, l, ifindex)); n != 2 {
		t.Fatalf("%d flows before GC, want 2 (the expired one stays until GC)", n)
	}
	n, err := l.GCConntrack(MonotonicNow())
	if err != nil || n != 1 {
		t.Fatalf("GC deleted %d (%v), want the expired UDP flow only", n, err)
	}
	fl := flowsOf(t, l, ifindex)
	if len(fl) != 1 || fl[0].Key.Proto != 6 {
		t.Fatalf("flows after GC %+v, want the TCP one", fl)
	}
	// GC with a later clock: the SYN_SENT flow's 120s are over then.
	if n, err := l.GCConntrack(MonotonicNow() + uint64(121*time.Second)); err != nil || n != 1 {
		t.Fatalf("GC in 121s deleted %d (%v), want 1", n, err)
	}
	if st, err := l.ConntrackStats(); err != nil || st.Entries != 0 {
		t.Errorf("stats %+v (%v), want no entries", st, err)
	}
}

func TestConntrackOptions(t *testing.T) {
	testLoader(t)
	dir := filepath.Join(privtest.BPFFS, netenv.Name("nwbpfo"))
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, bad := range []Options{
		{PinDir: dir, ConntrackSize: -1},
		{PinDir: dir, ConntrackSize: MaxConntrackSize + 1},
		{PinDir: dir, ConntrackTimeouts: map[maps.CTTimeout]time.Duration{maps.CTTUDP: 0}},
		{PinDir: dir, ConntrackTimeouts: map[maps.CTTimeout]time.Duration{maps.CTTMax: time.Second}},
	} {
		if l, err := Load(bad); err == nil {
			l.Close()
			t.Errorf("Load(%+v) succeeded", bad)
		}
	}
	l, err := Load(Options{PinDir: dir, ConntrackSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if l, err := Load(Options{PinDir: dir, ConntrackSize: 2000}); err == nil {
		l.Close()
		t.Errorf("a pinned table of another size was adopted")
	}
	l, err = Load(Options{PinDir: dir, ConntrackSize: 1000})
	if err != nil {
		t.Fatalf("same size: %v", err)
	}
	l.Close()
}

// TestConntrackFull fills a small table: new flows always get in, the
// least recently used ones are evicted (their answers are then NEW and
// dropped), the table never holds more than its size, and flows in use
// survive.
func TestConntrackFull(t *testing.T) {
	const size = 256
	l, store := privateLoader(t, Options{ConntrackSize: size})
	ifindex := bindProgram(t, store, statefulProgram())
	// One CPU: the LRU's per-CPU free lists make eviction order exact
	// only per CPU.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var orig, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &orig); err != nil {
		t.Fatal(err)
	}
	set.Set(0)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	defer unix.SchedSetaffinity(0, &orig)
	keep := udpFrame(t, true, 999, 53)
	runSteps(t, l, ifindex, []step{{"kept flow", true, keep, true, sNEW, dORI}})
	for i := range 4 * size {
		r := send(t, l, ifindex, true, udpFrame(t, true, uint16(10000+i), 53))
		if r.ret != tcOK {
			t.Fatalf("new flow %d dropped (trace %+v)", i, r.trace)
		}
		if i%8 == 0 { // the kept flow is in use
			send(t, l, ifindex, true, keep)
		}
	}
	st, err := l.ConntrackStats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Capacity != size || st.Entries > size || st.InsertFailed != 0 {
		t.Errorf("stats %+v: want at most %d entries and no failed insert", st, size)
	}
	runSteps(t, l, ifindex, []step{
		{"answer to the newest flow", false, udpFrame(t, false, 53, uint16(10000+4*size-1)), true, sEST, dREP},
		{"answer to the kept flow", false, udpFrame(t, false, 53, 999), true, sEST, dREP},
		{"answer to the oldest flow: evicted", false, udpFrame(t, false, 53, 10000), false, sNEW, dORI},
	})
}

// invariantProgram accepts in tcp/22 and its replies, like the stateful
// program, and drops the rest: flow-invariant fields only.
func invariantProgram() [2][2][]maps.Rule { return statefulProgram() }

func TestConntrackFastPath(t *testing.T) {
	l, store := testLoader(t)
	prog := invariantProgram()
	if !maps.FlowInvariant(&prog) {
		t.Fatal("the stateful program is not flow-invariant")
	}
	ifindex := bindProgram(t, store, prog)
	open := []step{
		{"SYN in", false, tcpFrame(t, false, 34000, 22, "S"), true, sNEW, dORI},
		{"SYN-ACK out", true, tcpFrame(t, true, 22, 34000, "SA"), true, sEST, dREP},
		{"ACK in", false, tcpFrame(t, false, 34000, 22, "A"), true, sEST, dORI},
	}
	runSteps(t, l, ifindex, open)
	b, _ := store.Binding(uint32(ifindex))
	rs, _ := store.Ruleset(b.Ruleset)
	inAccept := rs.Start[maps.DirIn][maps.StageL34]  // entry 0: accept in tcp/22
	outReply := rs.Start[maps.DirOut][maps.StageL34] // entry 0: its reply
	inHits := ruleCount(t, l, inAccept).Packets
	fast := func(name string, fromVM bool, f []byte, wantFast uint8, entry uint32) {
		t.Helper()
		r := sendNumbered(t, l, ifindex, fromVM, f)
		if r.ret != tcOK || r.trace.Fast != wantFast || r.trace.Entry != entry {
			t.Errorf("%s: verdict %d fast %d entry %d, want pass fast %d entry %d", name, r.ret, r.trace.Fast, r.trace.Entry, wantFast, entry)
		}
	}
	// The first ESTABLISHED frame of each direction (the SYN-ACK out, the
	// ACK in) ran the stage; the next ones take the cache.
	fast("data out, cached", true, tcpFrame(t, true, 22, 34000, "PA"), 1, outReply)
	fast("data in, cached", false, tcpFrame(t, false, 34000, 22, "PA"), 1, inAccept)
	fast("data out, cached", true, tcpFrame(t, true, 22, 34000, "PA"), 1, outReply)
	if got := ruleCount(t, l, inAccept).Packets; got != inHits+1 {
		t.Errorf("accept entry counted %d frames, want %d: cached frames count too", got, inHits+1)
	}
	// The same program again (a new binding value): re-evaluated once.
	if err := store.Bind(uint32(ifindex), maps.BindRequest{ID: uint32(ifindex), Stages: prog}); err != nil {
		t.Fatal(err)
	}
	fast("after rebind, evaluated", false, tcpFrame(t, false, 34000, 22, "PA"), 0, inAccept)
	fast("then cached", false, tcpFrame(t, false, 34000, 22, "PA"), 1, inAccept)
	// The accept removed: the established flow is cut, as iptables
	// re-evaluates every packet.
	cut := invariantProgram()
	cut[maps.DirIn][maps.StageL34] = cut[maps.DirIn][maps.StageL34][1:]
	if err := store.Bind(uint32(ifindex), maps.BindRequest{ID: uint32(ifindex), Stages: cut}); err != nil {
		t.Fatal(err)
	}
	runSteps(t, l, ifindex, []step{
		{"data in after the accept is gone", false, tcpFrame(t, false, 34000, 22, "PA"), false, sEST, dORI},
		{"data out still has its reply rule", true, tcpFrame(t, true, 22, 34000, "PA"), true, sEST, dREP},
	})
	// A program that tests TCP flags is never cached.
	flags := invariantProgram()
	flags[maps.DirIn][maps.StageL34] = append([]maps.Rule{match(maps.ActDrop, eq(maps.FL3, 4), anybit(maps.FTCPFlags, 0x01))},
		flags[maps.DirIn][maps.StageL34]...)
	if maps.FlowInvariant(&flags) {
		t.Fatal("a TCP flags condition is flow-invariant")
	}
	if err := store.Bind(uint32(ifindex), maps.BindRequest{ID: uint32(ifindex), Stages: flags}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		r := sendNumbered(t, l, ifindex, false, tcpFrame(t, false, 34000, 22, "PA"))
		if r.ret != tcOK || r.trace.Fast != 0 {
			t.Errorf("frame %d under a flags program: verdict %d fast %d, want pass, evaluated", i, r.ret, r.trace.Fast)
		}
	}
	r := sendNumbered(t, l, ifindex, false, tcpFrame(t, false, 34000, 22, "FA"))
	if r.ret != tcShot {
		t.Errorf("FIN under a program dropping FIN: verdict %d, want drop", r.ret)
	}
}

// TestFlowInvariant pins which conditions allow the cache.
func TestFlowInvariant(t *testing.T) {
	for _, c := range []struct {
		name string
		cond maps.Cond
		want bool
	}{
		{"ports", eq(maps.FDport, 22), true},
		{"addresses", eq128(maps.FIP6Src, ip6v(ip6VM)), true},
		{"state", ctState(maps.CTNew), true},
		{"icmp type", eq(maps.FICMPType, 8), true},
		{"tcp flags", anybit(maps.FTCPFlags, 2), false},
		{"tcp option", tcpopt(2), false},
		{"dscp", eq(maps.FDSCP, 10), false},
		{"source mac", eq(maps.FSrcMAC, macVMv), false},
		{"fragment", eq(maps.FFrag, 0), false},
	} {
		var s [2][2][]maps.Rule
		s[maps.DirIn][maps.StageL34] = []maps.Rule{match(maps.ActAccept, c.cond)}
		s[maps.DirOut][maps.StageL2] = []maps.Rule{match(maps.ActDrop, eq(maps.FSrcMAC, 1))} // L2 never matters
		if got := maps.FlowInvariant(&s); got != c.want {
			t.Errorf("%s: FlowInvariant %v, want %v", c.name, got, c.want)
		}
	}
}

// far is a - b modulo 2^32, a sequence number far below a.
func far(a, b uint32) uint32 { return a - b }

// tcpSeg is a TCP segment between the VM (port 35000) and the peer's port
// 22 with explicit numbers: flags as tcpFrame, window win, options opts
// and data bytes of payload.
func tcpSeg(tb testing.TB, fromVM bool, flags string, seq, ack uint32, win uint16, opts []layers.TCPOption, data int) []byte {
	sport, dport := uint16(22), uint16(35000)
	if !fromVM {
		sport, dport = dport, sport
	}
	f := tcpFrame(tb, fromVM, sport, dport, flags)
	t := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: seq, Ack: ack, Window: win, Options: opts}
	p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default).Layer(layers.LayerTypeTCP).(*layers.TCP)
	t.SYN, t.ACK, t.FIN, t.RST, t.PSH = p.SYN, p.ACK, p.FIN, p.RST, p.PSH
	return frame(tb, ethDir(fromVM), ipv4(layers.IPProtocolTCP, fromVM), t, payload(data))
}

// TestConntrackTCPWindow pins nf_conntrack's tcp_in_window through
// BPF_PROG_TEST_RUN (tests/conntrack holds the same cases against the
// kernel through libvirt): the peer opens to the VM's port 22 with ISN
// 7000, the VM answers with ISN 1000.
func TestConntrackTCPWindow(t *testing.T) {
	l, store := testLoader(t)
	wscale := func(s uint8) []layers.TCPOption {
		return []layers.TCPOption{{OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{s}}}
	}
	sack := func(l, r uint32) []layers.TCPOption {
		return []layers.TCPOption{{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindSACK, OptionLength: 10, OptionData: binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, l), r)}}
	}
	sackPerm := []layers.TCPOption{{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
		{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop}}
	const in, out = false, true
	open := func(synOpts, synackOpts []layers.TCPOption, synackWin uint16) []step {
		return []step{
			{"SYN in", in, tcpSeg(t, in, "S", 7000, 0, 64240, synOpts, 0), true, sNEW, dORI},
			{"SYN-ACK out", out, tcpSeg(t, out, "SA", 1000, 7001, synackWin, synackOpts, 0), true, sEST, dREP},
			{"ACK in", in, tcpSeg(t, in, "A", 7001, 1001, 64240, nil, 0), true, sEST, dORI},
		}
	}
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{"SYN-ACK acknowledging unsent data, then the right one", []step{
			{"SYN in", in, tcpSeg(t, in, "S", 7000, 0, 64240, nil, 0), true, sNEW, dORI},
			{"SYN-ACK acks 7005", out, tcpSeg(t, out, "SA", 1000, 7005, 64240, nil, 0), false, sINV, 0},
			{"ACK in SYN_SENT", in, tcpSeg(t, in, "A", 7001, 1001, 64240, nil, 0), false, sINV, 0},
			{"SYN-ACK acks 7001", out, tcpSeg(t, out, "SA", 1000, 7001, 64240, nil, 0), true, sEST, dREP},
			{"ACK in", in, tcpSeg(t, in, "A", 7001, 1001, 64240, nil, 0), true, sEST, dORI},
		}},
		{"SYN-ACK acknowledging far below: ignored", []step{
			{"SYN in", in, tcpSeg(t, in, "S", 7000, 0, 64240, nil, 0), true, sNEW, dORI},
			{"SYN-ACK acks 7001-200000", out, tcpSeg(t, out, "SA", 1000, far(7001, 200000), 64240, nil, 0), true, sEST, dREP},
			{"ACK in, still SYN_SENT", in, tcpSeg(t, in, "A", 7001, 1001, 64240, nil, 0), false, sINV, 0},
		}},
		{"ACKs above and below", append(open(nil, nil, 64240),
			step{"ACK of unsent data", out, tcpSeg(t, out, "A", 1001, 7002, 64240, nil, 0), false, sINV, 0},
			step{"ACK far below", out, tcpSeg(t, out, "A", 1001, far(7001, 200000), 64240, nil, 0), true, sEST, dREP},
		)},
		{"data and the window", append(open(nil, nil, 1000),
			step{"peer data within", in, tcpSeg(t, in, "PA", 7001, 1001, 64240, nil, 100), true, sEST, dORI},
			step{"peer data past the window by less than a window", in, tcpSeg(t, in, "PA", 7001+1500, 1001, 64240, nil, 100), true, sEST, dORI},
			step{"peer data far past", in, tcpSeg(t, in, "PA", 7001+200000, 1001, 64240, nil, 100), false, sINV, 0},
			step{"old peer data far below", in, tcpSeg(t, in, "PA", far(7001, 200000), 1001, 64240, nil, 100), true, sEST, dORI},
		)},
		{"window scale both ways", append(open(wscale(7), wscale(7), 512),
			step{"VM window 512<<7", out, tcpSeg(t, out, "A", 1001, 7001, 512, nil, 0), true, sEST, dREP},
			step{"peer data 60000 on", in, tcpSeg(t, in, "PA", 7001+60000, 1001, 64240, nil, 100), true, sEST, dORI},
		)},
		{"window scale one way only", append(open(wscale(7), nil, 512),
			step{"VM window 512", out, tcpSeg(t, out, "A", 1001, 7001, 512, nil, 0), true, sEST, dREP},
			step{"peer data 60000 on", in, tcpSeg(t, in, "PA", 7001+60000, 1001, 64240, nil, 100), false, sINV, 0},
		)},
		{"SACK blocks", append(open(sackPerm, sackPerm, 64240),
			step{"VM data", out, tcpSeg(t, out, "PA", 1001, 7001, 64240, nil, 100), true, sEST, dREP},
			step{"SACK within", in, tcpSeg(t, in, "A", 7001, 1001, 64240, sack(1051, 1101), 0), true, sEST, dORI},
			step{"SACK above", in, tcpSeg(t, in, "A", 7001, 1001, 64240, sack(1101, 1201), 0), false, sINV, 0},
		)},
		{"RST below the acknowledged sequence", append(open(nil, nil, 64240),
			step{"RST out", out, tcpSeg(t, out, "R", 1001-100, 0, 0, nil, 0), false, sINV, 0},
			step{"RST out in sequence", out, tcpSeg(t, out, "R", 1001, 0, 0, nil, 0), true, sEST, dREP},
		)},
		{"RST far past the window", append(open(nil, nil, 64240),
			step{"RST out", out, tcpSeg(t, out, "R", 1001+200000, 0, 0, nil, 0), false, sINV, 0},
		)},
		{"RST answering the SYN removes the flow", []step{
			{"SYN in", in, tcpSeg(t, in, "S", 7000, 0, 64240, nil, 0), true, sNEW, dORI},
			{"RST,ACK out", out, tcpSeg(t, out, "RA", 0, 7001, 0, nil, 0), true, sEST, dREP},
			{"SYN-ACK out: no flow", out, tcpSeg(t, out, "SA", 1000, 7001, 64240, nil, 0), false, sINV, 0},
		}},
		{"picked up mid-stream: liberal", []step{
			{"data in", in, tcpSeg(t, in, "PA", 7001, 1001, 64240, nil, 10), true, sNEW, dORI},
			{"ACK out of nowhere", out, tcpSeg(t, out, "A", 1001+300000, 7001+400000, 64240, nil, 0), true, sEST, dREP},
			{"data in far off", in, tcpSeg(t, in, "PA", 7001+900000, far(1001, 900000), 64240, nil, 10), true, sEST, dORI},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ifindex := bindProgram(t, store, statefulProgram())
			for i, s := range c.steps {
				checkStep(t, i, s, send(t, l, ifindex, s.fromVM, s.frame))
			}
		})
	}
	// The window data of a scaled connection.
	ifindex := bindProgram(t, store, statefulProgram())
	for i, s := range open(wscale(7), wscale(5), 512) {
		checkStep(t, i, s, send(t, l, ifindex, s.fromVM, s.frame))
	}
	fl := flowsOf(t, l, ifindex)
	if len(fl) != 1 {
		t.Fatalf("%d flows, want 1", len(fl))
	}
	w := fl[0].Val.TCP
	if w.Seen[0].End != 7001 || w.Seen[0].Scale != 7 || w.Seen[1].End != 1001 || w.Seen[1].Scale != 5 ||
		w.Seen[1].MaxWin != 512 || w.Seen[0].Flags&maps.CTWWScale == 0 || w.Seen[0].MaxAck != 1001 {
		t.Errorf("window data %+v", w)
	}
}
