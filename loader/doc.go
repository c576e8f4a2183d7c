// SPDX-License-Identifier: Apache-2.0

// Package loader is the only part of nwbpf that talks to the kernel: it
// loads the classifier (bpf/classifier.c, compiled by bpf2go into
// nwbpf_bpfel.o and embedded), pins its maps, programs and links under
// /sys/fs/bpf/nwbpf (or another root), and attaches it to guest devices.
//
// Attach finds out from the kernel whether a device is a tap or a macvtap
// (never from its name), which decides the hook that carries the guest's
// frames (maps.Binding.OutHook). It attaches through TCX links where the
// kernel has them and through a clsact qdisc with a direct-action cls_bpf
// filter elsewhere, or when asked to. Maps are written through maps.Store,
// to which Loader.Maps hands the loaded maps.
package loader
