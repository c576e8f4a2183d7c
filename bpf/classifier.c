// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * classifier.c: nwbpf's one TC classifier. It parses a frame into the
 * per-CPU scratch (struct nwf_pkt), finds the interface's binding, and runs
 * the binding's compiled program from nwf_rules as bpf/nwbpf.h specifies:
 * the L2 stage, then the L3/L4 stage. Behaviour comes from maps only.
 *
 * API:
 *   SEC("tc") nwf_ingress, nwf_egress  the two hooks of a guest interface
 *   SEC("tc") nwf_empty                passes everything (benchmark baseline)
 *   nwf_cfg_trace                      const volatile knob: fill nwf_trace
 *   nwf_cfg_ct_timeout                 const volatile: conntrack timeouts (ns)
 *   maps                               nwf_bindings nwf_rulesets nwf_rules
 *                                      nwf_vidx nwf_vals nwf_rule_stats
 *                                      nwf_drop_stats nwf_trace nwf_frags
 *                                      nwf_scratch nwf_txbuf nwf_ct2
 *                                      nwf_flow_stats nwf_flow_scratch
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "nwbpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set before load: record every decision in nwf_trace. */
const volatile __u8 nwf_cfg_trace = 0;

#define SEC_NS 1000000000ull

/* Set before load: conntrack timeouts by enum nwf_ct_timeout, in ns. The
 * defaults are nf_conntrack's (docs/dataplane.md has the table). */
const volatile __u64 nwf_cfg_ct_timeout[NWF_CTT_MAX] = {
	[NWF_CTT_GENERIC] = 600 * SEC_NS,      [NWF_CTT_TCP_SYN_SENT] = 120 * SEC_NS,
	[NWF_CTT_TCP_SYN_RECV] = 60 * SEC_NS,  [NWF_CTT_TCP_ESTABLISHED] = 432000 * SEC_NS,
	[NWF_CTT_TCP_FIN_WAIT] = 120 * SEC_NS, [NWF_CTT_TCP_CLOSE_WAIT] = 60 * SEC_NS,
	[NWF_CTT_TCP_LAST_ACK] = 30 * SEC_NS,  [NWF_CTT_TCP_TIME_WAIT] = 120 * SEC_NS,
	[NWF_CTT_TCP_CLOSE] = 10 * SEC_NS,     [NWF_CTT_TCP_SYN_SENT2] = 120 * SEC_NS,
	[NWF_CTT_TCP_UNACK] = 300 * SEC_NS,    [NWF_CTT_UDP] = 30 * SEC_NS,
	[NWF_CTT_UDP_STREAM] = 120 * SEC_NS,   [NWF_CTT_ICMP] = 30 * SEC_NS,
};

/* Element lifetimes: bindings and rulesets are replaced whole by the
 * control plane. Without preallocation a replaced element is freed after
 * an RCU grace period, so a reader that found it never sees it reused. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, NWF_MAX_BINDINGS);
	__type(key, __u32);
	__type(value, struct nwf_binding);
} nwf_bindings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, NWF_MAX_RULESETS);
	__type(key, __u32);
	__type(value, struct nwf_ruleset);
} nwf_rulesets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NWF_MAX_RULES);
	__type(key, __u32);
	__type(value, struct nwf_rule);
} nwf_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NWF_MAX_VIDX);
	__type(key, __u32);
	__type(value, struct nwf_vidx);
} nwf_vidx SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NWF_MAX_VALS);
	__type(key, __u32);
	__type(value, struct nwf_cval);
} nwf_vals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NWF_MAX_RULES);
	__type(key, __u32);
	__type(value, struct nwf_count);
} nwf_rule_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NWF_DROP_MAX *NWF_DIR_MAX);
	__type(key, __u32);
	__type(value, struct nwf_drop_count);
} nwf_drop_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct nwf_trace);
} nwf_trace SEC(".maps");

#define NWF_MAX_FRAGS 16384 /* datagrams in flight, all interfaces */

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NWF_MAX_FRAGS);
	__type(key, struct nwf_frag_key);
	__type(value, struct nwf_frag_val);
} nwf_frags SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct nwf_pkt);
} nwf_scratch SEC(".maps");

/* Conntrack-lite: bounded, the least recently used flow is evicted to make
 * room (max_entries is set at load, loader.Options.ConntrackSize). Named
 * nwf_ct2 since struct nwf_ct_val grew the TCP window tracking: a pinned
 * nwf_ct of the old layout is never adopted. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NWF_CT_DEFAULT_SIZE);
	__type(key, struct nwf_ct_key);
	__type(value, struct nwf_ct_val);
} nwf_ct2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NWF_FC_MAX);
	__type(key, __u32);
	__type(value, __u64);
} nwf_flow_stats SEC(".maps");

/*
 * The ICMP error of a reject is built here, then copied over the frame:
 * Ethernet + IPv6 (54) + ICMPv6 (8) + the quote, at most the IPv6 minimum
 * MTU as RFC 4443 asks (the IPv4 reply is smaller: 576 bytes, RFC 1812).
 * Internal scratch, never read by the control plane.
 */
#define NWF_TX_IP4_MAX 576
#define NWF_TX_IP6_MAX 1280
#define NWF_TXBUF 2560 /* 14 + NWF_TX_IP6_MAX, and room for masked offsets */

struct nwf_txbuf {
	__u8 b[NWF_TXBUF];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct nwf_txbuf);
} nwf_txbuf SEC(".maps");

/* Protocol numbers. */
#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define ETH_P_RARP 0x8035
#define ETH_P_IPV6 0x86dd
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88a8
#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_DCCP 33
#define IPPROTO_ICMPV6 58
#define IPPROTO_SCTP 132
#define IPPROTO_UDPLITE 136
#define IP6_HOPOPTS 0
#define IP6_ROUTING 43
#define IP6_FRAGMENT 44
#define IP6_AH 51
#define IP6_NONE 59 /* no next header */
#define IP6_DSTOPTS 60
#define IP6_MAX_EXT 8 /* extension headers walked, as the reference */

/* Largest bpf_loop count (BPF_MAX_LOOPS): a stage that has not decided by
 * then is treated as malformed. */
#define NWF_MAX_STEPS (1 << 23)

/* ---- Parser ---------------------------------------------------------- */

static __always_inline __u64 be16(const __u8 *b)
{
	return ((__u64)b[0] << 8) | b[1];
}

static __always_inline __u64 be32(const __u8 *b)
{
	return (be16(b) << 16) | be16(b + 2);
}

static __always_inline __u64 be48(const __u8 *b)
{
	return (be16(b) << 32) | be32(b + 2);
}

static __always_inline __u64 be64(const __u8 *b)
{
	return (be32(b) << 32) | be32(b + 4);
}

static __always_inline void set(struct nwf_pkt *p, int f, __u64 v)
{
	p->val[f][0] = 0;
	p->val[f][1] = v;
	p->present |= 1ull << f;
}

static __always_inline void set128(struct nwf_pkt *p, int f, __u64 hi, __u64 lo)
{
	p->val[f][0] = hi;
	p->val[f][1] = lo;
	p->present |= 1ull << f;
}

static __always_inline int has(const struct nwf_pkt *p, __u32 f)
{
	return (p->present >> f) & 1;
}

/*
 * STP as ebt_stp reads it (nwbpf.h): its 6-byte header is one byte short of
 * the BPDU's, so TYPE is the version byte and the 31-byte body starts at
 * the BPDU's type. ebt_stp looks at the Ethernet payload (after the outer
 * tag) whatever the type field says.
 */
static __always_inline void parse_stp(struct __sk_buff *skb, struct nwf_pkt *p, __u32 off,
				      __u32 len)
{
	__u8 s[37];
	const __u8 *c = s + 6;

	if (len < off + 6 || bpf_skb_load_bytes(skb, off, s, 6))
		return;
	if (s[0] != 0x42 || s[1] != 0x42 || s[2] != 0x03 || s[3] || s[4] || s[5])
		return;
	set(p, NWF_F_STP_TYPE, s[5]);
	if (len < off + 37 || bpf_skb_load_bytes(skb, off, s, 37))
		return;
	set(p, NWF_F_STP_FLAGS, c[0]);
	set(p, NWF_F_STP_ROOT_PRIO, be16(c + 1));
	set(p, NWF_F_STP_ROOT_ADDR, be48(c + 3));
	set(p, NWF_F_STP_ROOT_COST, be32(c + 9));
	set(p, NWF_F_STP_SENDER_PRIO, be16(c + 13));
	set(p, NWF_F_STP_SENDER_ADDR, be48(c + 15));
	set(p, NWF_F_STP_PORT, be16(c + 21));
	set(p, NWF_F_STP_MSG_AGE, be16(c + 23));
	set(p, NWF_F_STP_MAX_AGE, be16(c + 25));
	set(p, NWF_F_STP_HELLO_TIME, be16(c + 27));
	set(p, NWF_F_STP_FORWARD_DELAY, be16(c + 29));
}

/* ARP/RARP as ebt_arp: address conditions need Ethernet/IPv4 ARP, and the
 * protocol addresses sit after the frame's own hardware address length. */
static __always_inline void parse_arp(struct __sk_buff *skb, struct nwf_pkt *p, __u32 off,
				      __u32 len)
{
	__u8 h[8], a[6], t[4];
	__u32 htype, ptype, hlen, plen, tha, spa, tpa;

	if (len < off + 8 || bpf_skb_load_bytes(skb, off, h, 8))
		return;
	htype = be16(h);
	ptype = be16(h + 2);
	hlen = h[4];
	plen = h[5];
	set(p, NWF_F_ARP_HTYPE, htype);
	set(p, NWF_F_ARP_PTYPE, ptype);
	set(p, NWF_F_ARP_OPCODE, be16(h + 6));
	if (hlen == 6 && htype == 1) {
		if (len >= off + 14 && !bpf_skb_load_bytes(skb, off + 8, a, 6))
			set(p, NWF_F_ARP_SHA, be48(a));
		tha = off + 14 + plen;
		if (len >= tha + 6 && !bpf_skb_load_bytes(skb, tha, a, 6))
			set(p, NWF_F_ARP_THA, be48(a));
	}
	if (plen == 4 && ptype == ETH_P_IP) {
		spa = off + 8 + hlen;
		tpa = off + 12 + 2 * hlen;
		if (len < tpa + 4 || bpf_skb_load_bytes(skb, spa, a, 4) ||
		    bpf_skb_load_bytes(skb, tpa, t, 4))
			return;
		set(p, NWF_F_ARP_SPA, be32(a));
		set(p, NWF_F_ARP_TPA, be32(t));
		set(p, NWF_F_ARP_GRAT, be32(a) == be32(t));
	}
}

/* The TCP option list, walked as the reference parser does. */
static __always_inline void parse_tcpopt(struct __sk_buff *skb, struct nwf_pkt *p, __u32 off,
					 __u32 optlen)
{
	__u8 o[64];
	__u32 i = 0, n, kind, l;

	p->tcpopt_ok = 1;
	if (optlen == 0 || optlen > 40 || bpf_skb_load_bytes(skb, off, o, optlen))
		return;
	for (n = 0; n < 40; n++) {
		if (i >= optlen)
			break;
		kind = o[i & 63];
		p->tcpopt[(kind >> 6) & 3] |= 1ull << (kind & 63);
		if (kind == 0)
			break;
		if (kind == 1) {
			i++;
			continue;
		}
		if (i + 1 >= optlen)
			break;
		l = o[(i + 1) & 63];
		if (l < 2)
			break;
		i += l;
	}
}

/* Ports, ICMP type/code, TCP flags and options of a first (or only)
 * fragment; off is the L4 header, icmp the ICMP protocol of the version. */
static __always_inline void parse_l4(struct __sk_buff *skb, struct nwf_pkt *p, __u8 proto,
				     __u8 icmp, __u32 off, __u32 len)
{
	__u8 l[20];
	__u32 doff;

	if (len < off + 4 || bpf_skb_load_bytes(skb, off, l, 4))
		return;
	p->l4off = off;
	switch (proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
	case IPPROTO_DCCP:
	case IPPROTO_SCTP:
		set(p, NWF_F_SPORT, be16(l));
		set(p, NWF_F_DPORT, be16(l + 2));
		break;
	default:
		if (proto == icmp) {
			set(p, NWF_F_ICMP_TYPE, l[0]);
			set(p, NWF_F_ICMP_CODE, l[1]);
		}
	}
	if (proto != IPPROTO_TCP || len < off + 20 || bpf_skb_load_bytes(skb, off, l, 20))
		return;
	set(p, NWF_F_TCP_FLAGS, l[13]);
	doff = (l[12] >> 4) * 4;
	if (doff < 20 || doff > len - off)
		return;
	parse_tcpopt(skb, p, off + 20, doff - 20);
}

static __always_inline void parse_ip4(struct __sk_buff *skb, struct nwf_pkt *p, __u32 off,
				      __u32 len)
{
	__u8 h[20];
	__u32 fo, ihl;

	if (len < off + 20 || bpf_skb_load_bytes(skb, off, h, 20))
		return;
	set(p, NWF_F_L3, 4);
	set(p, NWF_F_IP_TOS, h[1]);
	set(p, NWF_F_DSCP, h[1] >> 2);
	set(p, NWF_F_IP4_SRC, be32(h + 12));
	set(p, NWF_F_IP4_DST, be32(h + 16));
	set(p, NWF_F_L4PROTO, h[9]);
	set(p, NWF_F_L34PROTO, h[9]);
	fo = be16(h + 6);
	p->frag_id = be16(h + 4);
	p->frag_proto = h[9];
	if (fo & 0x1fff) {
		set(p, NWF_F_FRAG, 1);
		p->frag = NWF_PF_LATER;
		return;
	}
	set(p, NWF_F_FRAG, 0);
	if (fo & 0x2000)
		p->frag = NWF_PF_FIRST;
	ihl = (h[0] & 0x0f) * 4;
	if (ihl < 20 || ihl > len - off)
		return;
	parse_l4(skb, p, h[9], IPPROTO_ICMP, off + ihl, len);
}

static __always_inline int ip6_ext(__u8 nh)
{
	return nh == IP6_HOPOPTS || nh == IP6_ROUTING || nh == IP6_FRAGMENT || nh == IP6_AH ||
	       nh == IP6_DSTOPTS;
}

static __always_inline void parse_ip6(struct __sk_buff *skb, struct nwf_pkt *p, __u32 off,
				      __u32 len)
{
	__u8 h[40], e[8];
	__u32 o, n, hlen;
	__u8 nh;

	if (len < off + 40 || bpf_skb_load_bytes(skb, off, h, 40))
		return;
	set(p, NWF_F_L3, 6);
	set(p, NWF_F_DSCP, ((be16(h) >> 4) & 0xff) >> 2);
	set128(p, NWF_F_IP6_SRC, be64(h + 8), be64(h + 16));
	set128(p, NWF_F_IP6_DST, be64(h + 24), be64(h + 32));
	set(p, NWF_F_FRAG, 0);
	nh = h[6];
	o = off + 40;
	for (n = 0; n <= IP6_MAX_EXT; n++) {
		if (nh == IP6_AH && !has(p, NWF_F_L34PROTO))
			set(p, NWF_F_L34PROTO, IP6_AH); /* iptables-nft stops here */
		if (!ip6_ext(nh)) {
			set(p, NWF_F_L4PROTO, nh);
			if (!has(p, NWF_F_L34PROTO))
				set(p, NWF_F_L34PROTO, nh);
			parse_l4(skb, p, nh, IPPROTO_ICMPV6, o, len);
			return;
		}
		if (n == IP6_MAX_EXT || len < o + 2 || bpf_skb_load_bytes(skb, o, e, 2))
			return;
		if (nh == IP6_FRAGMENT)
			hlen = 8;
		else if (nh == IP6_AH)
			hlen = (e[1] + 2) * 4;
		else
			hlen = (e[1] + 1) * 8;
		if (len < o + hlen)
			return;
		if (nh == IP6_FRAGMENT) {
			if (bpf_skb_load_bytes(skb, o, e, 8))
				return;
			p->frag_id = be32(e + 4);
			p->frag_proto = e[0];
			if (be16(e + 2) & 0xfff8) {
				set(p, NWF_F_FRAG, 1);
				set(p, NWF_F_L4PROTO, e[0]);
				if (!has(p, NWF_F_L34PROTO))
					set(p, NWF_F_L34PROTO, e[0]);
				p->frag = NWF_PF_LATER;
				return;
			}
			if (e[3] & 1)
				p->frag = NWF_PF_FIRST;
		}
		nh = e[0];
		o += hlen;
	}
}

/* nwf_parse fills the per-CPU scratch with skb's fields. Global, so the
 * verifier checks it once. Returns 0, or -1 without scratch. */
__noinline int nwf_parse(struct __sk_buff *skb)
{
	__u32 k = 0, len, type, off = ETH_HLEN;
	struct nwf_pkt *p;
	__u8 eth[ETH_HLEN], tag[4];

	p = bpf_map_lookup_elem(&nwf_scratch, &k);
	if (!p) /* NULL: the scratch map has no entry 0; cannot happen */
		return -1;
	/* Values are read only where present says so: clear just the bits. */
	p->present = 0;
	p->tcpopt[0] = p->tcpopt[1] = p->tcpopt[2] = p->tcpopt[3] = 0;
	p->tcpopt_ok = 0;
	p->frag = 0;
	p->frag_proto = 0;
	p->frag_id = 0;
	p->l4off = 0;
	len = skb->len;
	p->len = len;
	if (len < ETH_HLEN || bpf_skb_load_bytes(skb, 0, eth, ETH_HLEN))
		return 0;
	set(p, NWF_F_DSTMAC, be48(eth));
	set(p, NWF_F_SRCMAC, be48(eth + 6));
	type = be16(eth + 12);
	if (skb->vlan_present) {
		/* The outer tag is in skb metadata (always so at ingress). */
		set(p, NWF_F_ETHPROTO, ETH_P_8021Q);
		set(p, NWF_F_VLAN_ID, skb->vlan_tci & 0x0fff);
		set(p, NWF_F_VLAN_ENCAP, type);
	} else if ((type == ETH_P_8021Q || type == ETH_P_8021AD) && len >= ETH_HLEN + 4 &&
		   !bpf_skb_load_bytes(skb, ETH_HLEN, tag, 4)) {
		set(p, NWF_F_ETHPROTO, ETH_P_8021Q);
		set(p, NWF_F_VLAN_ID, be16(tag) & 0x0fff);
		set(p, NWF_F_VLAN_ENCAP, be16(tag + 2));
		off += 4;
	} else {
		set(p, NWF_F_ETHPROTO, type);
		switch (type) {
		case ETH_P_ARP:
		case ETH_P_RARP:
			parse_arp(skb, p, off, len);
			break;
		case ETH_P_IP:
			parse_ip4(skb, p, off, len);
			break;
		case ETH_P_IPV6:
			parse_ip6(skb, p, off, len);
			break;
		}
	}
	parse_stp(skb, p, off, len);
	return 0;
}

/* ---- Interpreter ----------------------------------------------------- */

static __always_inline int le128(__u64 x0, __u64 x1, __u64 y0, __u64 y1)
{
	return x0 < y0 || (x0 == y0 && x1 <= y1);
}

/* cond_true evaluates one checked condition with values a and b. */
static __always_inline int cond_true(const struct nwf_cond *c, const struct nwf_pkt *p, __u64 a0,
				     __u64 a1, __u64 b0, __u64 b1)
{
	__u32 f = c->field, present;
	__u64 v0, v1;
	int res;

	if (c->op == NWF_OP_TCPOPT) {
		present = p->tcpopt_ok;
		res = a0 == 0 && a1 < 256 && ((p->tcpopt[(a1 >> 6) & 3] >> (a1 & 63)) & 1);
	} else {
		if (f >= NWF_F_MAX)
			return 0; /* checked by nwf_match; keeps the verifier sure */
		present = has(p, f);
		v0 = p->val[f][0];
		v1 = p->val[f][1];
		switch (c->op) {
		case NWF_OP_EQ:
			res = (v0 & b0) == a0 && (v1 & b1) == a1;
			break;
		case NWF_OP_RANGE:
			res = le128(a0, a1, v0, v1) && le128(v0, v1, b0, b1);
			break;
		default: /* NWF_OP_ANYBIT */
			res = (v0 & a0) != 0 || (v1 & a1) != 0;
		}
	}
	if (!present)
		return 0;
	return res != !!(c->flags & NWF_CF_NEG);
}

/* nwf_conds reports whether every condition of entry g holds, with the
 * instance whose values start at nwf_vals[vfirst] (entries without
 * variables ignore vfirst). 1: all true, 0: one false, -1: malformed. */
__noinline int nwf_conds(__u32 g, __u32 vfirst)
{
	const struct nwf_rule *e;
	const struct nwf_cond *c;
	const struct nwf_cval *v;
	struct nwf_pkt *p;
	__u32 k = 0, i, vi;
	__u64 a0, a1, b0, b1;

	e = bpf_map_lookup_elem(&nwf_rules, &g);
	p = bpf_map_lookup_elem(&nwf_scratch, &k);
	if (!e || !p) /* NULL: g outside nwf_rules (checked by the caller) */
		return -1;
	for (i = 0; i < NWF_MAX_CONDS; i++) {
		if (i >= e->ncond)
			break;
		c = &e->cond[i];
		a0 = c->a[0];
		a1 = c->a[1];
		b0 = c->b[0];
		b1 = c->b[1];
		if (c->flags & NWF_CF_VAR) {
			vi = vfirst + c->var;
			v = bpf_map_lookup_elem(&nwf_vals, &vi);
			if (!v) /* NULL: the instance runs past nwf_vals */
				return -1;
			a0 = v->a[0];
			a1 = v->a[1];
			b0 = v->b[0];
			b1 = v->b[1];
		}
		if (!cond_true(c, p, a0, a1, b0, b1))
			return 0;
	}
	return 1;
}

/* nwf_match reports whether entry g matches, for any instance when it has
 * variables (vbase: the binding's nwf_vidx base). Every condition is checked
 * first, so a malformed entry is an error whatever the frame, as in the
 * reference evaluator. 1: match, 0: no match, -1: malformed. */
__noinline int nwf_match(__u32 g, __u32 vbase)
{
	const struct nwf_rule *e;
	const struct nwf_cond *c;
	const struct nwf_vidx *x;
	__u32 i, nvar = 0, ncond, first, count, slot;
	int r;

	e = bpf_map_lookup_elem(&nwf_rules, &g);
	if (!e) /* NULL: g outside nwf_rules (checked by the caller) */
		return -1;
	ncond = e->ncond;
	if (ncond > NWF_MAX_CONDS)
		return -1;
	for (i = 0; i < NWF_MAX_CONDS; i++) {
		if (i >= ncond)
			break;
		c = &e->cond[i];
		if (c->flags & ~(NWF_CF_NEG | NWF_CF_VAR))
			return -1;
		if ((c->flags & NWF_CF_VAR) && c->var >= e->nvar)
			return -1;
		if (c->op > NWF_OP_TCPOPT)
			return -1;
		if (c->op != NWF_OP_TCPOPT && c->field >= NWF_F_MAX)
			return -1;
		if (c->flags & NWF_CF_VAR)
			nvar++;
	}
	if (nvar != e->nvar)
		return -1;
	if (nvar == 0)
		return nwf_conds(g, 0);
	slot = vbase + e->vslot;
	x = bpf_map_lookup_elem(&nwf_vidx, &slot);
	if (!x) /* NULL: the slot runs past nwf_vidx */
		return -1;
	first = x->first;
	count = x->count;
	if (count > NWF_MAX_INSTANCES)
		return -1;
	for (i = 0; i < NWF_MAX_INSTANCES; i++) {
		if (i >= count)
			break;
		r = nwf_conds(g, first + i * nvar);
		if (r)
			return r;
	}
	return 0;
}

/* A stage being run by bpf_loop. */
struct nwf_run {
	__u32 start;  /* stage's first entry in nwf_rules */
	__u32 len;    /* stage's entries */
	__u32 vbase;  /* binding's nwf_vidx base */
	__u32 bytes;  /* frame length, for the rule counters */
	__u32 pc;     /* current entry, relative to the stage */
	__s32 ret;    /* return point, -1 in the root chain */
	__u32 steps;  /* entries executed, all stages */
	__u32 index;  /* deciding entry, NWF_NO_ENTRY */
	__u32 rule;   /* its rule id */
	__u8 stage;   /* enum nwf_stage */
	__u8 verdict; /* enum nwf_verdict, NWF_RUN_GOING while running */
	__u8 action;  /* the deciding entry's action */
	__u8 dflt;    /* no rule decided */
};

#define NWF_RUN_GOING 0xff

static __always_inline long decide(struct nwf_run *r, __u8 verdict, const struct nwf_rule *e,
				   __u8 dflt)
{
	r->verdict = verdict;
	r->dflt = dflt;
	if (e) {
		r->index = r->pc;
		r->rule = e->id;
		r->action = e->action;
	} else {
		r->index = NWF_NO_ENTRY;
		r->rule = 0;
		r->action = NWF_ACT_ACCEPT;
	}
	return 1; /* stop bpf_loop */
}

static __always_inline long fail(struct nwf_run *r, const struct nwf_rule *e)
{
	return decide(r, NWF_VERDICT_ERROR, e, 0);
}

/* hit counts a frame on entry g (its conditions were true). */
static __always_inline void hit(__u32 g, __u32 bytes)
{
	struct nwf_count *n = bpf_map_lookup_elem(&nwf_rule_stats, &g);

	if (!n) /* NULL: g outside the map; the entry itself was found */
		return;
	n->packets++;
	n->bytes += bytes;
}

/* back leaves a sub-chain (or passes the stage in the root chain). */
static __always_inline long back(struct nwf_run *r, const struct nwf_rule *e, __u8 dflt)
{
	if (r->ret < 0)
		return decide(r, NWF_VERDICT_PASS, e, dflt);
	r->pc = r->ret;
	r->ret = -1;
	return 0;
}

/* nwf_step executes one entry of the stage (bpf_loop callback). */
static long nwf_step(__u32 iter, void *ctx)
{
	struct nwf_run *r = ctx;
	const struct nwf_rule *e;
	__u32 g;
	int m;

	if (r->pc >= r->len) {
		if (r->ret >= 0) { /* a sub-chain ran off the end of the stage */
			decide(r, NWF_VERDICT_ERROR, 0, 0);
			r->index = r->pc; /* where it ran off, as the reference says */
			return 1;
		}
		return decide(r, NWF_VERDICT_PASS, 0, 1);
	}
	r->steps++;
	g = r->start + r->pc;
	e = bpf_map_lookup_elem(&nwf_rules, &g);
	if (!e) /* NULL: the stage runs past nwf_rules */
		return fail(r, 0);
	switch (e->kind) {
	case NWF_RK_MATCH:
		m = nwf_match(g, r->vbase);
		if (m < 0)
			return fail(r, e);
		if (!m) {
			r->pc++;
			return 0;
		}
		hit(g, r->bytes);
		switch (e->action) {
		case NWF_ACT_ACCEPT:
			return decide(r, NWF_VERDICT_PASS, e, 0);
		case NWF_ACT_DROP:
			return decide(r, NWF_VERDICT_DROP, e, 0);
		case NWF_ACT_REJECT:
			return decide(
				r, r->stage == NWF_STAGE_L2 ? NWF_VERDICT_DROP : NWF_VERDICT_REJECT,
				e, 0);
		case NWF_ACT_RETURN:
			if (r->stage == NWF_STAGE_L34)
				return decide(r, NWF_VERDICT_PASS, e, 0);
			return back(r, e, 0);
		case NWF_ACT_CONTINUE:
			if (r->stage == NWF_STAGE_L34)
				return fail(r, e);
			r->pc++;
			return 0;
		}
		return fail(r, e);
	case NWF_RK_JUMP:
		if (r->stage == NWF_STAGE_L34 || r->ret >= 0)
			return fail(r, e);
		if (e->target <= r->pc || e->target >= r->len)
			return fail(r, e);
		m = nwf_match(g, r->vbase);
		if (m < 0)
			return fail(r, e);
		if (!m) {
			r->pc++;
			return 0;
		}
		hit(g, r->bytes);
		r->ret = r->pc + 1;
		r->pc = e->target;
		return 0;
	case NWF_RK_CHAIN_END:
		if (e->action != NWF_ACT_ACCEPT && e->action != NWF_ACT_RETURN)
			return fail(r, e);
		hit(g, r->bytes);
		if (e->action == NWF_ACT_ACCEPT || r->stage == NWF_STAGE_L34)
			return decide(r, NWF_VERDICT_PASS, e, 1);
		return back(r, e, 1);
	}
	return fail(r, e);
}

/* run_stage runs one stage of the ruleset and leaves its outcome in r. */
static __always_inline void run_stage(struct nwf_run *r, const struct nwf_ruleset *rs, __u8 dir,
				      __u8 stage)
{
	r->start = rs->start[dir & 1][stage & 1];
	r->len = rs->len[dir & 1][stage & 1];
	r->stage = stage;
	r->pc = 0;
	r->ret = -1;
	r->verdict = NWF_RUN_GOING;
	bpf_loop(NWF_MAX_STEPS, nwf_step, r, 0);
	if (r->verdict == NWF_RUN_GOING) /* step budget exhausted */
		fail(r, 0);
}

/* ---- Verdicts ------------------------------------------------------- */

/*
 * nwf_drop is the one way out for a dropped frame: it counts the drop by
 * reason and direction and returns the TC verdict, TC_ACT_OK for a binding
 * in shadow mode.
 */
static __always_inline int nwf_drop(struct __sk_buff *skb, __u8 mode, __u8 dir, __u8 reason)
{
	__u32 k = (__u32)reason * NWF_DIR_MAX + (dir & 1);
	struct nwf_drop_count *c = bpf_map_lookup_elem(&nwf_drop_stats, &k);
	int shadow = mode == NWF_MODE_SHADOW;

	if (c) { /* NULL: reason out of range; the enum keeps it in */
		if (shadow) {
			c->shadow_packets++;
			c->shadow_bytes += skb->len;
		} else {
			c->packets++;
			c->bytes += skb->len;
		}
	}
	return shadow ? TC_ACT_OK : TC_ACT_SHOT;
}

static __always_inline void trace(const struct nwf_binding *b, const struct nwf_run *r, __u8 dir,
				  __u8 verdict, __u8 reason, __u8 frag, __u8 fast)
{
	__u32 k = 0;
	struct nwf_trace *t;

	if (!nwf_cfg_trace)
		return;
	t = bpf_map_lookup_elem(&nwf_trace, &k);
	if (!t) /* NULL: the trace map has no entry 0; cannot happen */
		return;
	t->seq++;
	t->binding = b->id;
	t->dir = dir;
	t->verdict = verdict;
	t->reason = reason;
	t->frag = frag;
	t->fast = fast;
	t->steps = r->steps;
	t->stage = r->stage;
	t->index = r->index;
	t->entry = r->index == NWF_NO_ENTRY ? NWF_NO_ENTRY : r->start + r->index;
	t->rule = r->rule;
	t->action = r->action;
	t->dflt = r->dflt;
}

static __always_inline void frag_key(struct nwf_frag_key *k, const struct nwf_pkt *p, __u32 ifindex,
				     __u8 dir)
{
	__u32 src = p->val[NWF_F_L3][1] == 4 ? NWF_F_IP4_SRC : NWF_F_IP6_SRC;

	__builtin_memset(k, 0, sizeof(*k));
	k->ifindex = ifindex;
	k->dir = dir;
	k->l3 = p->val[NWF_F_L3][1];
	k->proto = p->frag_proto;
	k->id = p->frag_id;
	k->src[0] = p->val[src][0];
	k->src[1] = p->val[src][1];
	k->dst[0] = p->val[src + 1][0];
	k->dst[1] = p->val[src + 1][1];
}

#include "reject.h"
#include "conntrack.h"

/* fast_path takes the L3/L4 verdict of an ESTABLISHED flow from its cache:
 * entry g accepted the flow's frames in this direction under the binding's
 * current gen. The entry counts the frame as if it had run. */
static __always_inline void fast_path(struct nwf_run *r, const struct nwf_ruleset *rs, __u8 dir,
				      __u32 g)
{
	const struct nwf_rule *e;

	r->stage = NWF_STAGE_L34;
	r->start = rs->start[dir & 1][NWF_STAGE_L34];
	r->verdict = NWF_VERDICT_PASS;
	r->index = NWF_NO_ENTRY;
	r->rule = 0;
	r->action = NWF_ACT_ACCEPT;
	r->dflt = 1;
	flow_count(NWF_FC_FASTPATH);
	if (g == NWF_NO_ENTRY)
		return;
	hit(g, r->bytes);
	r->index = g - r->start;
	e = bpf_map_lookup_elem(&nwf_rules, &g);
	if (!e) /* NULL: g past nwf_rules; it was in range when cached */
		return;
	r->rule = e->id;
	r->action = e->action;
	r->dflt = e->kind == NWF_RK_CHAIN_END;
}

static __always_inline int classify(struct __sk_buff *skb, __u8 hook)
{
	struct nwf_run r = {.index = NWF_NO_ENTRY};
	struct nwf_frag_key fk;
	struct nwf_frag_val fv = {}, *fvp;
	const struct nwf_ruleset *rs;
	struct nwf_binding *bp, b;
	struct nwf_flow *f;
	struct nwf_ct_val *e;
	struct nwf_pkt *p;
	__u32 ifindex = skb->ifindex, k = 0, cached;
	__u64 now;
	__u8 dir, reason, fast = 0;

	bp = bpf_map_lookup_elem(&nwf_bindings, &ifindex);
	if (!bp) /* NULL: not a guest interface, nwbpf does not filter it */
		return TC_ACT_OK;
	b = *bp;
	dir = hook == b.out_hook ? NWF_DIR_OUT : NWF_DIR_IN;
	if (nwf_parse(skb) < 0)
		return nwf_drop(skb, b.mode, dir, NWF_DROP_INTERNAL);
	p = bpf_map_lookup_elem(&nwf_scratch, &k);
	if (!p) /* NULL: no scratch entry; nwf_parse has just used it */
		return nwf_drop(skb, b.mode, dir, NWF_DROP_INTERNAL);
	rs = bpf_map_lookup_elem(&nwf_rulesets, &b.ruleset);
	if (!rs) { /* NULL: the binding names a ruleset that is not there */
		trace(&b, &r, dir, NWF_VERDICT_DROP, NWF_DROP_NO_RULESET, 0, 0);
		return nwf_drop(skb, b.mode, dir, NWF_DROP_NO_RULESET);
	}
	r.vbase = b.vidx;
	r.bytes = skb->len;

	run_stage(&r, rs, dir, NWF_STAGE_L2);
	if (r.verdict != NWF_VERDICT_PASS) {
		reason = r.verdict == NWF_VERDICT_DROP ? NWF_DROP_L2 : NWF_DROP_MALFORMED;
		trace(&b, &r, dir, r.verdict, reason, 0, 0);
		return nwf_drop(skb, b.mode, dir, reason);
	}

	now = bpf_ktime_get_ns(); /* the frame's one clock read */
	if (p->frag & NWF_PF_LATER) {
		/* No L4 header: the first fragment's verdict stands. */
		frag_key(&fk, p, ifindex, dir);
		fvp = bpf_map_lookup_elem(&nwf_frags, &fk);
		r.stage = NWF_STAGE_L34;
		r.index = NWF_NO_ENTRY;
		r.rule = 0;
		r.action = NWF_ACT_ACCEPT;
		r.dflt = 0;
		/* NULL: first fragment unseen (or evicted); drop */
		if (fvp && fvp->expires > now && fvp->verdict == NWF_VERDICT_PASS) {
			trace(&b, &r, dir, NWF_VERDICT_PASS, 0, 1, 0);
			return TC_ACT_OK;
		}
		trace(&b, &r, dir, NWF_VERDICT_DROP, NWF_DROP_FRAGMENT, 1, 0);
		return nwf_drop(skb, b.mode, dir, NWF_DROP_FRAGMENT);
	}

	/* The connection state is an input of the L3/L4 stage. */
	if (nwf_ct_prepare(skb, ifindex) < 0)
		return nwf_drop(skb, b.mode, dir, NWF_DROP_INTERNAL);
	f = bpf_map_lookup_elem(&nwf_flow_scratch, &k);
	if (!f) /* NULL: no scratch entry; nwf_ct_prepare has just used it */
		return nwf_drop(skb, b.mode, dir, NWF_DROP_INTERNAL);
	e = ct_lookup(f, now);
	cached = ct_cached(e, f, &b);
	if (cached != NWF_NO_CACHE) {
		fast_path(&r, rs, dir, cached);
		fast = 1;
	} else {
		run_stage(&r, rs, dir, NWF_STAGE_L34);
	}
	if (p->frag & NWF_PF_FIRST) {
		frag_key(&fk, p, ifindex, dir);
		fv.expires = now + NWF_FRAG_TIMEOUT_NS;
		fv.verdict = r.verdict == NWF_VERDICT_PASS ? NWF_VERDICT_PASS : NWF_VERDICT_DROP;
		bpf_map_update_elem(&nwf_frags, &fk, &fv, BPF_ANY);
	}
	switch (r.verdict) {
	case NWF_VERDICT_PASS:
		/* Cache an ESTABLISHED frame's verdict when the program allows. */
		cached = NWF_NO_CACHE;
		if (!fast && f->state == NWF_CT_ESTABLISHED && (b.flags & NWF_BF_CT_CACHE))
			cached = r.index == NWF_NO_ENTRY ? NWF_NO_ENTRY : r.start + r.index;
		if (ct_commit(e, f, dir, now, b.gen, cached) < 0) {
			trace(&b, &r, dir, NWF_VERDICT_DROP, NWF_DROP_CONNTRACK, 0, fast);
			return nwf_drop(skb, b.mode, dir, NWF_DROP_CONNTRACK);
		}
		trace(&b, &r, dir, NWF_VERDICT_PASS, 0, 0, fast);
		return TC_ACT_OK;
	case NWF_VERDICT_DROP:
		trace(&b, &r, dir, NWF_VERDICT_DROP, NWF_DROP_L34, 0, 0);
		return nwf_drop(skb, b.mode, dir, NWF_DROP_L34);
	case NWF_VERDICT_REJECT:
		trace(&b, &r, dir, NWF_VERDICT_REJECT, NWF_DROP_REJECT, 0, 0);
		if (nwf_drop(skb, b.mode, dir, NWF_DROP_REJECT) == TC_ACT_OK)
			return TC_ACT_OK; /* shadow mode */
		return nwf_reject(skb, hook);
	}
	trace(&b, &r, dir, NWF_VERDICT_ERROR, NWF_DROP_MALFORMED, 0, 0);
	return nwf_drop(skb, b.mode, dir, NWF_DROP_MALFORMED);
}

SEC("tc")
int nwf_ingress(struct __sk_buff *skb)
{
	return classify(skb, NWF_HOOK_INGRESS);
}

SEC("tc")
int nwf_egress(struct __sk_buff *skb)
{
	return classify(skb, NWF_HOOK_EGRESS);
}

/* nwf_empty is the benchmark's baseline: the cost of running any program. */
SEC("tc")
int nwf_empty(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}
