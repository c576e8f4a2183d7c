// SPDX-License-Identifier: Apache-2.0

package conformance

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/nwbpf/nwbpf/compiler"
	"github.com/nwbpf/nwbpf/loader"
	"github.com/nwbpf/nwbpf/maps"
)

// loIfindex is the loopback's ifindex, in every network namespace.
const loIfindex = 1

// TC verdicts the classifier returns.
const (
	tcActUnspec = 0xffffffff // TC_ACT_UNSPEC: go on
	tcActOK     = 0          // TC_ACT_OK: deliver
)

// skbContext is the head of struct __sk_buff up to ifindex: what
// BPF_PROG_TEST_RUN lets a caller set that the classifier reads (every other
// field must be zero, which a shorter context guarantees).
type skbContext struct {
	Len, PktType, Mark, QueueMapping, Protocol uint32
	VlanPresent, VlanTCI, VlanProto, Priority  uint32
	IngressIfindex, Ifindex                    uint32
}

// TestRunVerdicter answers with the real classifier (bpf/classifier.c as
// loader/ loads it) under BPF_PROG_TEST_RUN: each program is written into
// the classifier's maps through maps.Store for the loopback interface, and
// every frame runs through the hook that carries its direction on a tap
// (ingress for out, egress for in).
//
// The kernel refuses a context ifindex that does not exist in the caller's
// namespace; the loopback's always does, and since the classifier is loaded
// with private maps and attached nowhere, binding it changes no traffic.
type TestRunVerdicter struct {
	l     *loader.Loader
	store *maps.Store
	id    uint32
}

// NewTestRunVerdicter loads the classifier with its pins under pinDir.
// Close removes them.
func NewTestRunVerdicter(pinDir string) (*TestRunVerdicter, error) {
	l, err := loader.Load(loader.Options{PinDir: pinDir})
	if err != nil {
		return nil, fmt.Errorf("load classifier: %w", err)
	}
	store, err := maps.NewStore(l.Maps(), maps.Options{})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("store: %w", err), closeLoader(l))
	}
	return &TestRunVerdicter{l: l, store: store}, nil
}

func closeLoader(l *loader.Loader) error {
	return errors.Join(l.Close(), l.Unpin())
}

// Close releases the classifier and removes its pins.
func (v *TestRunVerdicter) Close() error { return closeLoader(v.l) }

// Name implements Verdicter.
func (v *TestRunVerdicter) Name() string { return "bpf" }

// TracksConnections implements Tracker: the classifier's conntrack-lite
// follows each case's frames.
func (v *TestRunVerdicter) TracksConnections() bool { return true }

// Verdicts implements Verdicter: it binds prog and inst to the loopback
// (replacing the previous binding) and runs every frame, flushing the
// classifier's connection table before each case.
func (v *TestRunVerdicter) Verdicts(prog *compiler.Program, inst compiler.Instances, cases [][]Frame) ([][]bool, error) {
	v.id++
	err := v.store.Bind(loIfindex, maps.BindRequest{
		ID: v.id, OutHook: maps.HookIngress, Stages: prog.Stages, Instances: inst,
	})
	if err != nil {
		return nil, fmt.Errorf("bind %s: %w", prog.Filter, err)
	}
	out := make([][]bool, len(cases))
	for c, frames := range cases {
		if err := v.l.FlushConntrack(); err != nil {
			return nil, fmt.Errorf("flush connections: %w", err)
		}
		out[c] = make([]bool, len(frames))
		for i, f := range frames {
			hook := maps.HookIngress
			if f.Dir() == maps.DirIn {
				hook = maps.HookEgress
			}
			ret, err := v.l.Program(hook).Run(&ebpf.RunOptions{
				Data:    f.Data,
				Context: skbContext{Ifindex: loIfindex},
			})
			if err != nil {
				return nil, fmt.Errorf("run case %d frame %d (%s): %w", c, i, f.Spec, err)
			}
			out[c][i] = ret == tcActOK || ret == tcActUnspec
		}
	}
	return out, nil
}
