// SPDX-License-Identifier: Apache-2.0

package maps

// Mirrors of the structs and enums bpf/nwbpf.h gained with the classifier:
// counters, the trace record, fragment tracking and the parsed frame.

// Verdict is the outcome of a frame or a stage (C enum nwf_verdict).
type Verdict uint8

// Verdicts.
const (
	VerdictPass   Verdict = 0
	VerdictDrop   Verdict = 1
	VerdictReject Verdict = 2 // L3/L4 reject: ICMP error, frame dropped
	VerdictError  Verdict = 3 // malformed program: fail closed
)

var verdictNames = [...]string{"pass", "drop", "reject", "error"}

// String names the verdict.
func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "verdict?"
}

// DropReason says why a frame was dropped (C enum nwf_drop_reason).
type DropReason uint8

// Drop reasons.
const (
	DropL2        DropReason = 0 // L2 drop or reject rule
	DropL34       DropReason = 1 // L3/L4 drop rule
	DropReject    DropReason = 2 // L3/L4 reject rule
	DropFragment  DropReason = 3 // non-first fragment, first unseen or dropped
	DropMalformed DropReason = 4 // malformed program
	DropNoRuleset DropReason = 5 // binding names a missing ruleset
	DropInternal  DropReason = 6 // per-CPU scratch missing
	DropConntrack DropReason = 7 // no room for a passed frame's new flow
	DropReasonMax DropReason = 8
)

var dropReasonNames = [...]string{"l2", "l34", "reject", "fragment", "malformed", "no-ruleset", "internal", "conntrack"}

// String names the reason, as a bounded metrics label.
func (r DropReason) String() string {
	if int(r) < len(dropReasonNames) {
		return dropReasonNames[r]
	}
	return "reason?"
}

// DropStatsKey is the nwf_drop_stats index of a reason and direction.
func DropStatsKey(r DropReason, d Dir) uint32 { return uint32(r)*2 + uint32(d) }

// NoEntry marks "no entry decided" in Trace.Index and Trace.Entry
// (C NWF_NO_ENTRY).
const NoEntry = 0xffffffff

// FragTimeoutNS is how long a first fragment's verdict is kept
// (C NWF_FRAG_TIMEOUT_NS).
const FragTimeoutNS = 30_000_000_000

// Fragment facts of Pkt.Frag (C NWF_PF_*).
const (
	PFFirst = 0x01 // first fragment of a fragmented datagram
	PFLater = 0x02 // non-first fragment
)

// Count mirrors struct nwf_count: the per-CPU value of nwf_rule_stats.
type Count struct {
	Packets uint64
	Bytes   uint64
}

// DropCount mirrors struct nwf_drop_count: the per-CPU value of
// nwf_drop_stats.
type DropCount struct {
	Packets       uint64
	Bytes         uint64
	ShadowPackets uint64
	ShadowBytes   uint64
}

// Trace mirrors struct nwf_trace: a CPU's last decision, recorded when the
// classifier is loaded with tracing on.
type Trace struct {
	Seq     uint64
	Binding uint32
	Index   uint32 // deciding entry within its stage, or NoEntry
	Entry   uint32 // the same as an nwf_rules index, or NoEntry
	Rule    uint32 // deciding entry's Rule.ID
	Steps   uint32
	Dir     Dir
	Stage   Stage
	Action  Action
	Verdict Verdict
	Dflt    uint8 // 1: no rule decided
	Reason  DropReason
	Frag    uint8 // 1: the L3/L4 verdict came from nwf_frags
	Fast    uint8 // 1: the L3/L4 verdict came from the flow's cache
	_       [4]uint8
}

// FragKey mirrors struct nwf_frag_key.
type FragKey struct {
	Ifindex uint32
	Dir     Dir
	L3      uint8
	Proto   uint8
	_       uint8
	ID      uint32
	_       uint32
	Src     U128
	Dst     U128
}

// FragVal mirrors struct nwf_frag_val.
type FragVal struct {
	Expires uint64
	Verdict Verdict
	_       [7]uint8
}

// Pkt mirrors struct nwf_pkt: the parsed frame in the per-CPU scratch.
type Pkt struct {
	Present   uint64
	TCPOpt    [4]uint64
	Val       [FieldMax]U128
	TCPOptOK  uint8
	Frag      uint8
	FragProto uint8
	_         uint8
	FragID    uint32
	Len       uint32
	L4Off     uint32 // L4 header offset in the frame, 0 when not parsed
}

// Has reports whether field f is present.
func (p *Pkt) Has(f Field) bool { return f < FieldMax && p.Present&(1<<f) != 0 }

// HasTCPOption reports whether the TCP option list holds kind.
func (p *Pkt) HasTCPOption(kind uint8) bool { return p.TCPOpt[kind/64]&(1<<(kind%64)) != 0 }
