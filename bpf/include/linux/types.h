/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * linux/types.h: the fixed-width types the vendored UAPI headers and
 * nwbpf.h need, for the BPF target only. It replaces the kernel's
 * linux/types.h, whose asm/ includes are host-architecture specific.
 *
 * API: __u8 __s8 __u16 __s16 __u32 __s32 __u64 __s64, __be16 __be32 __be64,
 *      __le16 __le32 __le64, __sum16 __wsum, __aligned_u64.
 */
#ifndef __LINUX_TYPES_H
#define __LINUX_TYPES_H

typedef unsigned char __u8;
typedef signed char __s8;
typedef unsigned short __u16;
typedef signed short __s16;
typedef unsigned int __u32;
typedef signed int __s32;
typedef unsigned long long __u64;
typedef signed long long __s64;

typedef __u16 __be16;
typedef __u32 __be32;
typedef __u64 __be64;
typedef __u16 __le16;
typedef __u32 __le32;
typedef __u64 __le64;
typedef __u16 __sum16;
typedef __u32 __wsum;

#define __aligned_u64 __u64 __attribute__((aligned(8)))

#endif /* __LINUX_TYPES_H */
