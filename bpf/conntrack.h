/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * conntrack.h: conntrack-lite, part of bpf/classifier.c (included once,
 * after its maps and parser). It gives a frame the state Linux conntrack
 * would report to iptables' -m conntrack --ctstate/--ctdir, before the L3/L4
 * stage runs, and records the frame in its flow once the classifier passed
 * it (nf_conntrack confirms an entry only for a packet that leaves the stack
 * accepted). docs/dataplane.md describes the behaviour.
 *
 * API:
 *   nwf_ct_prepare(skb, ifindex)  builds the frame's keys in nwf_flow_scratch
 *   nwf_ct_decide(found, ...)     the frame's state, CT_STATE/DIR, pending op
 *   nwf_ct_tcp(d, estate, eflags) a TCP segment against its flow: state table,
 *                                 RST checks and nwf_ct_window
 *   nwf_ct_window(d, state, idx)  nf_conntrack's tcp_in_window on the flow's
 *                                 TCP data in nwf_flow_scratch
 *   ct_lookup(f, now)             finds the flow (NULL: none), decides
 *   ct_cached(e, f, b)            the flow's cached L3/L4 entry, or NWF_NO_CACHE
 *   ct_commit(e, f, ...)          records a passed frame; 0, or -1 if the new
 *                                 flow could not be stored (drop the frame)
 *   nwf_ct_timeout(...)           a flow's timeout in ns
 *   flow_count(c)                 bumps an nwf_flow_stats counter
 */

/* Frame kinds nwf_ct_prepare reports. */
enum {
	CTK_NONE = 0,	   /* not tracked: no IP, or a non-first fragment */
	CTK_INVALID = 1,   /* INVALID without a lookup */
	CTK_UNTRACKED = 2, /* ICMPv6 ND/MLD: no state */
	CTK_FLOW = 3,	   /* key: ORIGINAL, rkey: REPLY; may create a flow */
	CTK_QUERY = 4,	   /* ICMP query: key only, ORIGINAL; may create */
	CTK_ANSWER = 5,	   /* ICMP answer: key (the query's) only, REPLY */
	CTK_ERROR = 6,	   /* ICMP error: the quoted packet's flow, RELATED */
};

/* Lookups a frame may make (nwf_flow.look). */
#define CTL_KEY 0x01
#define CTL_RKEY 0x02

/* TCP flag sets, as nf_conntrack's get_conntrack_index. */
enum {
	TCP_SYN_SET = 0,
	TCP_SYNACK_SET = 1,
	TCP_FIN_SET = 2,
	TCP_ACK_SET = 3,
	TCP_RST_SET = 4,
	TCP_NONE_SET = 5,
};

#define sNO NWF_TCP_NONE
#define sSS NWF_TCP_SYN_SENT
#define sSR NWF_TCP_SYN_RECV
#define sES NWF_TCP_ESTABLISHED
#define sFW NWF_TCP_FIN_WAIT
#define sCW NWF_TCP_CLOSE_WAIT
#define sLA NWF_TCP_LAST_ACK
#define sTW NWF_TCP_TIME_WAIT
#define sCL NWF_TCP_CLOSE
#define sS2 NWF_TCP_SYN_SENT2
#define sIV 0x0e /* invalid: the frame is INVALID, the flow unchanged */
#define sIG 0x0f /* ignored: the flow unchanged, state as it is */

/* nf_conntrack_proto_tcp.c's tcp_conntracks[dir][flag set][state]: the
 * state a frame moves its flow to (no window tracking: see the docs). */
static const __u8 tcp_next[2][6][NWF_TCP_MAX] = {
	{
		/* ORIGINAL  sNO  sSS  sSR  sES  sFW  sCW  sLA  sTW  sCL  sS2 */
		/* syn */ {sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2},
		/* synack */ {sIV, sIV, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR},
		/* fin */ {sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV},
		/* ack */ {sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV},
		/* rst */ {sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL},
		/* none */ {sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV},
	},
	{
		/* REPLY     sNO  sSS  sSR  sES  sFW  sCW  sLA  sTW  sCL  sS2 */
		/* syn */ {sIV, sS2, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sS2},
		/* synack */ {sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR},
		/* fin */ {sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV},
		/* ack */ {sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG},
		/* rst */ {sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL},
		/* none */ {sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV},
	},
};

/* Working data of one frame (per-CPU nwf_flow_scratch). Internal. */
struct nwf_flow {
	struct nwf_ct_key key;	/* the frame's orientation (see CTK_*) */
	struct nwf_ct_key rkey; /* key reversed */
	__u8 kind;		/* CTK_* */
	__u8 look;		/* CTL_* */
	__u8 kdir;		/* enum nwf_ct_dir of a key hit (rkey: the other) */
	__u8 tcpidx;		/* TCP flag set, CTK_FLOW over TCP */
	/* Filled by nwf_ct_decide: */
	__u8 state; /* NWF_CT_* reported */
	__u8 dir;   /* enum nwf_ct_dir reported, 0: no flow */
	__u8 op;    /* CTO_*: what ct_commit does if the frame passes */
	__u8 next;  /* CTO_UPDATE/CREATE over TCP: the new TCP state */
	__u8 found; /* CTF_*: under which key the flow was found */
	__u8 upd;   /* CTU_*: how CTO_UPDATE treats the flow */
	/* The TCP segment (CTK_FLOW over TCP), read by nwf_ct_prepare: */
	__u8 th;     /* flags */
	__u8 opt;    /* NWF_CTW_WSCALE, NWF_CTW_SACK_PERM: the SYN options it has */
	__u8 wscale; /* its window scale option, at most 14 */
	__u8 _pad;
	__u16 win; /* its window field */
	__u32 seq;
	__u32 ack;
	__u32 sack; /* ack raised to the highest SACK block edge, as tcp_sack */
	__u32 end;  /* seq + data length, + 1 for SYN and for FIN */
	/* The flow's TCP data: copied in by ct_lookup, moved on by
	 * nwf_ct_decide, written back by ct_commit. */
	struct nwf_ct_tcp tcp;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct nwf_flow);
} nwf_flow_scratch SEC(".maps");

/* tcp_move looks up tcp_next with bounds the verifier can see. */
static __always_inline __u8 tcp_move(__u32 reply, __u32 idx, __u32 state)
{
	if (idx > TCP_NONE_SET)
		idx = TCP_NONE_SET;
	if (state >= NWF_TCP_MAX)
		state = sCL;
	return tcp_next[reply & 1][idx][state];
}

static __always_inline void flow_count(__u32 c)
{
	__u64 *n = bpf_map_lookup_elem(&nwf_flow_stats, &c);

	if (n) /* NULL: counter out of range; the enum keeps it in */
		(*n)++;
}

static __always_inline void ct_reverse(struct nwf_ct_key *r, const struct nwf_ct_key *k)
{
	*r = *k;
	r->sport = k->dport;
	r->dport = k->sport;
	r->src[0] = k->dst[0];
	r->src[1] = k->dst[1];
	r->dst[0] = k->src[0];
	r->dst[1] = k->src[1];
}

/* ICMP queries nf_conntrack tracks (its valid_new). */
static __always_inline int icmp_is_query(__u8 l3, __u8 t)
{
	if (l3 == 4)
		return t == 8 || t == 13 || t == 15 || t == 17;
	return t == 128 || t == 139;
}

/* The query an answer type answers (nf_conntrack's invmap), 0 when the type
 * is no answer (no query type is 0). */
static __always_inline __u8 icmp_query_of(__u8 l3, __u8 t)
{
	if (l3 == 4)
		return t == 0 ? 8 : t == 14 ? 13 : t == 16 ? 15 : t == 18 ? 17 : 0;
	return t == 129 ? 128 : t == 140 ? 139 : 0;
}

static __always_inline int icmp_is_error(__u8 l3, __u8 t)
{
	if (l3 == 4)
		return t == 3 || t == 4 || t == 5 || t == 11 || t == 12;
	return t >= 1 && t <= 4;
}

/* ICMPv6 types nf_conntrack leaves untracked (noct_valid_new). */
static __always_inline int icmp6_untracked(__u8 t)
{
	return (t >= 130 && t <= 137) || t == 143;
}

/* tcp_error's tcp_valid_flags: FIN SYN RST ACK URG (PSH, ECE, CWR aside). */
static __always_inline int tcp_flags_valid(__u8 f)
{
	f &= 0x37;
	return f == 0x02 || f == 0x22 || f == 0x12 || f == 0x04 || f == 0x14 || f == 0x11 ||
	       f == 0x31 || f == 0x10 || f == 0x30;
}

static __always_inline __u8 tcp_index(__u8 f)
{
	if (f & 0x04)
		return TCP_RST_SET;
	if (f & 0x02)
		return (f & 0x10) ? TCP_SYNACK_SET : TCP_SYN_SET;
	if (f & 0x01)
		return TCP_FIN_SET;
	if (f & 0x10)
		return TCP_ACK_SET;
	return TCP_NONE_SET;
}

/*
 * ct_quoted reads the packet an ICMP error quotes (IP header and 8 bytes
 * of L4 header at off) into f's keys. The error must travel back to the
 * quoted packet's sender (outer destination == inner source), as
 * nf_conntrack_inet_error checks. Returns CTK_ERROR or CTK_INVALID.
 */
static __always_inline int ct_quoted(struct __sk_buff *skb, struct nwf_flow *f,
				     const struct nwf_pkt *p, __u32 off)
{
	__u8 h[40], l[8];
	__u32 ihl, len = skb->len;
	__u8 proto, q;

	if (f->key.l3 == 4) {
		if (len < off + 20 || bpf_skb_load_bytes(skb, off, h, 20))
			return CTK_INVALID;
		ihl = (h[0] & 0x0f) * 4;
		if (ihl < 20 || (be16(h + 6) & 0x1fff))
			return CTK_INVALID;
		proto = h[9];
		f->key.src[0] = 0;
		f->key.src[1] = be32(h + 12);
		f->key.dst[0] = 0;
		f->key.dst[1] = be32(h + 16);
	} else {
		if (len < off + 40 || bpf_skb_load_bytes(skb, off, h, 40))
			return CTK_INVALID;
		ihl = 40;
		proto = h[6]; /* no extension header walk in the quote */
		f->key.src[0] = be64(h + 8);
		f->key.src[1] = be64(h + 16);
		f->key.dst[0] = be64(h + 24);
		f->key.dst[1] = be64(h + 32);
		if (ip6_ext(proto))
			return CTK_INVALID;
	}
	if (f->key.src[0] != p->val[f->key.l3 == 4 ? NWF_F_IP4_DST : NWF_F_IP6_DST][0] ||
	    f->key.src[1] != p->val[f->key.l3 == 4 ? NWF_F_IP4_DST : NWF_F_IP6_DST][1])
		return CTK_INVALID;
	f->key.proto = proto;
	off += ihl;
	if (len < off + 8 || bpf_skb_load_bytes(skb, off, l, 8))
		return CTK_INVALID;
	f->kdir = NWF_CTDIR_REPLY; /* a quoted ORIGINAL packet: the error replies */
	f->look = CTL_KEY | CTL_RKEY;
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
		f->key.sport = be16(l);
		f->key.dport = be16(l + 2);
	} else if (proto == (f->key.l3 == 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6)) {
		if (icmp_is_query(f->key.l3, l[0])) {
			f->key.sport = be16(l + 4);
			f->key.dport = l[0];
			f->look = CTL_KEY;
		} else if ((q = icmp_query_of(f->key.l3, l[0]))) {
			/* A quoted answer: its query's flow, in the other
			 * orientation; the error travels the query's way. */
			ct_reverse(&f->rkey, &f->key);
			f->key = f->rkey;
			f->key.sport = be16(l + 4);
			f->key.dport = q;
			f->kdir = NWF_CTDIR_ORIGINAL;
			f->look = CTL_KEY;
		} else {
			return CTK_INVALID;
		}
	}
	ct_reverse(&f->rkey, &f->key);
	return CTK_ERROR;
}

/* Sequence number comparisons modulo 2^32, as the kernel's before/after. */
static __always_inline int before(__u32 a, __u32 b)
{
	return (__s32)(a - b) < 0;
}

static __always_inline int after(__u32 a, __u32 b)
{
	return (__s32)(b - a) < 0;
}

#define TCP_MAX_WSCALE 14
#define TCP_MAXACKWIN 66000 /* nf_conntrack's MAXACKWINCONST */

/* An option list being walked by bpf_loop (ct_tcpopt). */
struct nwf_optwalk {
	__u8 o[64];
	__u32 i;      /* offset of the next option */
	__u32 optlen; /* bytes of options */
	__u32 sack;   /* the acknowledgement, raised to SACK right edges */
	__u8 opt;     /* NWF_CTW_WSCALE, NWF_CTW_SACK_PERM */
	__u8 wscale;
	__u8 sacked; /* the first SACK option was read */
	__u8 _pad;
};

/* opt_step reads one option (bpf_loop callback), as tcp_options and
 * tcp_sack: stop at the end of the list, at a silly or partial option. */
static long opt_step(__u32 n, void *ctx)
{
	struct nwf_optwalk *w = ctx;
	__u32 i = w->i, kind, sz, b, j, edge;

	if (i >= w->optlen || i >= 40)
		return 1;
	kind = w->o[i & 63];
	if (kind == 0) /* end of options */
		return 1;
	if (kind == 1) {
		w->i = i + 1;
		return 0;
	}
	if (w->optlen - i < 2)
		return 1;
	sz = w->o[(i + 1) & 63];
	if (sz < 2 || sz > w->optlen - i)
		return 1;
	if (kind == 4 && sz == 2) {
		w->opt |= NWF_CTW_SACK_PERM;
	} else if (kind == 3 && sz == 3) {
		w->wscale = w->o[(i + 2) & 63];
		if (w->wscale > TCP_MAX_WSCALE)
			w->wscale = TCP_MAX_WSCALE;
		w->opt |= NWF_CTW_WSCALE;
	} else if (kind == 5 && !w->sacked && sz >= 10 && (sz - 2) % 8 == 0) {
		w->sacked = 1; /* tcp_sack reads the first SACK option only */
		for (b = 0; b < 4; b++) {
			if (2 + b * 8 >= sz)
				break;
			j = i + 2 + b * 8 + 4; /* the block's right edge */
			edge = ((__u32)w->o[j & 63] << 24) | ((__u32)w->o[(j + 1) & 63] << 16) |
			       ((__u32)w->o[(j + 2) & 63] << 8) | w->o[(j + 3) & 63];
			if (after(edge, w->sack))
				w->sack = edge;
		}
	}
	w->i = i + sz;
	return 0;
}

/* ct_tcpopt reads the segment's options as nf_conntrack's tcp_options
 * (window scale, SACK permitted) and tcp_sack (the highest right edge of
 * the first SACK option, above the acknowledgement) do. */
static __always_inline void ct_tcpopt(struct __sk_buff *skb, struct nwf_flow *f, __u32 off,
				      __u32 optlen)
{
	struct nwf_optwalk w = {};

	if (optlen == 0 || optlen > 40 || bpf_skb_load_bytes(skb, off, w.o, optlen))
		return;
	/* tcp_sack's fast path: timestamps only, the usual data segment. */
	if (optlen == 12 && w.o[0] == 1 && w.o[1] == 1 && w.o[2] == 8 && w.o[3] == 10)
		return;
	w.optlen = optlen;
	w.sack = f->sack;
	bpf_loop(40, opt_step, &w, 0);
	f->opt = w.opt;
	f->wscale = w.wscale;
	f->sack = w.sack;
}

/*
 * ct_segment reads the TCP segment's numbers into f: sequence,
 * acknowledgement, window, options and the end sequence, whose data
 * length comes from the IP length (Ethernet padding aside, as bridge
 * netfilter trims it). Returns -1 for a segment nf_conntrack's tcp_error
 * calls truncated (data offset under 20 bytes or past the packet).
 */
static __always_inline int ct_segment(struct __sk_buff *skb, struct nwf_flow *f, __u32 l4off,
				      __u8 l3)
{
	__u8 h[20], l[2];
	__u32 len = skb->len, iplen, doff, tcplen;

	f->opt = 0;
	f->wscale = 0;
	if (!l4off || len < l4off + 20 || bpf_skb_load_bytes(skb, l4off, h, 20))
		return -1;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + (l3 == 4 ? 2 : 4), l, 2))
		return -1;
	iplen = be16(l) + (l3 == 4 ? 0 : 40);
	if (iplen && ETH_HLEN + iplen < len && (l3 == 4 || be16(l)))
		len = ETH_HLEN + iplen;
	doff = (h[12] >> 4) * 4;
	tcplen = len - l4off;
	if (doff < 20 || tcplen < doff)
		return -1;
	f->th = h[13];
	f->seq = be32(h + 4);
	f->ack = be32(h + 8);
	f->sack = f->ack;
	f->win = be16(h + 14);
	f->end = f->seq + (tcplen - doff) + ((f->th & 0x02) ? 1 : 0) + ((f->th & 0x01) ? 1 : 0);
	ct_tcpopt(skb, f, l4off + 20, doff - 20);
	return 0;
}

/*
 * nwf_ct_prepare builds the frame's flow keys in nwf_flow_scratch from the
 * parsed frame and returns its CTK_* kind (also in the scratch). Global, so
 * the verifier checks it once. Returns -1 without scratch.
 */
__noinline int nwf_ct_prepare(struct __sk_buff *skb, __u32 ifindex)
{
	struct nwf_flow *f;
	struct nwf_pkt *p;
	__u32 k = 0, src, l4off;
	__u8 l3, proto, t, a, q, id[2];
	int kind;

	p = bpf_map_lookup_elem(&nwf_scratch, &k);
	f = bpf_map_lookup_elem(&nwf_flow_scratch, &k);
	if (!p || !f) /* NULL: a scratch map has no entry 0; cannot happen */
		return -1;
	f->kind = CTK_NONE;
	f->look = 0;
	f->kdir = NWF_CTDIR_ORIGINAL;
	f->tcpidx = TCP_NONE_SET;
	if (!has(p, NWF_F_L3) || (p->frag & NWF_PF_LATER))
		return CTK_NONE;
	l3 = p->val[NWF_F_L3][1];
	src = l3 == 4 ? NWF_F_IP4_SRC : NWF_F_IP6_SRC;
	__builtin_memset(&f->key, 0, sizeof(f->key));
	f->key.ifindex = ifindex;
	f->key.l3 = l3;
	f->key.src[0] = p->val[src & 63][0];
	f->key.src[1] = p->val[src & 63][1];
	f->key.dst[0] = p->val[(src + 1) & 63][0];
	f->key.dst[1] = p->val[(src + 1) & 63][1];
	kind = CTK_INVALID; /* no L4 protocol (IPv6 header chain too long) */
	if (!has(p, NWF_F_L4PROTO))
		goto out;
	proto = p->val[NWF_F_L4PROTO][1];
	/* nf_conntrack finds an IPv6 packet's protocol with ipv6_skip_exthdr,
	 * which gives up at "no next header": such a packet (AH then 59
	 * included) gets no conntrack entry, INVALID to --ctstate. */
	if (l3 == 6 && proto == IP6_NONE)
		goto out;
	f->key.proto = proto;
	kind = CTK_FLOW;
	f->look = CTL_KEY | CTL_RKEY;
	if (proto == IPPROTO_TCP) {
		/* tcp_error: no complete header, or a flag combination no
		 * TCP sends, is INVALID. */
		if (!has(p, NWF_F_TCP_FLAGS) || !tcp_flags_valid(p->val[NWF_F_TCP_FLAGS][1])) {
			kind = CTK_INVALID;
			goto out;
		}
		f->tcpidx = tcp_index(p->val[NWF_F_TCP_FLAGS][1]);
		f->key.sport = p->val[NWF_F_SPORT][1];
		f->key.dport = p->val[NWF_F_DPORT][1];
		if (ct_segment(skb, f, p->l4off, l3)) {
			kind = CTK_INVALID;
			goto out;
		}
	} else if (proto == IPPROTO_UDP) {
		if (!has(p, NWF_F_SPORT)) {
			kind = CTK_INVALID;
			goto out;
		}
		f->key.sport = p->val[NWF_F_SPORT][1];
		f->key.dport = p->val[NWF_F_DPORT][1];
	} else if (proto == (l3 == 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6)) {
		kind = CTK_INVALID;
		l4off = p->l4off;
		if (!has(p, NWF_F_ICMP_TYPE) || !l4off)
			goto out;
		t = p->val[NWF_F_ICMP_TYPE][1];
		if (l3 == 6 && icmp6_untracked(t)) {
			kind = CTK_UNTRACKED;
			goto out;
		}
		if (icmp_is_error(l3, t)) {
			kind = ct_quoted(skb, f, p, l4off + 8);
			goto out;
		}
		a = icmp_is_query(l3, t);
		q = icmp_query_of(l3, t);
		if ((!a && !q) || skb->len < l4off + 6 || bpf_skb_load_bytes(skb, l4off + 4, id, 2))
			goto out; /* not a query nf_conntrack tracks: INVALID */
		f->key.sport = be16(id);
		if (a) {
			f->key.dport = t;
			f->look = CTL_KEY;
			kind = CTK_QUERY;
		} else {
			/* An answer finds its query's flow, reversed. */
			ct_reverse(&f->rkey, &f->key);
			f->key = f->rkey;
			f->key.sport = be16(id);
			f->key.dport = q;
			f->kdir = NWF_CTDIR_REPLY;
			f->look = CTL_KEY;
			kind = CTK_ANSWER;
		}
	}
	ct_reverse(&f->rkey, &f->key);
out:
	f->kind = kind;
	return kind;
}

enum {
	CTO_NONE = 0,	/* nothing to record */
	CTO_CREATE = 1, /* a new flow under key */
	CTO_UPDATE = 2, /* move the flow found on (TCP: to next) and refresh it */
	CTO_REOPEN = 3, /* replace the flow found (closed TCP) by a new one */
	CTO_TOUCH = 4,	/* TCP segment ignored: keep its window data and
			 * SEEN_REPLY, leave state and expiry as they are */
	CTO_DELETE = 5, /* TCP RST before any reply: the flow is removed */
};

/* CTO_UPDATE modifiers (nwf_flow.upd). */
#define CTU_NOREFRESH 0x01 /* a retransmitted SYN does not renew the timeout */

/* Where the frame's flow was found (nwf_ct_decide's found). */
enum {
	CTF_NONE = 0,
	CTF_KEY = 1,
	CTF_RKEY = 2,
};

/* tcp_in_window's outcomes. */
enum {
	WIN_ACCEPT = 0,	 /* in window: the flow moves on */
	WIN_IGNORE = 1,	 /* passes with its state, the flow stays */
	WIN_INVALID = 2, /* INVALID */
};

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_ACK 0x10

/* win_bad is nf_tcp_log_invalid: a liberal sender (picked up mid-stream)
 * is never out of window. */
static __always_inline int win_bad(const struct nwf_ct_side *s, int res)
{
	return (s->flags & NWF_CTW_LIBERAL) ? WIN_ACCEPT : res;
}

/* win_init is tcp_init_sender: the sender's window data from its SYN or
 * SYN-ACK; window scaling only when both SYNs asked for it. */
static __always_inline void win_init(const struct nwf_flow *f, struct nwf_ct_side *s,
				     struct nwf_ct_side *r, __u32 reply)
{
	s->end = f->end;
	s->maxend = f->end;
	s->maxwin = f->win ? f->win : 1;
	s->scale = f->wscale;
	s->flags = (s->flags & NWF_CTW_LIBERAL) | f->opt;
	if (reply && !((s->flags & NWF_CTW_WSCALE) && (r->flags & NWF_CTW_WSCALE))) {
		s->scale = 0;
		r->scale = 0;
	}
}

/*
 * nwf_ct_window is nf_conntrack's tcp_in_window (be_liberal=0) for the
 * segment in nwf_flow_scratch, sent in conntrack direction reply (0, 1) of
 * a flow in TCP state state: it checks the segment against the sender's
 * and the receiver's windows and moves them on in the scratch copy of the
 * flow's TCP data. Returns WIN_*. Global, so the verifier checks it once.
 */
__noinline int nwf_ct_window(__u32 reply, __u32 state)
{
	struct nwf_ct_side *s, *r;
	struct nwf_flow *f;
	__u32 k = 0, seq, ack, sack, end, win, swin, maxack, overshot;
	__u8 th;

	f = bpf_map_lookup_elem(&nwf_flow_scratch, &k);
	if (!f) /* NULL: the scratch map has no entry 0; cannot happen */
		return WIN_INVALID;
	reply &= 1;
	s = &f->tcp.seen[reply];
	r = &f->tcp.seen[reply ^ 1];
	th = f->th;
	seq = f->seq;
	ack = f->ack;
	sack = (r->flags & NWF_CTW_SACK_PERM) ? f->sack : ack;
	end = f->end;
	win = f->win;
	if (s->maxwin == 0) {
		if (th & TH_SYN) {
			win_init(f, s, r, reply);
			if (!(th & TH_ACK)) /* simultaneous open */
				return WIN_ACCEPT;
		} else {
			/* Mid-stream: this side's history is lost. */
			s->end = end;
			swin = win << (s->scale & 15);
			s->maxwin = swin ? swin : 1;
			s->maxend = end + s->maxwin;
			if (r->maxwin == 0) {
				r->end = sack;
				r->maxend = sack;
			} else if (sack == r->end + 1) {
				r->end++; /* an answer to a keepalive */
			}
		}
	} else if ((th & TH_SYN) && after(end, s->end) && (state == sSS || state == sSR)) {
		/* A SYN or SYN-ACK sent again with a higher sequence. */
		win_init(f, s, r, reply);
		if (reply && !(th & TH_ACK))
			return WIN_ACCEPT;
	}
	if (!(th & TH_ACK)) {
		ack = r->end;
		sack = r->end;
	} else if ((th & (TH_ACK | TH_RST)) == (TH_ACK | TH_RST) && ack == 0) {
		ack = r->end; /* stacks that send RST,ACK with ack 0 */
		sack = r->end;
	}
	if ((th & TH_RST) && seq == 0 && state == sSS) {
		seq = s->end; /* a RST answering a SYN */
		end = s->end;
	}
	maxack = s->maxwin > TCP_MAXACKWIN ? s->maxwin : TCP_MAXACKWIN;
	if (!before(seq, s->maxend + 1)) {
		overshot = end - s->maxend + 1;
		if (r->maxwin && after(end, s->end - r->maxwin - 1) &&
		    after(sack, r->end - maxack - 1) && overshot <= r->maxwin &&
		    before(sack, r->end + 1)) {
			/* A little more than the window: passes, and its end
			 * counts so that the peer may acknowledge it. */
			s->end = end;
			s->flags |= NWF_CTW_DATA_UNACK;
			return win_bad(s, WIN_IGNORE);
		}
		return win_bad(s, WIN_INVALID); /* SEQ over the upper bound */
	}
	if (!before(sack, r->end + 1))
		return win_bad(s, WIN_INVALID); /* ACK of data not seen yet */
	if (r->maxwin && !after(end, s->end - r->maxwin - 1))
		return win_bad(s, WIN_IGNORE); /* old data retransmitted */
	if (!after(sack, r->end - maxack - 1))
		return win_bad(s, WIN_IGNORE); /* an ACK delayed too long */
	if (!(th & TH_SYN))
		win <<= s->scale & 15;
	swin = win + (sack - ack);
	if (s->maxwin < swin)
		s->maxwin = swin;
	if (after(end, s->end)) {
		s->end = end;
		s->flags |= NWF_CTW_DATA_UNACK;
	}
	if (th & TH_ACK) {
		if (!(s->flags & NWF_CTW_MAXACK_SET)) {
			s->maxack = ack;
			s->flags |= NWF_CTW_MAXACK_SET;
		} else if (after(ack, s->maxack)) {
			s->maxack = ack;
		}
	}
	if (r->maxwin != 0 && after(end, s->maxend))
		r->maxwin += end - s->maxend;
	if (after(sack + win, r->maxend - 1)) {
		r->maxend = sack + win;
		if (win == 0)
			r->maxend++;
	}
	if (ack == r->end)
		r->flags &= ~NWF_CTW_DATA_UNACK;
	return WIN_ACCEPT;
}

/* tcp_fresh is tcp_new's start of a flow from its first segment: a SYN
 * opens it, any other segment picks it up mid-stream (liberal). */
static __always_inline void tcp_fresh(struct nwf_flow *f, __u8 nx)
{
	struct nwf_ct_side *o = &f->tcp.seen[0];

	__builtin_memset(&f->tcp, 0, sizeof(f->tcp));
	o->end = f->end;
	o->maxwin = f->win ? f->win : 1;
	o->maxend = f->end;
	if (nx == sSS) {
		o->scale = f->wscale;
		o->flags = f->opt;
	} else {
		o->maxend = f->end + o->maxwin;
		o->flags = NWF_CTW_SACK_PERM | NWF_CTW_LIBERAL;
		f->tcp.seen[1].flags = NWF_CTW_SACK_PERM | NWF_CTW_LIBERAL;
	}
	f->tcp.last_index = TCP_NONE_SET;
}

/* The established test of nf_conntrack_tcp_established. */
static __always_inline int tcp_assured(__u32 state, __u32 eflags)
{
	return state == sES && (eflags & NWF_CTF_ASSURED);
}

/* Early-drop states (tcp_can_early_drop): a RST needs no window check. */
static __always_inline int tcp_closing(__u32 state)
{
	return state == sFW || state == sLA || state == sTW || state == sCL || state == sCW;
}

/*
 * nwf_ct_tcp is nf_conntrack_tcp_packet for the segment in
 * nwf_flow_scratch on a flow in TCP state estate with flags eflags
 * (NWF_CTF_*; estate sNO: a new flow, whose TCP data tcp_fresh set), sent
 * in conntrack direction reply: the state table, the ignored segments and
 * their resynchronisation, the RST checks and the window check. It sets
 * f->next and f->upd and returns the CTO_* to record, or -1 for an
 * INVALID segment. Global, so the verifier checks it once.
 */
__noinline int nwf_ct_tcp(__u32 reply, __u32 estate, __u32 eflags)
{
	struct nwf_ct_tcp *t;
	struct nwf_flow *f;
	__u32 k = 0, os, nx, idx, ld, w;

	f = bpf_map_lookup_elem(&nwf_flow_scratch, &k);
	if (!f) /* NULL: the scratch map has no entry 0; cannot happen */
		return -1;
	reply &= 1;
	t = &f->tcp;
	os = estate < NWF_TCP_MAX ? estate : sCL;
	idx = f->tcpidx;
	nx = tcp_move(reply, idx, os);
	f->upd = 0;
	switch (nx) {
	case sSS:
		if (os < sTW)
			break;
		/* A SYN on a closed flow: a new connection if this one was
		 * closed by a FIN or reset from this side; else ignored. */
		if (((t->seen[0].flags | t->seen[1].flags) & NWF_CTW_CLOSE_INIT) ||
		    (t->last_dir == reply && t->last_index == TCP_RST_SET))
			return CTO_REOPEN;
		/* fall through */
	case sIG:
		if (idx == TCP_SYNACK_SET && t->last_index == TCP_SYN_SET && t->last_dir != reply &&
		    f->ack == t->last_end) {
			/* The SYN-ACK answers a SYN ignored before: both
			 * ends are in sync, take that SYN's data. */
			ld = t->last_dir & 1;
			os = sSS;
			nx = sSR;
			t->seen[ld].end = t->last_end;
			t->seen[ld].maxend = t->last_end;
			t->seen[ld].maxwin = t->last_win ? t->last_win : 1;
			t->seen[ld].scale = t->last_wscale;
			t->last_flags &= ~NWF_CTW_CHALLENGE;
			t->seen[ld].flags = t->last_flags;
			t->seen[ld ^ 1].end = 0;
			t->seen[ld ^ 1].maxend = 0;
			t->seen[ld ^ 1].maxwin = 0;
			t->seen[ld ^ 1].maxack = 0;
			t->seen[ld ^ 1].scale = 0;
			t->seen[ld ^ 1].flags &= NWF_CTW_LIBERAL;
			break;
		}
		t->last_index = idx;
		t->last_dir = reply;
		t->last_end = f->end;
		t->last_win = f->win;
		if (idx == TCP_SYN_SET && !reply) {
			t->last_flags = f->opt;
			t->last_wscale = (f->opt & NWF_CTW_WSCALE) ? f->wscale : 0;
			if (os == sLA)
				t->last_flags |= NWF_CTW_CHALLENGE;
		}
		if (os == sSS && idx == TCP_ACK_SET && reply)
			t->last_ack = f->ack; /* a challenge ACK to the SYN? */
		return CTO_TOUCH;
	case sIV:
		return -1;
	case sTW:
		if (os == sLA && idx == TCP_ACK_SET && t->last_dir != reply &&
		    t->last_index == TCP_SYN_SET && (t->last_flags & NWF_CTW_CHALLENGE)) {
			/* A challenge ACK, not the ACK of the last FIN. */
			t->last_flags &= ~NWF_CTW_CHALLENGE;
			return CTO_TOUCH;
		}
		break;
	case sS2:
		t->last_flags |= NWF_CTW_SIMUL_OPEN;
		break;
	case sSR:
		if (reply && idx == TCP_ACK_SET && (t->last_flags & NWF_CTW_SIMUL_OPEN))
			nx = sES;
		break;
	case sCL:
		if (idx != TCP_RST_SET)
			break;
		if (tcp_closing(os))
			goto in_window;
		if ((t->seen[reply ^ 1].flags & NWF_CTW_MAXACK_SET) &&
		    t->last_index != TCP_SYN_SET) {
			if (f->seq == 0 && !tcp_assured(os, eflags))
				break;
			if (before(f->seq, t->seen[reply ^ 1].maxack))
				return -1; /* a RST below what the other side acknowledged */
			if (!tcp_assured(os, eflags) || f->seq == t->seen[reply ^ 1].maxack)
				break;
			if (t->last_index == TCP_ACK_SET && t->last_dir == reply &&
			    f->seq == t->last_end)
				break; /* the RST ends a train of segments */
			nx = os;       /* not exactly in sequence: wait for a challenge ACK */
		}
		if ((((eflags & NWF_CTF_SEEN_REPLY) && t->last_index == TCP_SYN_SET) ||
		     (!(eflags & NWF_CTF_ASSURED) && t->last_index == TCP_ACK_SET)) &&
		    f->ack == t->last_end)
			goto in_window; /* RST to a SYN or ACK let through ignored */
		if (os == sSS && t->last_index == TCP_ACK_SET && t->last_dir == 1 &&
		    f->seq == t->last_ack)
			goto in_window; /* RST after a challenge ACK */
		break;
	}
	w = nwf_ct_window(reply, os);
	if (w == WIN_IGNORE)
		return CTO_TOUCH;
	if (w != WIN_ACCEPT)
		return -1;
in_window:
	t->last_index = idx;
	t->last_dir = reply;
	f->next = nx;
	if (os != nx && nx == sFW)
		t->seen[reply].flags |= NWF_CTW_CLOSE_INIT;
	if (!(eflags & NWF_CTF_SEEN_REPLY)) {
		if (idx == TCP_RST_SET && os != sNO)
			return CTO_DELETE; /* only a reset answered: forget it */
		if (idx == TCP_SYN_SET && os == sSS)
			f->upd = CTU_NOREFRESH;
	}
	return os == sNO ? CTO_CREATE : CTO_UPDATE;
}

/*
 * nwf_ct_decide decides the frame's state as nf_conntrack would, given
 * where its flow was found (CTF_*) and that flow's TCP state and flags:
 * the flow's ORIGINAL packets are NEW until a reply passed, REPLY packets
 * ESTABLISHED, ICMP errors quoting a flow RELATED; TCP segments as
 * nwf_ct_tcp says. It sets CT_STATE and CT_DIR in the parsed frame and
 * leaves in nwf_flow_scratch what ct_commit does if the frame passes.
 * Global, so the verifier checks it once.
 */
__noinline int nwf_ct_decide(__u32 found, __u32 estate, __u32 eflags)
{
	struct nwf_flow *f;
	struct nwf_pkt *p;
	__u32 k = 0;
	int op;
	__u8 d = 0, state = 0, dir = 0;

	p = bpf_map_lookup_elem(&nwf_scratch, &k);
	f = bpf_map_lookup_elem(&nwf_flow_scratch, &k);
	if (!p || !f) /* NULL: a scratch map has no entry 0; cannot happen */
		return -1;
	f->op = CTO_NONE;
	f->next = 0;
	f->upd = 0;
	f->found = found;
	if (found == CTF_KEY)
		d = f->kdir;
	else if (found == CTF_RKEY)
		d = 3 - f->kdir;
	switch (f->kind) {
	case CTK_NONE:
		goto out;
	case CTK_UNTRACKED:
		state = NWF_CT_UNTRACKED;
		goto out;
	case CTK_ERROR:
	case CTK_ANSWER:
		if (!d) {
			state = NWF_CT_INVALID;
			goto out;
		}
		dir = d;
		if (f->kind == CTK_ERROR) {
			state = NWF_CT_RELATED; /* refreshes nothing */
		} else {
			state = NWF_CT_ESTABLISHED;
			f->op = CTO_UPDATE;
		}
		goto out;
	case CTK_FLOW:
	case CTK_QUERY:
		break;
	default: /* CTK_INVALID */
		state = NWF_CT_INVALID;
		goto out;
	}
	if (!d) {
		/* No flow: the frame would start one. TCP: a SYN, or any
		 * ACK (nf_conntrack_tcp_loose=1 picks up a connection
		 * mid-stream). */
		f->op = CTO_CREATE;
		state = NWF_CT_NEW;
		dir = NWF_CTDIR_ORIGINAL;
		if (f->key.proto != IPPROTO_TCP)
			goto out;
		estate = sNO;
		eflags = 0;
	} else if (f->key.proto != IPPROTO_TCP) {
		f->op = CTO_UPDATE;
		goto reported;
	}
	if (!d) {
		if (tcp_move(0, f->tcpidx, sNO) == sIV) {
			state = NWF_CT_INVALID;
			dir = 0;
			f->op = CTO_NONE;
			goto out;
		}
		tcp_fresh(f, tcp_move(0, f->tcpidx, sNO));
		estate = sNO;
	}
	op = nwf_ct_tcp(d == NWF_CTDIR_REPLY, estate, eflags);
	if (op < 0) {
		f->op = CTO_NONE;
		state = NWF_CT_INVALID;
		dir = 0;
		goto out;
	}
	if (op == CTO_REOPEN) {
		/* A SYN reopens a closed connection: a new flow. */
		tcp_fresh(f, sSS);
		op = nwf_ct_tcp(0, sNO, 0);
		f->op = op == CTO_CREATE ? CTO_REOPEN : CTO_NONE;
		state = op == CTO_CREATE ? NWF_CT_NEW : NWF_CT_INVALID;
		dir = op == CTO_CREATE ? NWF_CTDIR_ORIGINAL : 0;
		goto out;
	}
	f->op = op;
	if (op == CTO_CREATE)
		goto out;
reported:
	dir = d;
	state = d == NWF_CTDIR_REPLY || (eflags & NWF_CTF_SEEN_REPLY) ? NWF_CT_ESTABLISHED
								      : NWF_CT_NEW;
out:
	f->state = state;
	f->dir = dir;
	if (f->kind != CTK_NONE)
		set(p, NWF_F_CT_STATE, state);
	if (dir)
		set(p, NWF_F_CT_DIR, dir);
	return 0;
}

static __always_inline struct nwf_ct_val *ct_find(const struct nwf_ct_key *k, __u64 now)
{
	struct nwf_ct_val *e = bpf_map_lookup_elem(&nwf_ct2, k);

	if (e && e->expires <= now) /* expired: as if absent (GC or LRU removes it) */
		return 0;
	return e; /* NULL: no such flow */
}

/* ct_lookup finds the frame's flow (NULL: none) and has nwf_ct_decide
 * decide its state. */
static __always_inline struct nwf_ct_val *ct_lookup(struct nwf_flow *f, __u64 now)
{
	struct nwf_ct_val *e = 0;
	__u32 look = f->look, found = CTF_NONE;

	if (look & CTL_KEY) {
		e = ct_find(&f->key, now);
		found = CTF_KEY;
	}
	if (!e && (look & CTL_RKEY)) {
		e = ct_find(&f->rkey, now);
		found = CTF_RKEY;
	}
	if (!e) {
		nwf_ct_decide(CTF_NONE, 0, 0);
		return 0;
	}
	if (f->key.proto == IPPROTO_TCP)
		f->tcp = e->tcp; /* nwf_ct_decide moves a copy on */
	nwf_ct_decide(found, e->state, e->flags);
	return e;
}

/* nwf_ct_timeout is the timeout of a flow of protocol proto in TCP state
 * state with flags NWF_CTF_*, in ns. Global, so the verifier checks it
 * once. */
__noinline __u64 nwf_ct_timeout(__u32 proto, __u32 state, __u32 flags)
{
	__u32 c = NWF_CTT_GENERIC, u = NWF_CTT_TCP_UNACK;

	if (proto == IPPROTO_TCP) {
		c = state;
		/* nf_conntrack: an unassured flow gets at most UNACK. */
		if (c < NWF_TCP_MAX && !(flags & NWF_CTF_ASSURED) &&
		    nwf_cfg_ct_timeout[c] > nwf_cfg_ct_timeout[u])
			c = u;
	} else if (proto == IPPROTO_UDP) {
		c = (flags & NWF_CTF_SEEN_REPLY) ? NWF_CTT_UDP_STREAM : NWF_CTT_UDP;
	} else if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) {
		c = NWF_CTT_ICMP;
	}
	if (c >= NWF_CTT_MAX)
		c = NWF_CTT_TCP_CLOSE;
	return nwf_cfg_ct_timeout[c];
}

#define NWF_NO_CACHE 0xfffffffeu

/*
 * ct_commit records a frame the classifier passed in its flow: creates the
 * flow, or moves it on and refreshes its expiry. cache is the nwf_rules
 * index of the L3/L4 entry that accepted the frame (NWF_NO_ENTRY: none)
 * when the frame's L3/L4 verdict may be cached for its flow and direction
 * under gen, and NWF_NO_CACHE otherwise. Returns -1 when a new flow could
 * not be stored.
 */
static __always_inline int ct_commit(struct nwf_ct_val *e, struct nwf_flow *f, __u8 dir, __u64 now,
				     __u64 gen, __u32 cache)
{
	struct nwf_ct_val v = {};
	__u8 flags, old, bit, tcp = f->key.proto == IPPROTO_TCP, reply = f->dir == NWF_CTDIR_REPLY;

	switch (f->op) {
	case CTO_REOPEN:
		if (f->found == CTF_RKEY) /* the old flow is in the other orientation */
			bpf_map_delete_elem(&nwf_ct2, &f->rkey);
		/* fall through */
	case CTO_CREATE:
		v.state = f->next;
		v.odir = dir;
		if (tcp)
			v.tcp = f->tcp;
		v.expires = now + nwf_ct_timeout(f->key.proto, v.state, 0);
		if (bpf_map_update_elem(&nwf_ct2, &f->key, &v, BPF_ANY)) {
			flow_count(NWF_FC_INSERT_FAILED);
			return -1;
		}
		flow_count(NWF_FC_INSERT);
		return 0;
	case CTO_DELETE:
		bpf_map_delete_elem(&nwf_ct2, f->found == CTF_RKEY ? &f->rkey : &f->key);
		return 0;
	case CTO_TOUCH:
		if (!e) /* NULL: cannot happen with CTO_TOUCH */
			return 0;
		e->tcp = f->tcp;
		if (reply)
			e->flags |= NWF_CTF_SEEN_REPLY;
		return 0;
	case CTO_UPDATE:
		if (!e) /* NULL: cannot happen with CTO_UPDATE */
			return 0;
		flags = old = e->flags;
		if (reply)
			flags |= NWF_CTF_SEEN_REPLY;
		if (tcp) {
			/* Assured: ESTABLISHED again after a reply was seen. */
			if ((old & NWF_CTF_SEEN_REPLY) && (e->state == sSR || e->state == sES) &&
			    f->next == sES)
				flags |= NWF_CTF_ASSURED;
			e->state = f->next;
			e->tcp = f->tcp;
		}
		if (cache != NWF_NO_CACHE) {
			if (e->gen != gen) {
				e->gen = gen;
				flags &= ~(NWF_CTF_CACHE_ORIG | NWF_CTF_CACHE_REPLY);
			}
			bit = reply ? NWF_CTF_CACHE_REPLY : NWF_CTF_CACHE_ORIG;
			e->cache[reply & 1] = cache;
			flags |= bit;
		}
		e->flags = flags;
		if (f->upd & CTU_NOREFRESH)
			return 0;
		/* Unacknowledged data caps the timeout as an unassured flow. */
		if (tcp && ((f->tcp.seen[0].flags | f->tcp.seen[1].flags) & NWF_CTW_DATA_UNACK))
			flags &= ~NWF_CTF_ASSURED;
		e->expires = now + nwf_ct_timeout(f->key.proto, e->state, flags);
	}
	return 0;
}

/* ct_cached returns the cached L3/L4 entry of the frame's flow and
 * direction (NWF_NO_ENTRY: the stage passed without one), or NWF_NO_CACHE
 * when the L3/L4 stage must run. */
static __always_inline __u32 ct_cached(const struct nwf_ct_val *e, const struct nwf_flow *f,
				       const struct nwf_binding *b)
{
	__u8 reply = f->dir == NWF_CTDIR_REPLY;

	if (!e || f->state != NWF_CT_ESTABLISHED || !(b->flags & NWF_BF_CT_CACHE) ||
	    e->gen != b->gen)
		return NWF_NO_CACHE;
	if (!(e->flags & (reply ? NWF_CTF_CACHE_REPLY : NWF_CTF_CACHE_ORIG)))
		return NWF_NO_CACHE;
	return e->cache[reply & 1];
}
