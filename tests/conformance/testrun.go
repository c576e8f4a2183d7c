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
	classifier
}

// classifier is a loaded classifier and its Store, for the Verdicters
// that run it: under BPF_PROG_TEST_RUN and attached to a real tap.
type classifier struct {
	l     *loader.Loader
	store *maps.Store
	id    uint32 // the last binding's
}

// run binds prog and inst to ifindex, whose guest frames pass outHook
// (replacing the previous binding), and asks verdict about every frame of
// every case, in order, with the classifier's connection table flushed
// before each case. verdict gets the case's frames and the frame's index.
func (c *classifier) run(ifindex uint32, outHook maps.Hook, prog *compiler.Program, inst compiler.Instances, cases [][]Frame,
	verdict func(frames []Frame, i int) (bool, error)) ([][]bool, error) {
	c.id++
	err := c.store.Bind(ifindex, maps.BindRequest{ID: c.id, OutHook: outHook, Stages: prog.Stages, Instances: inst})
	if err != nil {
		return nil, fmt.Errorf("bind %s: %w", prog.Filter, err)
	}
	out := make([][]bool, len(cases))
	for i, frames := range cases {
		if err := c.l.FlushConntrack(); err != nil {
			return nil, fmt.Errorf("flush connections: %w", err)
		}
		out[i] = make([]bool, len(frames))
		for j, f := range frames {
			if out[i][j], err = verdict(frames, j); err != nil {
				return nil, fmt.Errorf("case %d frame %d (%s): %w", i, j, f.Spec, err)
			}
		}
	}
	return out, nil
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
	return &TestRunVerdicter{classifier{l: l, store: store}}, nil
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
	return v.run(loIfindex, maps.HookIngress, prog, inst, cases, func(frames []Frame, i int) (bool, error) {
		hook := maps.HookIngress
		if frames[i].Dir() == maps.DirIn {
			hook = maps.HookEgress
		}
		ret, err := v.l.Program(hook).Run(&ebpf.RunOptions{
			Data:    frames[i].Data,
			Context: skbContext{Ifindex: loIfindex},
		})
		return ret == tcActOK || ret == tcActUnspec, err
	})
}
