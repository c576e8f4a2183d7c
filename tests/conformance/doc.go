// SPDX-License-Identifier: Apache-2.0

// Package conformance is the differential harness that holds nwbpf to real
// libvirt: the same filter trees, bound with the same variables, see the same
// frames, and every verdict must agree.
//
// For each filter of a Suite (every stock filter, plus the checklist set of
// Checklist, which exercises the items of NWFILTER.md §12), Run
//
//  1. binds the filter with the Reference (real libvirt through the
//     tests/libvirtref oracle: ebtables and iptables on a tap in a bridge
//     the oracle creates and removes), custom filters defined first;
//  2. sends every Case of the corpus through it, in order, each frame in its
//     direction, with connection tracking flushed before every case, and
//     records delivered or dropped;
//  3. compiles and binds the same tree with nwbpf's compiler and asks a
//     Verdicter for the same frames' verdicts, then compares them one by one.
//
// A frame the bridge does not deliver with no filter bound at all is a
// "bridge drop": the frame never tells anything about a filter and is left
// out of the comparison (the baseline pass finds them).
//
// Connection state: the reference evaluator is stateless, so a frame whose
// verdict, by the evaluator, depends on the connection state the classifier
// would see is "state-dependent". A Verdicter that tracks connections
// (Tracker: the classifier's conntrack-lite, flushed before each case like
// libvirt's) is held to libvirt's verdict on those frames as on every
// other; the evaluator's answer to them, judged with no conntrack view, is
// only counted. Every frame must match exactly, or be a Known divergence:
// libvirt (or kernel) behaviour that nwbpf deliberately does not copy,
// listed with the reason and pinned by a test, or an open nwbpf bug.
//
// An IPv6 atomic fragment counts as delivered also in the form the kernel
// forwards it: bridge netfilter defragments IPv6 once conntrack is in use,
// and passes an atomic fragment on without its fragment header
// (Defragmented).
//
// Verdicters: EvalVerdicter runs the pure-Go reference evaluator
// (compiler/eval); TestRunVerdicter runs the real classifier with
// BPF_PROG_TEST_RUN through loader/; TapVerdicter attaches the classifier
// to a real tap on a bridge in a private namespace and plays the VM and
// its peer, so the kernel's path in front of the classifier (the tap's
// receive path, VLAN tags moved into skb metadata, the bridge) is on the
// way too. The two classifier verdicters must agree on every frame
// (Result.Disagreements).
//
// Report renders a run as Markdown; `make conformance` writes it to
// docs/conformance.md.
package conformance
