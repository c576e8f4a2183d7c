// SPDX-License-Identifier: Apache-2.0

package loader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/nwbpf/nwbpf/maps"
)

// DefaultPinDir is where nwbpf pins its maps, programs and links.
const DefaultPinDir = "/sys/fs/bpf/nwbpf"

// bpffsRoot is where the bpf filesystem is mounted when it is absent.
const bpffsRoot = "/sys/fs/bpf"

// pinnedMaps are the maps whose content outlives the daemon. The per-CPU
// scratch, trace and transmit buffers belong to one load of the program.
var pinnedMaps = []string{
	"nwf_bindings", "nwf_rulesets", "nwf_rules", "nwf_vidx", "nwf_vals",
	"nwf_rule_stats", "nwf_drop_stats", "nwf_frags", "nwf_ct2", "nwf_flow_stats",
}

// Options configure Load.
type Options struct {
	// PinDir is the root of nwbpf's pins (DefaultPinDir when empty). It
	// must be on a bpf filesystem; /sys/fs/bpf is mounted if absent.
	PinDir string
	// Trace loads the classifier with its nwf_cfg_trace knob set, so that
	// every decision is recorded in nwf_trace (for tests and debugging).
	Trace bool
	// ConntrackSize is the capacity of the conntrack table nwf_ct2, in
	// flows of all interfaces (maps.CTDefaultSize when 0, at most
	// MaxConntrackSize). When it is full the least recently used flow is
	// evicted. A pinned table of another size is not adopted: Load fails.
	ConntrackSize int
	// ConntrackTimeouts override maps.DefaultCTTimeouts per class.
	ConntrackTimeouts map[maps.CTTimeout]time.Duration
}

// Loader is a loaded classifier: its programs and maps, pinned under
// PinDir, and the devices it attached to.
type Loader struct {
	pinDir string
	objs   nwbpfObjects
	cpus   int

	mu    sync.Mutex // serialises Attach and Detach
	noTCX error      // set once TCX attach reported ebpf.ErrNotSupported
}

// Load loads the classifier. Maps already pinned under PinDir/maps are
// adopted when their layout is compatible (a layout change gets a new map
// name) and created and pinned otherwise; the programs are pinned under
// PinDir/progs, replacing older ones. On a verifier failure the error holds
// the full verifier log.
func Load(opts Options) (*Loader, error) {
	dir := opts.PinDir
	if dir == "" {
		dir = DefaultPinDir
	}
	if err := ensureBPFFS(dir); err != nil {
		return nil, fmt.Errorf("load classifier: %w", err)
	}
	spec, err := loadNwbpf()
	if err != nil {
		return nil, fmt.Errorf("load classifier: %w", err)
	}
	if opts.Trace {
		if err := spec.Variables["nwf_cfg_trace"].Set(uint8(1)); err != nil {
			return nil, fmt.Errorf("load classifier: set nwf_cfg_trace: %w", err)
		}
	}
	for _, name := range pinnedMaps {
		spec.Maps[name].Pinning = ebpf.PinByName
	}
	mapDir := filepath.Join(dir, "maps")
	if err := configureConntrack(spec, opts, mapDir); err != nil {
		return nil, fmt.Errorf("load classifier: %w", err)
	}
	progDir := filepath.Join(dir, "progs")
	for _, d := range []string{mapDir, progDir, filepath.Join(dir, "links")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("load classifier: %w", err)
		}
	}
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("load classifier: %w", err)
	}
	l := &Loader{pinDir: dir, cpus: cpus}
	err = spec.LoadAndAssign(&l.objs, &ebpf.CollectionOptions{
		Maps: ebpf.MapOptions{PinPath: mapDir},
	})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load classifier: %+v", ve)
		}
		return nil, fmt.Errorf("load classifier: %w", err)
	}
	for name, p := range map[string]*ebpf.Program{"nwf_ingress": l.objs.NwfIngress, "nwf_egress": l.objs.NwfEgress} {
		if err := pinReplace(p, filepath.Join(progDir, name)); err != nil {
			l.objs.Close()
			return nil, fmt.Errorf("load classifier: pin %s: %w", name, err)
		}
	}
	return l, nil
}

// pinReplace pins p at path, atomically replacing what is there.
func pinReplace(p *ebpf.Program, path string) error {
	tmp := path + "_next" // bpffs names cannot hold a dot
	_ = os.Remove(tmp)    // a leftover of an interrupted pin
	if err := p.Pin(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = p.Unpin()
		return err
	}
	return nil
}

// ensureBPFFS mounts the bpf filesystem at /sys/fs/bpf when dir is under
// it and nothing is mounted there, then checks that dir's nearest existing
// ancestor is on a bpf filesystem.
func ensureBPFFS(dir string) error {
	if isBPFFS(bpffsRoot) != nil && isUnder(dir, bpffsRoot) {
		if err := os.MkdirAll(bpffsRoot, 0o755); err != nil {
			return err
		}
		if err := unix.Mount("bpf", bpffsRoot, "bpf", 0, "mode=0700"); err != nil {
			return fmt.Errorf("mount bpffs at %s: %w", bpffsRoot, err)
		}
	}
	for p := dir; ; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil {
			return isBPFFS(p)
		}
		if p == filepath.Dir(p) {
			return fmt.Errorf("pin dir %s: no existing ancestor", dir)
		}
	}
}

func isUnder(path, root string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

func isBPFFS(path string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", path, err)
	}
	if uint32(st.Type) != unix.BPF_FS_MAGIC {
		return fmt.Errorf("%s is not on a bpf filesystem", path)
	}
	return nil
}

// PinDir returns the root of the loader's pins.
func (l *Loader) PinDir() string { return l.pinDir }

// Maps returns the maps a maps.Store writes.
func (l *Loader) Maps() maps.Maps {
	return maps.Maps{
		Bindings:  l.objs.NwfBindings,
		Rulesets:  l.objs.NwfRulesets,
		Rules:     l.objs.NwfRules,
		Vidx:      l.objs.NwfVidx,
		Vals:      l.objs.NwfVals,
		RuleStats: l.objs.NwfRuleStats,
		CPUs:      l.cpus,
	}
}

// CPUs returns the number of possible CPUs: the length of every per-CPU
// value.
func (l *Loader) CPUs() int { return l.cpus }

// Program returns the classifier's program for a hook.
func (l *Loader) Program(h maps.Hook) *ebpf.Program {
	if h == maps.HookEgress {
		return l.objs.NwfEgress
	}
	return l.objs.NwfIngress
}

// EmptyProgram returns a TC program that passes everything: the baseline
// of the per-frame cost.
func (l *Loader) EmptyProgram() *ebpf.Program { return l.objs.NwfEmpty }

// Map returns one of the classifier's maps by its C name, or nil.
func (l *Loader) Map(name string) *ebpf.Map {
	switch name {
	case "nwf_bindings":
		return l.objs.NwfBindings
	case "nwf_rulesets":
		return l.objs.NwfRulesets
	case "nwf_rules":
		return l.objs.NwfRules
	case "nwf_vidx":
		return l.objs.NwfVidx
	case "nwf_vals":
		return l.objs.NwfVals
	case "nwf_rule_stats":
		return l.objs.NwfRuleStats
	case "nwf_drop_stats":
		return l.objs.NwfDropStats
	case "nwf_trace":
		return l.objs.NwfTrace
	case "nwf_frags":
		return l.objs.NwfFrags
	case "nwf_scratch":
		return l.objs.NwfScratch
	case "nwf_ct2":
		return l.objs.NwfCt2
	case "nwf_flow_stats":
		return l.objs.NwfFlowStats
	}
	return nil
}

// Close releases the loader's file descriptors. Pinned maps, programs and
// links stay in force.
func (l *Loader) Close() error {
	return l.objs.Close()
}

// Unpin removes every pin under the loader's PinDir (maps, programs and
// links); what is attached through a pinned link is detached once no file
// descriptor holds the link.
func (l *Loader) Unpin() error {
	return os.RemoveAll(l.pinDir)
}
