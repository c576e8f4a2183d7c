// SPDX-License-Identifier: Apache-2.0

// Package maps holds the Go side of the ABI between nwbpf's control plane
// and its classifier: one Go mirror per C struct of bpf/nwbpf.h (abi.go,
// dataplane.go), checked against the BTF of the compiled object, and the
// writers that put compiled programs and bindings into the classifier's
// maps ([Store]).
//
// The package makes no syscalls: it writes through the [Map] interface,
// which *ebpf.Map satisfies, so it tests anywhere.
//
// Updates are atomic from a frame's point of view. A new ruleset is written
// into free entries of nwf_rules, a binding's instances into free entries
// of nwf_vidx and nwf_vals, and only then does the binding switch to them,
// ruleset id and instance base together, in one nwf_bindings update. What a
// binding used before is quarantined: the classifier reads the ranges of
// the binding value it looked up under RCU for the rest of that frame, and
// user space cannot wait for that grace period, so freed ranges and ruleset
// ids are reused only after [DefaultQuarantine].
package maps
