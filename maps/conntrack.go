// SPDX-License-Identifier: Apache-2.0

package maps

import "time"

// Mirrors of the conntrack-lite part of bpf/nwbpf.h, and the control
// plane's half of the established-flow fast path (FlowInvariant).

// BFCTCache is the nwf_binding.flags bit (C NWF_BF_CT_CACHE) saying that
// the binding's L3/L4 stages depend only on flow-invariant fields, so an
// ESTABLISHED flow's L3/L4 verdict may be cached per direction.
const BFCTCache = 0x01

// CTDefaultSize is nwf_ct2's capacity unless configured at load (C
// NWF_CT_DEFAULT_SIZE).
const CTDefaultSize = 65536

// TCPState is a tracked TCP connection's state, numbered as nf_conntrack's
// (C enum nwf_tcp_state).
type TCPState uint8

// TCP states.
const (
	TCPNone        TCPState = 0 // not TCP
	TCPSynSent     TCPState = 1
	TCPSynRecv     TCPState = 2
	TCPEstablished TCPState = 3
	TCPFinWait     TCPState = 4
	TCPCloseWait   TCPState = 5
	TCPLastAck     TCPState = 6
	TCPTimeWait    TCPState = 7
	TCPClose       TCPState = 8
	TCPSynSent2    TCPState = 9
)

var tcpStateNames = [...]string{"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT",
	"CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2"}

// String names the state as conntrack(8) does.
func (s TCPState) String() string {
	if int(s) < len(tcpStateNames) {
		return tcpStateNames[s]
	}
	return "state?"
}

// CTTimeout is a timeout class (C enum nwf_ct_timeout), an index into the
// classifier's nwf_cfg_ct_timeout.
type CTTimeout uint8

// Timeout classes. The TCP ones have the number of their TCPState.
const (
	CTTGeneric        CTTimeout = 0
	CTTTCPSynSent     CTTimeout = 1
	CTTTCPSynRecv     CTTimeout = 2
	CTTTCPEstablished CTTimeout = 3
	CTTTCPFinWait     CTTimeout = 4
	CTTTCPCloseWait   CTTimeout = 5
	CTTTCPLastAck     CTTimeout = 6
	CTTTCPTimeWait    CTTimeout = 7
	CTTTCPClose       CTTimeout = 8
	CTTTCPSynSent2    CTTimeout = 9
	CTTTCPUnack       CTTimeout = 10 // TCP before the flow is assured
	CTTUDP            CTTimeout = 11 // UDP, no reply seen
	CTTUDPStream      CTTimeout = 12 // UDP after a reply
	CTTICMP           CTTimeout = 13 // ICMP and ICMPv6 queries
	CTTMax            CTTimeout = 14
)

var ctTimeoutNames = [...]string{"generic", "tcp_syn_sent", "tcp_syn_recv", "tcp_established",
	"tcp_fin_wait", "tcp_close_wait", "tcp_last_ack", "tcp_time_wait", "tcp_close",
	"tcp_syn_sent2", "tcp_unacknowledged", "udp", "udp_stream", "icmp"}

// String names the class after nf_conntrack's sysctl (nf_conntrack_<name>_timeout).
func (c CTTimeout) String() string {
	if int(c) < len(ctTimeoutNames) {
		return ctTimeoutNames[c]
	}
	return "timeout?"
}

// DefaultCTTimeouts are the classifier's compiled-in timeouts: those of
// nf_conntrack.
var DefaultCTTimeouts = [CTTMax]time.Duration{
	CTTGeneric:        600 * time.Second,
	CTTTCPSynSent:     120 * time.Second,
	CTTTCPSynRecv:     60 * time.Second,
	CTTTCPEstablished: 5 * 24 * time.Hour,
	CTTTCPFinWait:     120 * time.Second,
	CTTTCPCloseWait:   60 * time.Second,
	CTTTCPLastAck:     30 * time.Second,
	CTTTCPTimeWait:    120 * time.Second,
	CTTTCPClose:       10 * time.Second,
	CTTTCPSynSent2:    120 * time.Second,
	CTTTCPUnack:       300 * time.Second,
	CTTUDP:            30 * time.Second,
	CTTUDPStream:      120 * time.Second,
	CTTICMP:           30 * time.Second,
}

// Flow flags (C NWF_CTF_*).
const (
	CTFSeenReply  = 0x01 // a frame of the REPLY direction passed
	CTFAssured    = 0x02 // TCP: established after a reply
	CTFCacheOrig  = 0x10 // CTVal.Cache[0] is valid
	CTFCacheReply = 0x20 // CTVal.Cache[1] is valid
)

// CTKey mirrors struct nwf_ct_key: one flow on one guest interface, in the
// orientation of its first passed frame.
type CTKey struct {
	Ifindex uint32
	L3      uint8
	Proto   uint8
	Sport   uint16 // ICMP queries: the identifier
	Dport   uint16 // ICMP queries: the query type
	_       uint16
	_       uint32
	Src     U128
	Dst     U128
}

// CTVal mirrors struct nwf_ct_val.
type CTVal struct {
	Expires uint64 // CLOCK_MONOTONIC ns after which the entry is void
	Gen     uint64 // Binding.Gen the cache belongs to
	Cache   [2]uint32
	State   TCPState
	Flags   uint8
	ODir    Dir // direction (relative to the VM) of the ORIGINAL frames
	_       [5]uint8
	TCP     CTTCP // TCP window tracking (zero for other protocols)
}

// Window tracking flags of CTSide.Flags and CTTCP.LastFlags (C NWF_CTW_*),
// valued as nf_conntrack's IP_CT_TCP_FLAG_*.
const (
	CTWWScale    = 0x01 // the side's SYN had a window scale option
	CTWSackPerm  = 0x02 // the side's SYN permitted SACK
	CTWCloseInit = 0x04 // the side sent the first FIN
	CTWLiberal   = 0x08 // picked up mid-stream: no window checks
	CTWDataUnack = 0x10 // the side has data not yet acknowledged
	CTWMaxAckSet = 0x20 // MaxAck holds an acknowledgement
	CTWChallenge = 0x40 // LastFlags: a SYN in LAST_ACK may draw a challenge ACK
	CTWSimulOpen = 0x80 // LastFlags: simultaneous open
)

// CTSide mirrors struct nwf_ct_side: one direction of a TCP connection's
// window tracking, as nf_conntrack's ip_ct_tcp_state (td_end, td_maxend,
// td_maxwin, td_maxack, td_scale, flags).
type CTSide struct {
	End    uint32
	MaxEnd uint32
	MaxWin uint32 // 0: the side has not been seen
	MaxAck uint32
	Scale  uint8
	Flags  uint8 // CTW*
	_      [2]uint8
}

// CTTCP mirrors struct nwf_ct_tcp: both sides' windows, by conntrack
// direction, and the last segment nf_conntrack remembers.
type CTTCP struct {
	Seen       [2]CTSide
	LastEnd    uint32
	LastAck    uint32
	LastWin    uint16
	LastIndex  uint8 // flag set: 0 SYN 1 SYN-ACK 2 FIN 3 ACK 4 RST 5 none
	LastDir    uint8 // 0 ORIGINAL, 1 REPLY
	LastWscale uint8
	LastFlags  uint8
	_          [2]uint8
}

// FlowCounter indexes nwf_flow_stats (C enum nwf_flow_counter).
type FlowCounter uint8

// Flow counters.
const (
	FCInsert       FlowCounter = 0 // flows created
	FCInsertFailed FlowCounter = 1 // creations that failed (frame dropped)
	FCFastPath     FlowCounter = 2 // frames whose L3/L4 verdict was cached
	FCMax          FlowCounter = 3
)

// flowInvariant are the fields whose value is the same for every frame of
// an ESTABLISHED flow in one direction: the flow key's, the ethertype and
// L3 version that carry it, the ICMP type and code of a query flow, and
// the connection state and direction themselves (the cache is used for
// ESTABLISHED frames only, whose direction is fixed per cache slot).
var flowInvariant = map[Field]bool{
	FEthProto: true, FL3: true, FIP4Src: true, FIP4Dst: true, FIP6Src: true, FIP6Dst: true,
	FL4Proto: true, FL34Proto: true, FSport: true, FDport: true, FICMPType: true, FICMPCode: true,
	FCTState: true, FCTDir: true,
}

// FlowInvariant reports whether every L3/L4 entry of stages tests only
// flow-invariant fields: then the L3/L4 verdict of one ESTABLISHED frame
// holds for every later frame of its flow and direction while the binding
// stays, and the classifier may skip the stage for them (BFCTCache).
// TCP flags and options, DSCP, the source MAC, fragment facts or any other
// field make the verdict depend on the frame, and disable the cache.
func FlowInvariant(stages *[2][2][]Rule) bool {
	for d := range 2 {
		for _, r := range stages[d][StageL34] {
			if r.NCond > MaxConds {
				return false
			}
			for _, c := range r.Cond[:r.NCond] {
				if c.Op == OpTCPOpt || !flowInvariant[c.Field] {
					return false
				}
			}
		}
	}
	return true
}
