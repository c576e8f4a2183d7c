/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * reject.h: L3/L4 reject for classifier.c.
 *
 * API:
 *   nwf_reject(skb, p, hook)  TC verdict for a rejected frame
 */
#ifndef NWBPF_REJECT_H
#define NWBPF_REJECT_H

static __always_inline int nwf_reject(struct __sk_buff *skb, const struct nwf_pkt *p, __u8 hook)
{
	return TC_ACT_SHOT;
}

#endif /* NWBPF_REJECT_H */
