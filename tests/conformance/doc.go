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
// nwbpf has no connection tracking yet (conntrack-lite is another issue), so
// the harness never invents state: a frame whose verdict, by the reference
// evaluator, depends on the connection state the classifier would see is
// reported as "needs conntrack-lite" and kept out of the exact comparison;
// every other frame must match exactly, or be a Known divergence: libvirt
// behaviour that nwbpf deliberately does not copy, listed with the reason
// and pinned by a test.
//
// Verdicters: EvalVerdicter runs the pure-Go reference evaluator
// (compiler/eval); TestRunVerdicter runs the real classifier with
// BPF_PROG_TEST_RUN through loader/. Another implementation (a real attached
// tap) plugs in through the same interface.
//
// Report renders a run as Markdown; `make conformance` writes it to
// docs/conformance.md.
package conformance
