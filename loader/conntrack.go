// SPDX-License-Identifier: Apache-2.0

package loader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/nwbpf/nwbpf/maps"
)

// MaxConntrackSize bounds Options.ConntrackSize: nwf_ct2 is an LRU hash
// whose entries are allocated at load.
const MaxConntrackSize = 1 << 24

// configureConntrack applies the conntrack options to the spec: nwf_ct2's
// capacity and the timeout knob. With a pinned nwf_ct2 of another capacity
// under mapDir the load is refused: adopting it would silently keep the
// old size, replacing it would forget every flow.
func configureConntrack(spec *ebpf.CollectionSpec, opts Options, mapDir string) error {
	size := uint32(maps.CTDefaultSize)
	if opts.ConntrackSize != 0 {
		if opts.ConntrackSize < 1 || opts.ConntrackSize > MaxConntrackSize {
			return fmt.Errorf("conntrack size %d: want 1 to %d entries", opts.ConntrackSize, MaxConntrackSize)
		}
		size = uint32(opts.ConntrackSize)
	}
	spec.Maps["nwf_ct2"].MaxEntries = size
	if mapDir != "" {
		m, err := ebpf.LoadPinnedMap(filepath.Join(mapDir, "nwf_ct2"), nil)
		switch {
		case err == nil:
			pinned := m.MaxEntries()
			m.Close()
			if pinned != size {
				return fmt.Errorf("conntrack size %d: the pinned nwf_ct2 under %s holds %d entries (unpin it to resize, forgetting every flow)",
					size, mapDir, pinned)
			}
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("conntrack: open pinned nwf_ct2: %w", err)
		}
	}
	t := maps.DefaultCTTimeouts
	for c, d := range opts.ConntrackTimeouts {
		if c >= maps.CTTMax {
			return fmt.Errorf("conntrack timeout class %d: no such class", c)
		}
		if d <= 0 {
			return fmt.Errorf("conntrack timeout %s = %v: want a positive duration", c, d)
		}
		t[c] = d
	}
	var ns [maps.CTTMax]uint64
	for c, d := range t {
		ns[c] = uint64(d.Nanoseconds())
	}
	if err := spec.Variables["nwf_cfg_ct_timeout"].Set(ns); err != nil {
		return fmt.Errorf("conntrack: set nwf_cfg_ct_timeout: %w", err)
	}
	return nil
}

// MonotonicNow returns the clock of the classifier's bpf_ktime_get_ns
// (CLOCK_MONOTONIC) in ns: the time base of maps.CTVal.Expires and of GC.
func MonotonicNow() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(fmt.Sprintf("clock_gettime(CLOCK_MONOTONIC): %v", err)) // cannot fail on Linux
	}
	return uint64(ts.Nano())
}

// Flow is one tracked flow, as read from nwf_ct2.
type Flow struct {
	Key maps.CTKey
	Val maps.CTVal
}

// Conntrack returns every flow in the table, expired ones included (see
// Flow.Val.Expires against MonotonicNow).
func (l *Loader) Conntrack() ([]Flow, error) {
	var (
		out []Flow
		k   maps.CTKey
		v   maps.CTVal
	)
	it := l.objs.NwfCt2.Iterate()
	for it.Next(&k, &v) {
		out = append(out, Flow{Key: k, Val: v})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read nwf_ct2: %w", err)
	}
	return out, nil
}

// GCConntrack deletes the flows that expired at now (MonotonicNow's clock)
// and returns how many it deleted. The classifier already treats an
// expired flow as absent and the LRU table reuses its room when full: GC
// keeps the entry gauge honest and the table's room for live flows. A flow
// refreshed while GC runs may be deleted anyway (it expired when read);
// its next frame then starts a new flow, as after a timeout.
func (l *Loader) GCConntrack(now uint64) (int, error) {
	var (
		dead []maps.CTKey
		k    maps.CTKey
		v    maps.CTVal
	)
	it := l.objs.NwfCt2.Iterate()
	for it.Next(&k, &v) {
		if v.Expires <= now {
			dead = append(dead, k)
		}
	}
	if err := it.Err(); err != nil {
		return 0, fmt.Errorf("conntrack gc: read nwf_ct2: %w", err)
	}
	n := 0
	for i := range dead {
		err := l.objs.NwfCt2.Delete(&dead[i])
		if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return n, fmt.Errorf("conntrack gc: delete: %w", err)
		}
		if err == nil {
			n++
		}
	}
	return n, nil
}

// FlushConntrack forgets every flow ("reset connection state"): the next
// frame of any flow is the first of a new one.
func (l *Loader) FlushConntrack() error {
	var k maps.CTKey
	for {
		err := l.objs.NwfCt2.NextKey(nil, &k)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("flush conntrack: %w", err)
		}
		if err := l.objs.NwfCt2.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("flush conntrack: %w", err)
		}
	}
}

// ConntrackStats are the conntrack gauges and counters, for metrics.
type ConntrackStats struct {
	Entries       uint64 // flows in the table that have not expired
	Capacity      uint64 // the table's size (Options.ConntrackSize)
	Inserts       uint64 // flows created, all CPUs
	InsertFailed  uint64 // creations that failed; each dropped its frame
	FastPathHits  uint64 // frames whose L3/L4 verdict came from their flow
	ReadTimestamp time.Time
}

// ConntrackStats reads the gauges (walking the table, O(entries)) and sums
// the per-CPU counters of nwf_flow_stats.
func (l *Loader) ConntrackStats() (ConntrackStats, error) {
	st := ConntrackStats{Capacity: uint64(l.objs.NwfCt2.MaxEntries()), ReadTimestamp: time.Now()}
	now := MonotonicNow()
	var (
		k maps.CTKey
		v maps.CTVal
	)
	it := l.objs.NwfCt2.Iterate()
	for it.Next(&k, &v) {
		if v.Expires > now {
			st.Entries++
		}
	}
	if err := it.Err(); err != nil {
		return ConntrackStats{}, fmt.Errorf("conntrack stats: read nwf_ct2: %w", err)
	}
	for c, dst := range map[maps.FlowCounter]*uint64{
		maps.FCInsert: &st.Inserts, maps.FCInsertFailed: &st.InsertFailed, maps.FCFastPath: &st.FastPathHits,
	} {
		var per []uint64
		if err := l.objs.NwfFlowStats.Lookup(uint32(c), &per); err != nil {
			return ConntrackStats{}, fmt.Errorf("conntrack stats: read nwf_flow_stats[%d]: %w", c, err)
		}
		for _, n := range per {
			*dst += n
		}
	}
	return st, nil
}
