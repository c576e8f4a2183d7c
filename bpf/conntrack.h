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
	__u8 _pad[7];
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
	CTO_UPDATE = 2, /* refresh the flow found */
	CTO_REOPEN = 3, /* replace the flow found (closed TCP) by a new one */
};

/* Where the frame's flow was found (nwf_ct_decide's found). */
enum {
	CTF_NONE = 0,
	CTF_KEY = 1,
	CTF_RKEY = 2,
};

/*
 * nwf_ct_decide decides the frame's state as nf_conntrack would, given
 * where its flow was found (CTF_*) and that flow's TCP state and flags:
 * the flow's ORIGINAL packets are NEW until a reply passed, REPLY packets
 * ESTABLISHED, ICMP errors quoting a flow RELATED. It sets CT_STATE and
 * CT_DIR in the parsed frame and leaves in nwf_flow_scratch what ct_commit
 * does if the frame passes. Global, so the verifier checks it once.
 */
__noinline int nwf_ct_decide(__u32 found, __u32 estate, __u32 eflags)
{
	struct nwf_flow *f;
	struct nwf_pkt *p;
	__u32 k = 0;
	__u8 d = 0, nx, state = 0, dir = 0;

	p = bpf_map_lookup_elem(&nwf_scratch, &k);
	f = bpf_map_lookup_elem(&nwf_flow_scratch, &k);
	if (!p || !f) /* NULL: a scratch map has no entry 0; cannot happen */
		return -1;
	f->op = CTO_NONE;
	f->next = 0;
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
	if (d) {
		f->op = CTO_UPDATE;
		if (f->key.proto == IPPROTO_TCP) {
			if (estate >= NWF_TCP_MAX)
				estate = sCL;
			nx = tcp_move(d == NWF_CTDIR_REPLY, f->tcpidx, estate);
			if (nx == sIV) {
				f->op = CTO_NONE;
				state = NWF_CT_INVALID;
				goto out;
			}
			if (nx == sSS && (estate == sTW || estate == sCL)) {
				/* A SYN reopens a closed connection: a new flow. */
				f->op = CTO_REOPEN;
				f->next = sSS;
				state = NWF_CT_NEW;
				dir = NWF_CTDIR_ORIGINAL;
				goto out;
			}
			if (nx == sIG) /* the flow stays as it is */
				f->op = CTO_NONE;
			f->next = nx == sIG ? estate : nx;
		}
		dir = d;
		state = d == NWF_CTDIR_REPLY || (eflags & NWF_CTF_SEEN_REPLY) ? NWF_CT_ESTABLISHED
									      : NWF_CT_NEW;
		goto out;
	}
	/* No flow: the frame would start one. TCP: a SYN, or any ACK
	 * (nf_conntrack_tcp_loose=1 picks up a connection mid-stream). */
	if (f->key.proto == IPPROTO_TCP) {
		nx = tcp_move(0, f->tcpidx, sNO);
		if (nx == sIV) {
			state = NWF_CT_INVALID;
			goto out;
		}
		f->next = nx;
	}
	f->op = CTO_CREATE;
	state = NWF_CT_NEW;
	dir = NWF_CTDIR_ORIGINAL;
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
	struct nwf_ct_val *e = bpf_map_lookup_elem(&nwf_ct, k);

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
	__u8 flags, bit, reply = f->dir == NWF_CTDIR_REPLY;

	switch (f->op) {
	case CTO_REOPEN:
		if (f->found == CTF_RKEY) /* the old flow is in the other orientation */
			bpf_map_delete_elem(&nwf_ct, &f->rkey);
		/* fall through */
	case CTO_CREATE:
		v.state = f->next;
		v.odir = dir;
		v.expires = now + nwf_ct_timeout(f->key.proto, v.state, 0);
		if (bpf_map_update_elem(&nwf_ct, &f->key, &v, BPF_ANY)) {
			flow_count(NWF_FC_INSERT_FAILED);
			return -1;
		}
		flow_count(NWF_FC_INSERT);
		return 0;
	case CTO_UPDATE:
		if (!e) /* NULL: cannot happen with CTO_UPDATE */
			return 0;
		flags = e->flags;
		if (reply)
			flags |= NWF_CTF_SEEN_REPLY;
		if (f->key.proto == IPPROTO_TCP) {
			if ((flags & NWF_CTF_SEEN_REPLY) && (e->state == sSR || e->state == sES) &&
			    f->next == sES)
				flags |= NWF_CTF_ASSURED;
			e->state = f->next;
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
