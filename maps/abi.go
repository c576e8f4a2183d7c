// SPDX-License-Identifier: Apache-2.0

package maps

// Limits, mirroring NWF_MAX_* in bpf/nwbpf.h.
const (
	MaxConds     = 16
	MaxStageLen  = 8192
	MaxRules     = 262144
	MaxRulesets  = 4096
	MaxBindings  = 65536
	MaxVidx      = 1048576
	MaxVals      = 1048576
	MaxInstances = 64
)

// Dir is a packet direction relative to the VM (C enum nwf_dir).
type Dir uint8

// Directions.
const (
	DirOut Dir = 0 // sent by the VM
	DirIn  Dir = 1 // sent to the VM
)

// String returns "out" or "in".
func (d Dir) String() string {
	switch d {
	case DirOut:
		return "out"
	case DirIn:
		return "in"
	}
	return "dir?"
}

// Stage is an evaluation stage (C enum nwf_stage).
type Stage uint8

// Stages: L2 is what libvirt puts in ebtables, L34 what it puts in iptables.
const (
	StageL2  Stage = 0
	StageL34 Stage = 1
)

// String returns "l2" or "l34".
func (s Stage) String() string {
	switch s {
	case StageL2:
		return "l2"
	case StageL34:
		return "l34"
	}
	return "stage?"
}

// Hook is the TC hook that carries a VM's outgoing frames (C enum nwf_hook).
type Hook uint8

// Hooks.
const (
	HookIngress Hook = 0 // tap
	HookEgress  Hook = 1 // macvtap
)

// Action is a rule action (C enum nwf_action).
type Action uint8

// Actions.
const (
	ActAccept   Action = 0
	ActDrop     Action = 1
	ActReject   Action = 2
	ActReturn   Action = 3
	ActContinue Action = 4
)

var actionNames = [...]string{"accept", "drop", "reject", "return", "continue"}

// String returns the nwfilter XML name of the action.
func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "action?"
}

// RuleKind is the kind of a program entry (C enum nwf_rule_kind).
type RuleKind uint8

// Entry kinds.
const (
	RKMatch    RuleKind = 0
	RKJump     RuleKind = 1
	RKChainEnd RuleKind = 2
)

// String names the entry kind.
func (k RuleKind) String() string {
	switch k {
	case RKMatch:
		return "match"
	case RKJump:
		return "jump"
	case RKChainEnd:
		return "end"
	}
	return "kind?"
}

// Field is a packet field a condition tests (C enum nwf_field). The
// presence rules of each field are documented in bpf/nwbpf.h.
type Field uint8

// Fields.
const (
	FNone            Field = 0
	FSrcMAC          Field = 1
	FDstMAC          Field = 2
	FEthProto        Field = 3
	FVlanID          Field = 4
	FVlanEncap       Field = 5
	FStpType         Field = 6
	FStpFlags        Field = 7
	FStpRootPrio     Field = 8
	FStpRootAddr     Field = 9
	FStpRootCost     Field = 10
	FStpSenderPrio   Field = 11
	FStpSenderAddr   Field = 12
	FStpPort         Field = 13
	FStpMsgAge       Field = 14
	FStpMaxAge       Field = 15
	FStpHelloTime    Field = 16
	FStpForwardDelay Field = 17
	FArpHType        Field = 18
	FArpPType        Field = 19
	FArpOpcode       Field = 20
	FArpSHA          Field = 21
	FArpTHA          Field = 22
	FArpSPA          Field = 23
	FArpTPA          Field = 24
	FArpGrat         Field = 25
	FL3              Field = 26
	FIP4Src          Field = 27
	FIP4Dst          Field = 28
	FIP6Src          Field = 29
	FIP6Dst          Field = 30
	FL4Proto         Field = 31
	FIPTos           Field = 32
	FDSCP            Field = 33
	FSport           Field = 34
	FDport           Field = 35
	FTCPFlags        Field = 36
	FICMPType        Field = 37
	FICMPCode        Field = 38
	FFrag            Field = 39
	FCTState         Field = 40
	FCTDir           Field = 41
	FL34Proto        Field = 42
	FieldMax         Field = 43
)

type fieldInfo struct {
	name  string
	width int
}

var fieldInfos = [FieldMax]fieldInfo{
	FNone:            {"none", 0},
	FSrcMAC:          {"srcmac", 6},
	FDstMAC:          {"dstmac", 6},
	FEthProto:        {"ethproto", 2},
	FVlanID:          {"vlan-id", 2},
	FVlanEncap:       {"vlan-encap", 2},
	FStpType:         {"stp-type", 1},
	FStpFlags:        {"stp-flags", 1},
	FStpRootPrio:     {"stp-root-prio", 2},
	FStpRootAddr:     {"stp-root-addr", 6},
	FStpRootCost:     {"stp-root-cost", 4},
	FStpSenderPrio:   {"stp-sender-prio", 2},
	FStpSenderAddr:   {"stp-sender-addr", 6},
	FStpPort:         {"stp-port", 2},
	FStpMsgAge:       {"stp-msg-age", 2},
	FStpMaxAge:       {"stp-max-age", 2},
	FStpHelloTime:    {"stp-hello-time", 2},
	FStpForwardDelay: {"stp-forward-delay", 2},
	FArpHType:        {"arp-htype", 2},
	FArpPType:        {"arp-ptype", 2},
	FArpOpcode:       {"arp-opcode", 2},
	FArpSHA:          {"arp-sha", 6},
	FArpTHA:          {"arp-tha", 6},
	FArpSPA:          {"arp-spa", 4},
	FArpTPA:          {"arp-tpa", 4},
	FArpGrat:         {"arp-gratuitous", 1},
	FL3:              {"l3", 1},
	FIP4Src:          {"ip4-src", 4},
	FIP4Dst:          {"ip4-dst", 4},
	FIP6Src:          {"ip6-src", 16},
	FIP6Dst:          {"ip6-dst", 16},
	FL4Proto:         {"l4proto", 1},
	FIPTos:           {"ip-tos", 1},
	FDSCP:            {"dscp", 1},
	FSport:           {"sport", 2},
	FDport:           {"dport", 2},
	FTCPFlags:        {"tcp-flags", 1},
	FICMPType:        {"icmp-type", 1},
	FICMPCode:        {"icmp-code", 1},
	FFrag:            {"frag", 1},
	FCTState:         {"ct-state", 1},
	FCTDir:           {"ct-dir", 1},
	FL34Proto:        {"l34proto", 1},
}

// String names the field.
func (f Field) String() string {
	if f < FieldMax {
		return fieldInfos[f].name
	}
	return "field?"
}

// Width is the field's size in bytes.
func (f Field) Width() int {
	if f < FieldMax {
		return fieldInfos[f].width
	}
	return 0
}

// Connection states (C enum nwf_ct_state), tested with OpAnyBit.
const (
	CTNew         = 0x01
	CTEstablished = 0x02
	CTRelated     = 0x04
	CTInvalid     = 0x08
	CTUntracked   = 0x10 // ICMPv6 ND and MLD, untracked as in nf_conntrack
)

// Conntrack directions (C enum nwf_ct_dir).
const (
	CTDirOriginal = 1
	CTDirReply    = 2
)

// Op is a condition operator (C enum nwf_op).
type Op uint8

// Operators.
const (
	OpEq     Op = 0 // (field & B) == A
	OpRange  Op = 1 // A <= field <= B
	OpAnyBit Op = 2 // (field & A) != 0
	OpTCPOpt Op = 3 // TCP option of kind A present
)

// String names the operator.
func (o Op) String() string {
	switch o {
	case OpEq:
		return "eq"
	case OpRange:
		return "range"
	case OpAnyBit:
		return "anybit"
	case OpTCPOpt:
		return "tcpopt"
	}
	return "op?"
}

// Condition flags (C NWF_CF_*).
const (
	CFNeg = 0x01
	CFVar = 0x02
)

// Mode of a binding (C enum nwf_mode).
type Mode uint8

// Modes.
const (
	ModeEnforce Mode = 0
	ModeShadow  Mode = 1
)

// U128 is a field value: a big-endian unsigned integer right-aligned in two
// words, [0] high and [1] low.
type U128 [2]uint64

// Cond mirrors struct nwf_cond.
type Cond struct {
	Field Field
	Op    Op
	Flags uint8
	Var   uint8
	_     uint32
	A     U128
	B     U128
}

// Rule mirrors struct nwf_rule.
type Rule struct {
	Kind   RuleKind
	Action Action
	NCond  uint8
	NVar   uint8
	VSlot  uint32
	Target uint32
	ID     uint32
	Cond   [MaxConds]Cond
}

// Ruleset mirrors struct nwf_ruleset.
type Ruleset struct {
	Start [2][2]uint32
	Len   [2][2]uint32
}

// Binding mirrors struct nwf_binding.
type Binding struct {
	Ruleset uint32
	Vidx    uint32
	ID      uint32
	OutHook Hook
	Mode    Mode
	Flags   uint8 // BF* flags
	_       uint8
	// Gen differs from every earlier binding value's (Store.Bind sets
	// it): a flow's cached L3/L4 verdict belongs to one Gen.
	Gen uint64
}

// Vidx mirrors struct nwf_vidx.
type Vidx struct {
	First uint32
	Count uint32
}

// CVal mirrors struct nwf_cval.
type CVal struct {
	A U128
	B U128
}
