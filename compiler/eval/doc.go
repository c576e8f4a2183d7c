// SPDX-License-Identifier: Apache-2.0

// Package eval is the pure-Go reference evaluator of nwbpf's classifier: the
// executable specification of bpf/nwbpf.h that bpf/classifier.c is
// differentially tested against.
//
// [Parse] turns a raw Ethernet frame and its skb metadata (a VLAN tag already
// moved out of the data, as at TC ingress) into a [Packet]: every field of
// enum nwf_field with the presence the header specifies. [FieldValue] and
// [TCPOption] expose that parse so a test can compare the BPF parser with it
// field by field.
//
// [Eval] runs a compiled program (compiler.Program.Stages) with a binding's
// instances (compiler.Instances) over a parsed packet, in one direction and
// under a given conntrack view ([CT]), and returns the [Result]: the verdict
// and the entry that decided it. It follows the entry interpreter of
// bpf/nwbpf.h: the L2 stage, then the L3/L4 stage; MATCH, JUMP with one
// return point, CHAIN_END. Malformed programs (bad kinds, actions, targets,
// nested jumps, missing variable slots, ...) never panic and never loop: the
// result is [VerdictError] with the cause in Result.Err.
//
// The package makes no syscalls and favours being exact and obvious over
// being fast.
//
// Where bpf/nwbpf.h leaves a detail open, the choice made here is written in
// the doc comment of [Parse] (the "Choices" list); the BPF classifier must
// make the same ones.
package eval
