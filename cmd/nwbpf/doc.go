// SPDX-License-Identifier: Apache-2.0

// Command nwbpf enforces libvirt network filters with one eBPF TC
// classifier: compile shows what a guest's filter tree becomes, attach,
// detach and status manage guest interfaces, verdict runs frames through the
// real classifier, and demo shows it all in a throw-away sandbox. The
// command is thin: the work is in compiler/, loader/ and maps/.
package main
