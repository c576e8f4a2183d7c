/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * reject.h: L3/L4 reject for classifier.c, like iptables REJECT with its
 * default icmp(6)-port-unreachable: the rejected frame is rewritten into an
 * ICMP destination unreachable (IPv4 3/3, IPv6 1/4) from the frame's
 * destination to its source, quoting the frame's IP packet (up to 576
 * bytes of IPv4 or 1280 of IPv6 in all), and sent back the way it came:
 * out of the device when it came in, into it when it went out.
 *
 * No error is sent, and the frame is just dropped, for what the kernel's
 * icmp_send/icmp6_send would not answer either (ICMP errors, group
 * addresses, unspecified sources) and for a frame whose TCP/UDP checksum
 * cannot be shown complete: with an offloaded checksum (CHECKSUM_PARTIAL,
 * e.g. from a guest with virtio checksum offload) the stack would fill a
 * checksum in at the rejected segment's offsets, inside the rewritten
 * reply.
 *
 * API:
 *   nwf_reject(skb, hook)  TC verdict for a rejected frame: TC_ACT_REDIRECT
 *                          with the ICMP error, or TC_ACT_SHOT
 */
#ifndef NWBPF_REJECT_H
#define NWBPF_REJECT_H

#define NWF_Q4_MAX (NWF_TX_IP4_MAX - 20 - 8) /* IPv4 quote */
#define NWF_Q6_MAX (NWF_TX_IP6_MAX - 40 - 8) /* IPv6 quote */
#define NWF_TX4 (ETH_HLEN + 20 + 8)	     /* reply headers, IPv4 */
#define NWF_TX6 (ETH_HLEN + 40 + 8)	     /* reply headers, IPv6 */
#define NWF_TXMASK 2047			     /* keeps buffer offsets provable */

static __always_inline __u32 fold(__u64 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return s;
}

/* sum_buf adds the ones' complement sum of b[off, off + len) to seed. */
static __always_inline __u64 sum_buf(__u8 *b, __u32 off, __u32 len, __u64 seed)
{
	__u8 tail[4] = {};
	__u32 done = 0, n, i;
	__s64 r;

	for (i = 0; i < 6; i++) {
		n = (len - done) & ~3u;
		if (n > 256)
			n = 256;
		if (n == 0)
			break;
		r = bpf_csum_diff(0, 0, (__be32 *)(b + ((off + done) & NWF_TXMASK)), n, seed);
		if (r < 0)
			return 0;
		seed = r;
		done += n;
	}
	for (i = 0; i < 3; i++)
		if (done + i < len)
			tail[i] = b[(off + done + i) & NWF_TXMASK];
	if (done < len) {
		r = bpf_csum_diff(0, 0, (__be32 *)tail, 4, seed);
		seed = r < 0 ? 0 : r;
	}
	return seed;
}

static __always_inline void put16(__u8 *b, __u32 v)
{
	b[0] = v >> 8;
	b[1] = v;
}

static __always_inline void put48(__u8 *b, __u64 v)
{
	b[0] = v >> 40;
	b[1] = v >> 32;
	b[2] = v >> 24;
	b[3] = v >> 16;
	b[4] = v >> 8;
	b[5] = v;
}

static __always_inline int icmp4_error(__u64 type)
{
	return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}

/* l4_complete reports whether the quoted TCP/UDP segment (the whole IP
 * packet is in the quote, at b + hdr) carries a complete checksum. */
static __always_inline int l4_complete(__u8 *b, __u32 hdr, __u32 l3, __u32 proto, __u32 l4,
				       __u32 iplen)
{
	__u8 ph[8] = {};
	__u32 l4len = iplen - l4;
	__u64 s;

	if (l3 == 4) {
		if (proto == IPPROTO_UDP && !b[(hdr + l4 + 6) & NWF_TXMASK] &&
		    !b[(hdr + l4 + 7) & NWF_TXMASK])
			return 1; /* no UDP checksum */
		ph[1] = proto;
		put16(ph + 2, l4len);
		s = sum_buf(b, hdr + 12, 8, 0); /* addresses */
	} else {
		put16(ph + 2, l4len);
		ph[7] = proto;
		s = sum_buf(b, hdr + 8, 32, 0);
	}
	s = bpf_csum_diff(0, 0, (__be32 *)ph, 8, fold(s));
	s = sum_buf(b, hdr + l4, l4len, fold(s));
	return fold(s) == 0xffff;
}

__noinline int nwf_reject(struct __sk_buff *skb, __u32 hook)
{
	__u32 k = 0, l3, proto, iplen, tot, quote, hdr, nlen, i, l4;
	struct nwf_txbuf *t;
	struct nwf_pkt *p;
	__u64 s, v;
	__u8 *b;

	p = bpf_map_lookup_elem(&nwf_scratch, &k);
	t = bpf_map_lookup_elem(&nwf_txbuf, &k);
	if (!p || !t) /* NULL: no scratch entry; cannot happen */
		return TC_ACT_SHOT;
	b = t->b;
	if (skb->vlan_present || !has(p, NWF_F_L3) || !has(p, NWF_F_L4PROTO))
		return TC_ACT_SHOT;
	if (p->val[NWF_F_DSTMAC][1] & 0x010000000000ull)
		return TC_ACT_SHOT; /* to a group address */
	l3 = p->val[NWF_F_L3][1];
	proto = p->val[NWF_F_L4PROTO][1];
	if (l3 == 4) {
		v = p->val[NWF_F_IP4_SRC][1];
		if (v == 0 || v >= 0xe0000000 || p->val[NWF_F_IP4_DST][1] >= 0xe0000000)
			return TC_ACT_SHOT; /* unspecified or group address */
		if (proto == IPPROTO_ICMP &&
		    (!has(p, NWF_F_ICMP_TYPE) || icmp4_error(p->val[NWF_F_ICMP_TYPE][1])))
			return TC_ACT_SHOT;
		hdr = NWF_TX4;
	} else {
		if ((p->val[NWF_F_IP6_SRC][0] >> 56) == 0xff ||
		    (p->val[NWF_F_IP6_DST][0] >> 56) == 0xff ||
		    (p->val[NWF_F_IP6_SRC][0] == 0 && p->val[NWF_F_IP6_SRC][1] == 0))
			return TC_ACT_SHOT;
		if (proto == IPPROTO_ICMPV6 &&
		    (!has(p, NWF_F_ICMP_TYPE) || p->val[NWF_F_ICMP_TYPE][1] < 128))
			return TC_ACT_SHOT;
		hdr = NWF_TX6;
	}
	iplen = skb->len - ETH_HLEN;
	quote = iplen;
	if (quote > (l3 == 4 ? NWF_Q4_MAX : NWF_Q6_MAX))
		quote = l3 == 4 ? NWF_Q4_MAX : NWF_Q6_MAX;
	if (quote < 20 || quote > NWF_Q6_MAX)
		return TC_ACT_SHOT;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, b + hdr, quote))
		return TC_ACT_SHOT;
	/* The IP packet's own length: Ethernet padding is not quoted. */
	if (l3 == 4)
		tot = (b[NWF_TX4 + 2] << 8) | b[NWF_TX4 + 3];
	else
		tot = ((b[NWF_TX6 + 4] << 8) | b[NWF_TX6 + 5]) + 40;
	if (tot < quote)
		quote = tot;
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
		l4 = p->l4off - ETH_HLEN;
		if (!p->l4off || tot > iplen || quote != tot || l4 >= tot ||
		    !l4_complete(b, hdr, l3, proto, l4, tot))
			return TC_ACT_SHOT;
	}

	put48(b, p->val[NWF_F_SRCMAC][1]);
	put48(b + 6, p->val[NWF_F_DSTMAC][1]);
	if (l3 == 4) {
		put16(b + 12, ETH_P_IP);
		b[14] = 0x45;
		b[15] = 0;
		put16(b + 16, 20 + 8 + quote);
		b[18] = b[19] = b[20] = b[21] = b[24] = b[25] = 0;
		b[22] = 64;
		b[23] = IPPROTO_ICMP;
		for (i = 0; i < 4; i++) {
			b[26 + i] = b[NWF_TX4 + 16 + i]; /* from the original destination */
			b[30 + i] = b[NWF_TX4 + 12 + i]; /* to its source */
		}
		*(__u16 *)(b + 24) = ~fold(sum_buf(b, 14, 20, 0));
		b[34] = 3; /* destination unreachable */
		b[35] = 3; /* port unreachable */
		b[36] = b[37] = b[38] = b[39] = b[40] = b[41] = 0;
		*(__u16 *)(b + 36) = ~fold(sum_buf(b, 34, 8 + quote, 0));
		nlen = NWF_TX4 + quote;
	} else {
		put16(b + 12, ETH_P_IPV6);
		b[14] = 0x60;
		b[15] = b[16] = b[17] = 0;
		put16(b + 18, 8 + quote);
		b[20] = IPPROTO_ICMPV6;
		b[21] = 64;
		for (i = 0; i < 16; i++) {
			b[22 + i] = b[NWF_TX6 + 24 + i];
			b[38 + i] = b[NWF_TX6 + 8 + i];
		}
		b[54] = 1; /* destination unreachable */
		b[55] = 4; /* port unreachable */
		b[56] = b[57] = b[58] = b[59] = b[60] = b[61] = 0;
		s = sum_buf(b, 22, 32, 0);
		s = sum_buf(b, 18, 2, s); /* upper-layer length, its low 16 bits */
		/* next header, as its 16-bit word reads on this little-endian target */
		s = fold(s) + (IPPROTO_ICMPV6 << 8);
		s = sum_buf(b, 54, 8 + quote, fold(s));
		*(__u16 *)(b + 56) = ~fold(s);
		nlen = NWF_TX6 + quote;
	}
	if (nlen > NWF_TXBUF - 1)
		return TC_ACT_SHOT;
	if (bpf_skb_change_tail(skb, nlen, 0))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, 0, b, nlen, BPF_F_RECOMPUTE_CSUM))
		return TC_ACT_SHOT;
	return bpf_redirect(skb->ifindex, hook == NWF_HOOK_INGRESS ? 0 : BPF_F_INGRESS);
}

#endif /* NWBPF_REJECT_H */
