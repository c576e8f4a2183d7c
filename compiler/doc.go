// SPDX-License-Identifier: Apache-2.0

// Package compiler turns libvirt nwfilter XML into the entries nwbpf's
// classifier runs, with libvirt's semantics and quirks (docs/quirks.md).
//
// The path of a filter:
//
//   - xml.go parses <filter> and <filterbinding> documents (ParseFilter,
//     ParseBinding); attrs.go and values.go are libvirt's attribute tables
//     and value types, so a bad value is rejected at define time naming the
//     file, filter, rule and attribute.
//   - set.go holds definitions (Set) with libvirt's identity and loop rules.
//   - compile.go flattens the <filterref> DAG of one root filter, sorts the
//     rule instances as libvirt does, builds the L2 stage (root chain with
//     sub-chain jumps) and the L3/L4 stage (NWFILTER.md §7's instance table)
//     per direction, and emits maps.Rule entries (Program). A Program depends
//     only on the definitions, so every guest bound to the same tree shares
//     it; conds.go builds the conditions.
//   - bind.go expands a binding's variables (vars.go: iterators, cartesian
//     products, element access, scoping) into the per-guest instance values
//     of the entries that use variables (Instances).
//   - listing.go and format.go print programs for operators and filters the
//     way `virsh nwfilter-dumpxml` does.
//
// The package makes no syscalls; compiler/eval is the reference evaluator of
// its output.
package compiler
