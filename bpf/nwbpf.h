/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * nwbpf.h: the ABI between the classifier (bpf/classifier.c) and the Go
 * control plane (maps/). Every struct here is a map key or value; each has
 * exactly one Go mirror in maps/ and a layout test against the object's BTF.
 *
 * API:
 *   enum nwf_dir         NWF_DIR_OUT (sent by the VM), NWF_DIR_IN (sent to it)
 *   enum nwf_stage       NWF_STAGE_L2 (ebtables' place), NWF_STAGE_L34 (iptables')
 *   enum nwf_hook        which TC hook carries the VM's outgoing frames
 *   enum nwf_action      rule actions, as in the nwfilter XML
 *   enum nwf_rule_kind   MATCH, JUMP (to an L2 sub-chain), CHAIN_END
 *   enum nwf_field       packet fields a condition can test (semantics below)
 *   enum nwf_op          comparison operators
 *   NWF_CF_*             condition flags
 *   struct nwf_cond      one condition: field, operator, values
 *   struct nwf_rule      one entry of a compiled program (shared by guests)
 *   struct nwf_ruleset   where a compiled filter tree lives in nwf_rules
 *   struct nwf_binding   per guest interface, keyed by ifindex
 *   struct nwf_vidx      per binding and variable-using rule: its instances
 *   struct nwf_cval      one variable-derived condition value of an instance
 *   NWF_MAX_*            limits
 * Added with the classifier (bpf/classifier.c):
 *   enum nwf_verdict     a frame's outcome: pass, drop, reject, error
 *   enum nwf_drop_reason why a frame was dropped (drop counters, trace)
 *   struct nwf_count     per-rule packet and byte counter (nwf_rule_stats)
 *   struct nwf_drop_count drop counter by reason and direction (nwf_drop_stats)
 *   struct nwf_trace     the last decision of a CPU, when tracing is on
 *   struct nwf_frag_key  a fragmented datagram (nwf_frags)
 *   struct nwf_frag_val  the verdict its first fragment got
 *   struct nwf_pkt       the parsed frame (per-CPU scratch nwf_scratch)
 * Added with conntrack-lite:
 *   NWF_BF_*             binding flags (NWF_BF_CT_CACHE)
 *   enum nwf_tcp_state   a tracked TCP connection's state, as nf_conntrack's
 *   enum nwf_ct_timeout  timeout classes (nwf_cfg_ct_timeout)
 *   NWF_CTF_*            flags of a tracked flow
 *   struct nwf_ct_key    a flow on one guest interface (nwf_ct2)
 *   struct nwf_ct_val    its state, expiry and fast-path cache
 *   struct nwf_ct_tcp    its TCP window tracking (in nwf_ct_val)
 *   struct nwf_ct_side   one direction's window (in nwf_ct_tcp)
 *   NWF_CTW_*            window tracking flags
 *   enum nwf_flow_counter conntrack counters (nwf_flow_stats)
 *
 * Values: a field is read as a big-endian unsigned integer of its width and
 * held right-aligned in two u64 words, [0] the high and [1] the low 64 bits.
 * 52:54:00:00:00:01 is {0, 0x525400000001}; 10.0.0.5 is {0, 0x0a000005}.
 *
 * Presence: a condition on a field the frame does not carry (ports of a
 * non-first fragment, ARP addresses of a non-Ethernet/IPv4 ARP, ...) is
 * false whatever its NWF_CF_NEG, as the kernel's ebtables and iptables
 * matches return false before applying their inversion.
 */
#ifndef NWBPF_H
#define NWBPF_H

#include <linux/types.h>

/* Limits. */
#define NWF_MAX_CONDS 16       /* conditions per rule entry */
#define NWF_MAX_STAGE_LEN 8192 /* entries per stage of one ruleset */
#define NWF_MAX_RULES 262144   /* entries in nwf_rules, all rulesets */
#define NWF_MAX_RULESETS 4096  /* distinct compiled filter trees */
#define NWF_MAX_BINDINGS 65536 /* bound guest interfaces */
#define NWF_MAX_VIDX 1048576   /* nwf_vidx entries, all bindings */
#define NWF_MAX_VALS 1048576   /* nwf_vals entries, all bindings */
#define NWF_MAX_INSTANCES 64   /* instances of one rule for one binding */

enum nwf_dir {
	NWF_DIR_OUT = 0, /* sent by the VM */
	NWF_DIR_IN = 1,	 /* sent to the VM */
	NWF_DIR_MAX = 2,
};

enum nwf_stage {
	NWF_STAGE_L2 = 0,  /* mac vlan stp arp rarp ip ipv6: ebtables' rules */
	NWF_STAGE_L34 = 1, /* tcp udp ... all, -ipv6 variants: iptables' */
	NWF_STAGE_MAX = 2,
};

/* The TC hook that sees the frames a VM sends: ingress on a tap, egress on
 * a macvtap (DESIGN.md's direction table). */
enum nwf_hook {
	NWF_HOOK_INGRESS = 0,
	NWF_HOOK_EGRESS = 1,
};

enum nwf_action {
	NWF_ACT_ACCEPT = 0,
	NWF_ACT_DROP = 1,
	NWF_ACT_REJECT = 2,   /* L2: drop; L3/L4: ICMP unreachable + drop */
	NWF_ACT_RETURN = 3,   /* sub-chain: back to root; root or L3/L4: pass */
	NWF_ACT_CONTINUE = 4, /* no verdict, next entry (L2 only) */
};

/*
 * A stage is a list of entries, run from index 0 of the stage:
 *   MATCH      all conditions true: take the action; else next entry.
 *   JUMP       all conditions (the sub-chain guard) true: remember the next
 *              index as the return point and go to .target; else next entry.
 *   CHAIN_END  last entry of every chain. .action is ACCEPT (the stage
 *              passes) or RETURN (go back to the return point; only used
 *              for sub-chains in the strict mode).
 * The root chain comes first and ends with CHAIN_END(ACCEPT); sub-chains
 * follow, each ending in CHAIN_END. Only the root chain contains JUMPs.
 * The L3/L4 stage is one flat chain.
 */
enum nwf_rule_kind {
	NWF_RK_MATCH = 0,
	NWF_RK_JUMP = 1,
	NWF_RK_CHAIN_END = 2,
};

/*
 * Fields. Width in bytes in brackets. "Tagged" means the frame carries a
 * VLAN tag (802.1Q or 802.1ad) in its data or in skb metadata.
 */
enum nwf_field {
	NWF_F_NONE = 0,
	/* Ethernet, always present. */
	NWF_F_SRCMAC = 1,   /* [6] */
	NWF_F_DSTMAC = 2,   /* [6] */
	NWF_F_ETHPROTO = 3, /* [2] 0x8100 when tagged (ebtables' view), else
			     * the type/length field */
	/* VLAN, present when tagged. */
	NWF_F_VLAN_ID = 4,    /* [2] VID of the outer tag */
	NWF_F_VLAN_ENCAP = 5, /* [2] ethertype after the outer tag */
	/*
	 * STP, as the kernel's ebt_stp reads it (libvirt's <stp> rules run
	 * there). ebt_stp's BPDU header is one byte short: it compares the
	 * first 6 payload bytes (after the Ethernet header) with
	 * 42 42 03 00 00 00, so its "type" is the BPDU's version byte and is
	 * always 0, and it reads the 31-byte configuration body from payload
	 * offset 6, one byte early (its "flags" is the real BPDU type, its root
	 * priority the real flags and first root-id byte, and so on). nwbpf
	 * reproduces that layout: TYPE = payload[5] is present when payload
	 * bytes 0..5 match; the other fields are present when also 37 payload
	 * bytes are there, at FLAGS payload[6], ROOT_PRIO [7..8], ROOT_ADDR
	 * [9..14], ROOT_COST [15..18], SENDER_PRIO [19..20], SENDER_ADDR
	 * [21..26], PORT [27..28], MSG_AGE [29..30], MAX_AGE [31..32],
	 * HELLO_TIME [33..34], FORWARD_DELAY [35..36]. (ebt_stp skips its
	 * config checks on a BPDU whose type is not 0, which with its layout
	 * never happens: the plain presence rule is all it takes.)
	 */
	NWF_F_STP_TYPE = 6,	      /* [1] */
	NWF_F_STP_FLAGS = 7,	      /* [1] */
	NWF_F_STP_ROOT_PRIO = 8,      /* [2] */
	NWF_F_STP_ROOT_ADDR = 9,      /* [6] */
	NWF_F_STP_ROOT_COST = 10,     /* [4] */
	NWF_F_STP_SENDER_PRIO = 11,   /* [2] */
	NWF_F_STP_SENDER_ADDR = 12,   /* [6] */
	NWF_F_STP_PORT = 13,	      /* [2] */
	NWF_F_STP_MSG_AGE = 14,	      /* [2] */
	NWF_F_STP_MAX_AGE = 15,	      /* [2] */
	NWF_F_STP_HELLO_TIME = 16,    /* [2] */
	NWF_F_STP_FORWARD_DELAY = 17, /* [2] */
	/*
	 * ARP/RARP (ETHPROTO 0x0806 or 0x8035, untagged): HTYPE, PTYPE and
	 * OPCODE present when the 8-byte header is there. SHA/THA present
	 * when also HLEN == 6 and HTYPE == 1. SPA/TPA/GRAT present when also
	 * PLEN == 4 and PTYPE == 0x0800 (their offsets use the frame's HLEN).
	 * GRAT is 1 when SPA == TPA, else 0.
	 */
	NWF_F_ARP_HTYPE = 18,  /* [2] */
	NWF_F_ARP_PTYPE = 19,  /* [2] */
	NWF_F_ARP_OPCODE = 20, /* [2] */
	NWF_F_ARP_SHA = 21,    /* [6] */
	NWF_F_ARP_THA = 22,    /* [6] */
	NWF_F_ARP_SPA = 23,    /* [4] */
	NWF_F_ARP_TPA = 24,    /* [4] */
	NWF_F_ARP_GRAT = 25,   /* [1] */
	/*
	 * IP, untagged only (ETHPROTO 0x0800 / 0x86dd): present when the
	 * fixed header is there.
	 * L3 is 4 for IPv4, 6 for IPv6, absent otherwise.
	 * L4PROTO: IPv4 protocol; IPv6: the next header after the extension
	 * header chain (hop-by-hop, routing, fragment, destination options,
	 * AH), bounded; absent if the chain is too long or truncated.
	 * TOS is the IPv4 TOS byte (the L2 <ip dscp> quirk compares it whole);
	 * DSCP is TOS >> 2, or the IPv6 traffic class >> 2.
	 * SPORT/DPORT: L4PROTO tcp, udp, udplite, dccp or sctp, first (or
	 * no) fragment, 4 bytes of L4 header there.
	 * TCP_FLAGS: the flags byte (FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08
	 * ACK 0x10 URG 0x20), TCP first fragment with its 20-byte header.
	 * ICMP_TYPE/CODE: ICMP for IPv4, ICMPv6 for IPv6, first fragment.
	 * FRAG: 1 for a non-first fragment, 0 otherwise (present with L3).
	 */
	NWF_F_L3 = 26,	      /* [1] */
	NWF_F_IP4_SRC = 27,   /* [4] */
	NWF_F_IP4_DST = 28,   /* [4] */
	NWF_F_IP6_SRC = 29,   /* [16] */
	NWF_F_IP6_DST = 30,   /* [16] */
	NWF_F_L4PROTO = 31,   /* [1] */
	NWF_F_IP_TOS = 32,    /* [1] */
	NWF_F_DSCP = 33,      /* [1] */
	NWF_F_SPORT = 34,     /* [2] */
	NWF_F_DPORT = 35,     /* [2] */
	NWF_F_TCP_FLAGS = 36, /* [1] */
	NWF_F_ICMP_TYPE = 37, /* [1] */
	NWF_F_ICMP_CODE = 38, /* [1] */
	NWF_F_FRAG = 39,      /* [1] */
	/*
	 * Connection state (conntrack-lite), present with L3. CT_STATE is one
	 * of NWF_CT_NEW/ESTABLISHED/RELATED/INVALID (tested with ANYBIT);
	 * CT_DIR is NWF_CTDIR_ORIGINAL or NWF_CTDIR_REPLY.
	 */
	NWF_F_CT_STATE = 40, /* [1] */
	NWF_F_CT_DIR = 41,   /* [1] */
	/*
	 * L34PROTO is the protocol iptables' -p sees (libvirt's L3/L4 stage;
	 * Debian's iptables is iptables-nft, whose -p is nf_tables' meta
	 * l4proto): the IPv4 protocol; for IPv6 the next header after
	 * hop-by-hop, routing, fragment and destination options headers, but
	 * an authentication header (AH, 51) ends the walk (ipv6_find_hdr with
	 * IP6_FH_F_AUTH), so an IPv6 packet carrying AH is protocol 51 there
	 * while L4PROTO (ebtables' view) skips it. Present with L4PROTO, and
	 * also when the chain after an AH is too long or truncated.
	 */
	NWF_F_L34PROTO = 42, /* [1] */
	NWF_F_MAX = 43,
};

enum nwf_ct_state {
	NWF_CT_NEW = 0x01,
	NWF_CT_ESTABLISHED = 0x02,
	NWF_CT_RELATED = 0x04,
	NWF_CT_INVALID = 0x08,
	NWF_CT_UNTRACKED = 0x10, /* ICMPv6 neighbour discovery and MLD, which
				  * nf_conntrack leaves untracked: no state
				  * libvirt can name matches it */
};

enum nwf_ct_dir {
	NWF_CTDIR_ORIGINAL = 1,
	NWF_CTDIR_REPLY = 2,
};

enum nwf_op {
	NWF_OP_EQ = 0,	   /* (field & b) == a; b is the mask */
	NWF_OP_RANGE = 1,  /* a <= field <= b, unsigned */
	NWF_OP_ANYBIT = 2, /* (field & a) != 0 */
	NWF_OP_TCPOPT = 3, /* TCP option of kind a is present (field ignored;
			    * absent unless a TCP first fragment) */
};

/* Condition flags. */
#define NWF_CF_NEG 0x01 /* the condition's result is inverted */
#define NWF_CF_VAR 0x02 /* a and b come from the binding's instance */

struct nwf_cond {
	__u8 field; /* enum nwf_field */
	__u8 op;    /* enum nwf_op */
	__u8 flags; /* NWF_CF_* */
	__u8 var;   /* NWF_CF_VAR: index of the value within an instance */
	__u32 _pad;
	__u64 a[2];
	__u64 b[2];
};
_Static_assert(sizeof(struct nwf_cond) == 40, "nwf_cond size");

/* One entry of nwf_rules (array). Rulesets are written into free ranges and
 * never modified while a binding references them. */
struct nwf_rule {
	__u8 kind;    /* enum nwf_rule_kind */
	__u8 action;  /* enum nwf_action (MATCH, CHAIN_END) */
	__u8 ncond;   /* conditions used, <= NWF_MAX_CONDS */
	__u8 nvar;    /* conditions flagged NWF_CF_VAR (values per instance) */
	__u32 vslot;  /* nvar > 0: the binding's nwf_vidx slot of this rule */
	__u32 target; /* JUMP: sub-chain's first entry, relative to the stage */
	__u32 id;     /* rule id: index into the ruleset's metadata */
	struct nwf_cond cond[NWF_MAX_CONDS];
};
_Static_assert(sizeof(struct nwf_rule) == 656, "nwf_rule size");

/* Value of nwf_rulesets (hash, key __u32 ruleset id). */
struct nwf_ruleset {
	__u32 start[NWF_DIR_MAX][NWF_STAGE_MAX]; /* first entry in nwf_rules */
	__u32 len[NWF_DIR_MAX][NWF_STAGE_MAX];	 /* entries, 0 = empty stage */
};
_Static_assert(sizeof(struct nwf_ruleset) == 32, "nwf_ruleset size");

enum nwf_mode {
	NWF_MODE_ENFORCE = 0,
	NWF_MODE_SHADOW = 1, /* evaluate, count, log; pass everything */
};

/* Value of nwf_bindings (hash, key __u32 ifindex). Replaced whole to switch
 * a guest to a new ruleset and instance set in one step. */
struct nwf_binding {
	__u32 ruleset; /* key into nwf_rulesets */
	__u32 vidx;    /* base into nwf_vidx: slot s is nwf_vidx[vidx + s] */
	__u32 id;      /* binding id, for logs and metrics */
	__u8 out_hook; /* enum nwf_hook */
	__u8 mode;     /* enum nwf_mode */
	__u8 flags;    /* NWF_BF_* */
	__u8 _pad;
	/* Added with conntrack-lite: a value no earlier binding value of any
	 * interface had, so that a flow's cached L3/L4 verdict (nwf_ct_val.gen)
	 * is never taken for a newer program or newer instance values. */
	__u64 gen;
};
_Static_assert(sizeof(struct nwf_binding) == 24, "nwf_binding size");

/* nwf_binding.flags. CT_CACHE: the binding's L3/L4 stages (both directions)
 * test only fields that cannot change within a flow and direction once it
 * is ESTABLISHED (addresses, protocol, ports, ICMP type and code, ethertype,
 * L3, conntrack state and direction), so the L3/L4 verdict of one such
 * frame holds for the next ones while the binding value (gen) stays. */
#define NWF_BF_CT_CACHE 0x01

/* Value of nwf_vidx (array): instance i, value j of a rule is
 * nwf_vals[first + i * rule.nvar + j], i < count. */
struct nwf_vidx {
	__u32 first;
	__u32 count;
};
_Static_assert(sizeof(struct nwf_vidx) == 8, "nwf_vidx size");

/* Value of nwf_vals (array). */
struct nwf_cval {
	__u64 a[2];
	__u64 b[2];
};
_Static_assert(sizeof(struct nwf_cval) == 32, "nwf_cval size");

/*
 * Everything below was added with the classifier. It does not change the
 * meaning of anything above.
 */

/* Outcome of a frame, or of a stage (NWF_VERDICT_PASS: go on). ERROR is a
 * malformed program (an unknown kind, action, operator, field or flag, a bad
 * jump target, a missing nwf_vidx slot, ...): the classifier fails closed
 * and drops the frame. */
enum nwf_verdict {
	NWF_VERDICT_PASS = 0,
	NWF_VERDICT_DROP = 1,
	NWF_VERDICT_REJECT = 2, /* L3/L4 reject: ICMP error, frame dropped */
	NWF_VERDICT_ERROR = 3,
};

/* Why a frame was dropped. Index into nwf_drop_stats is
 * reason * NWF_DIR_MAX + dir. */
enum nwf_drop_reason {
	NWF_DROP_L2 = 0,	 /* L2 drop or reject rule */
	NWF_DROP_L34 = 1,	 /* L3/L4 drop rule */
	NWF_DROP_REJECT = 2,	 /* L3/L4 reject rule */
	NWF_DROP_FRAGMENT = 3,	 /* non-first fragment: first unseen or dropped */
	NWF_DROP_MALFORMED = 4,	 /* the program is malformed (NWF_VERDICT_ERROR) */
	NWF_DROP_NO_RULESET = 5, /* the binding names a missing ruleset */
	NWF_DROP_INTERNAL = 6,	 /* a per-CPU scratch map is missing */
	NWF_DROP_CONNTRACK = 7,	 /* no room for a passed frame's new flow */
	NWF_DROP_MAX = 8,
};

/* Value of nwf_rule_stats (per-CPU array, NWF_MAX_RULES entries, indexed
 * like nwf_rules): frames for which the entry's conditions were true (a
 * MATCH that matched, a JUMP taken, a CHAIN_END reached), as the counters
 * of iptables -L -v. */
struct nwf_count {
	__u64 packets;
	__u64 bytes;
};
_Static_assert(sizeof(struct nwf_count) == 16, "nwf_count size");

/* Value of nwf_drop_stats (per-CPU array, NWF_DROP_MAX * NWF_DIR_MAX
 * entries). A binding in NWF_MODE_SHADOW passes the frame and counts it in
 * the shadow_* members instead. */
struct nwf_drop_count {
	__u64 packets;
	__u64 bytes;
	__u64 shadow_packets;
	__u64 shadow_bytes;
};
_Static_assert(sizeof(struct nwf_drop_count) == 32, "nwf_drop_count size");

#define NWF_NO_ENTRY 0xffffffffu /* nwf_trace.index: no entry decided */

/* Value of nwf_trace (per-CPU array, one entry), written for every frame of
 * a bound interface when the classifier's nwf_cfg_trace knob is set: the
 * deciding stage and entry, as the reference evaluator reports them. */
struct nwf_trace {
	__u64 seq;     /* frames traced on this CPU */
	__u32 binding; /* nwf_binding.id */
	__u32 index;   /* deciding entry, relative to the stage; NWF_NO_ENTRY */
	__u32 entry;   /* the same, as an index into nwf_rules; NWF_NO_ENTRY */
	__u32 rule;    /* nwf_rule.id of the deciding entry (0 with no entry) */
	__u32 steps;   /* entries executed, both stages */
	__u8 dir;      /* enum nwf_dir */
	__u8 stage;    /* enum nwf_stage that decided */
	__u8 action;   /* the deciding entry's action (ACCEPT with no entry) */
	__u8 verdict;  /* enum nwf_verdict of the program (before shadow) */
	__u8 dflt;     /* 1: no rule decided (CHAIN_END, end of stage, empty) */
	__u8 reason;   /* enum nwf_drop_reason when the frame was dropped */
	__u8 frag;     /* 1: the L3/L4 verdict came from nwf_frags */
	__u8 fast;     /* 1: the L3/L4 verdict came from the flow's cache */
	__u8 _pad[4];
};
_Static_assert(sizeof(struct nwf_trace) == 40, "nwf_trace size");

/* Key of nwf_frags (LRU hash): one fragmented datagram on one interface and
 * direction. Addresses as the field values (IPv4 in the low 32 bits). */
struct nwf_frag_key {
	__u32 ifindex;
	__u8 dir;   /* enum nwf_dir */
	__u8 l3;    /* 4 or 6 */
	__u8 proto; /* IPv4 protocol, IPv6 fragment header's next header */
	__u8 _pad;
	__u32 id; /* IPv4 identification, IPv6 fragment identification */
	__u32 _pad2;
	__u64 src[2];
	__u64 dst[2];
};
_Static_assert(sizeof(struct nwf_frag_key) == 48, "nwf_frag_key size");

#define NWF_FRAG_TIMEOUT_NS 30000000000ull /* as net.ipv4.ipfrag_time */

/* Value of nwf_frags. */
struct nwf_frag_val {
	__u64 expires; /* bpf_ktime_get_ns() after which it is void */
	__u8 verdict;  /* enum nwf_verdict of the first fragment */
	__u8 _pad[7];
};
_Static_assert(sizeof(struct nwf_frag_val) == 16, "nwf_frag_val size");

/* Fragment facts of nwf_pkt.frag. */
#define NWF_PF_FIRST 0x01 /* first fragment of a fragmented datagram */
#define NWF_PF_LATER 0x02 /* non-first fragment (FRAG == 1) */

/*
 * Value of nwf_scratch (per-CPU array, one entry): the frame as the parser
 * saw it. val[f] and bit f of present are field f (value encoding and
 * presence as above); the conntrack fields are set after the L2 stage
 * passed (they are absent when the L2 stage dropped the frame, and on a
 * non-first fragment, whose L3/L4 verdict is its first fragment's). A test that pins itself to a CPU can read it after
 * BPF_PROG_TEST_RUN to compare the parser with the reference one.
 */
struct nwf_pkt {
	__u64 present;		 /* bit f: field f present */
	__u64 tcpopt[4];	 /* bit k: TCP option kind k in the list */
	__u64 val[NWF_F_MAX][2]; /* field values */
	__u8 tcpopt_ok;		 /* the TCP option list could be read */
	__u8 frag;		 /* NWF_PF_* */
	__u8 frag_proto;	 /* nwf_frag_key.proto of a fragment */
	__u8 _pad;
	__u32 frag_id; /* nwf_frag_key.id of a fragment */
	__u32 len;     /* frame length */
	__u32 l4off;   /* L4 header offset in the frame, 0 when not parsed */
};
_Static_assert(sizeof(struct nwf_pkt) == 8 + 32 + NWF_F_MAX * 16 + 16, "nwf_pkt size");

/*
 * Conntrack-lite. One entry of nwf_ct2 (LRU hash) per flow and guest
 * interface, keyed in the orientation of the flow's first passed frame
 * (the ORIGINAL direction); a frame looks up its own orientation, then the
 * reversed one (REPLY). Which frames create, update and match entries, the
 * states reported in NWF_F_CT_STATE/CT_DIR and the timeouts are described
 * in docs/dataplane.md ("Connection tracking").
 *
 * Keys: TCP and UDP by addresses and ports; ICMP and ICMPv6 queries (echo,
 * timestamp, information, address mask, node information) by addresses,
 * sport = the query's identifier and dport = the query's (request) type;
 * every other protocol by addresses and protocol, ports 0 (nf_conntrack's
 * generic tracker). Addresses as the field values (IPv4 in the low 32
 * bits of [1]).
 */
struct nwf_ct_key {
	__u32 ifindex;
	__u8 l3;    /* 4 or 6 */
	__u8 proto; /* L4 protocol (IPv6: after the extension headers) */
	__u16 sport;
	__u16 dport;
	__u16 _pad;
	__u32 _pad2;
	__u64 src[2];
	__u64 dst[2];
};
_Static_assert(sizeof(struct nwf_ct_key) == 48, "nwf_ct_key size");

/* TCP states, numbered as nf_conntrack's enum tcp_conntrack. */
enum nwf_tcp_state {
	NWF_TCP_NONE = 0, /* not TCP */
	NWF_TCP_SYN_SENT = 1,
	NWF_TCP_SYN_RECV = 2,
	NWF_TCP_ESTABLISHED = 3,
	NWF_TCP_FIN_WAIT = 4,
	NWF_TCP_CLOSE_WAIT = 5,
	NWF_TCP_LAST_ACK = 6,
	NWF_TCP_TIME_WAIT = 7,
	NWF_TCP_CLOSE = 8,
	NWF_TCP_SYN_SENT2 = 9,
	NWF_TCP_MAX = 10,
};

/* Timeout classes: index into the classifier's nwf_cfg_ct_timeout (ns).
 * The TCP classes have the number of their state. */
enum nwf_ct_timeout {
	NWF_CTT_GENERIC = 0,
	NWF_CTT_TCP_SYN_SENT = 1,
	NWF_CTT_TCP_SYN_RECV = 2,
	NWF_CTT_TCP_ESTABLISHED = 3,
	NWF_CTT_TCP_FIN_WAIT = 4,
	NWF_CTT_TCP_CLOSE_WAIT = 5,
	NWF_CTT_TCP_LAST_ACK = 6,
	NWF_CTT_TCP_TIME_WAIT = 7,
	NWF_CTT_TCP_CLOSE = 8,
	NWF_CTT_TCP_SYN_SENT2 = 9,
	NWF_CTT_TCP_UNACK = 10, /* any TCP state before the flow is assured */
	NWF_CTT_UDP = 11,	/* no reply seen */
	NWF_CTT_UDP_STREAM = 12,
	NWF_CTT_ICMP = 13, /* ICMP and ICMPv6 queries */
	NWF_CTT_MAX = 14,
};

/* nwf_ct_val.flags. */
#define NWF_CTF_SEEN_REPLY 0x01	 /* a frame of the REPLY direction passed */
#define NWF_CTF_ASSURED 0x02	 /* TCP: established after a reply */
#define NWF_CTF_CACHE_ORIG 0x10	 /* cache[0] holds the ORIGINAL verdict */
#define NWF_CTF_CACHE_REPLY 0x20 /* cache[1] holds the REPLY verdict */

/* nwf_ct_side.flags and nwf_ct_tcp.last_flags, valued as nf_conntrack's
 * IP_CT_TCP_FLAG_* and IP_CT_EXP_CHALLENGE_ACK / IP_CT_TCP_SIMULTANEOUS_OPEN. */
#define NWF_CTW_WSCALE 0x01	/* the side's SYN had a window scale option */
#define NWF_CTW_SACK_PERM 0x02	/* the side's SYN permitted SACK */
#define NWF_CTW_CLOSE_INIT 0x04 /* the side sent the first FIN */
#define NWF_CTW_LIBERAL 0x08	/* picked up mid-stream: no window checks */
#define NWF_CTW_DATA_UNACK 0x10 /* the side has data not yet acknowledged */
#define NWF_CTW_MAXACK_SET 0x20 /* maxack holds an acknowledgement */
#define NWF_CTW_CHALLENGE 0x40	/* last_flags: a SYN in LAST_ACK may draw a challenge ACK */
#define NWF_CTW_SIMUL_OPEN 0x80 /* last_flags: simultaneous open */

/* One direction of a tracked TCP connection, as nf_conntrack's
 * ip_ct_tcp_state: the sender's side of its window tracking (tcp_in_window,
 * docs/dataplane.md). Sequence numbers modulo 2^32. */
struct nwf_ct_side {
	__u32 end;    /* td_end: highest sequence sent, plus one */
	__u32 maxend; /* td_maxend: highest end the other side's window allows */
	__u32 maxwin; /* td_maxwin: largest window seen (0: side not seen yet) */
	__u32 maxack; /* td_maxack: highest acknowledgement sent */
	__u8 scale;   /* td_scale: window scale shift of the side's windows */
	__u8 flags;   /* NWF_CTW_* */
	__u8 _pad[2];
};
_Static_assert(sizeof(struct nwf_ct_side) == 20, "nwf_ct_side size");

/* The TCP part of a flow (zero for other protocols): both sides' windows
 * and the last segment nf_conntrack remembers (its last_* fields). */
struct nwf_ct_tcp {
	struct nwf_ct_side seen[2]; /* by conntrack direction: ORIGINAL, REPLY */
	__u32 last_end;		    /* end sequence of the last segment */
	__u32 last_ack;		    /* a REPLY ACK's acknowledgement in SYN_SENT */
	__u16 last_win;		    /* window of the last ignored segment */
	__u8 last_index;	    /* its flag set: 0 SYN 1 SYN-ACK 2 FIN 3 ACK 4 RST 5 none */
	__u8 last_dir;		    /* its conntrack direction: 0 ORIGINAL, 1 REPLY */
	__u8 last_wscale;	    /* window scale of an ignored SYN */
	__u8 last_flags;	    /* NWF_CTW_* of an ignored SYN, CHALLENGE, SIMUL_OPEN */
	__u8 _pad[2];
};
_Static_assert(sizeof(struct nwf_ct_tcp) == 56, "nwf_ct_tcp size");

/* Value of nwf_ct2 (nwf_ct until the window tracking made it larger). */
struct nwf_ct_val {
	__u64 expires; /* bpf_ktime_get_ns() after which the entry is void */
	__u64 gen;     /* nwf_binding.gen the cache belongs to */
	/* Per conntrack direction (ORIGINAL, REPLY), valid with its
	 * NWF_CTF_CACHE_* flag: the nwf_rules index of the L3/L4 entry that
	 * accepted an ESTABLISHED frame under gen, NWF_NO_ENTRY when the
	 * stage passed without one. */
	__u32 cache[2];
	__u8 state; /* enum nwf_tcp_state (NONE for other protocols) */
	__u8 flags; /* NWF_CTF_* */
	__u8 odir;  /* enum nwf_dir of the ORIGINAL direction */
	__u8 _pad[5];
	struct nwf_ct_tcp tcp; /* TCP window tracking */
};
_Static_assert(sizeof(struct nwf_ct_val) == 88, "nwf_ct_val size");

/* Index into nwf_flow_stats (per-CPU array of __u64). */
enum nwf_flow_counter {
	NWF_FC_INSERT = 0,	  /* flows created */
	NWF_FC_INSERT_FAILED = 1, /* creations that failed (frame dropped) */
	NWF_FC_FASTPATH = 2,	  /* frames whose L3/L4 verdict was cached */
	NWF_FC_MAX = 3,
};

#define NWF_CT_DEFAULT_SIZE 65536 /* nwf_ct2 entries unless configured */

#endif /* NWBPF_H */
