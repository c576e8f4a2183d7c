// SPDX-License-Identifier: Apache-2.0

package loader

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/nwbpf/nwbpf/internal/privtest"
	"github.com/nwbpf/nwbpf/maps"
	"github.com/nwbpf/nwbpf/tests/netenv"
)

// sessionVeth creates a veth in the test's namespace for a session to
// attach to (with AnyDevice) and returns its name.
func sessionVeth(t *testing.T) string {
	t.Helper()
	name := netenv.Name("nws")
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}); err != nil {
		t.Fatalf("add veth %s: %v", name, err)
	}
	t.Cleanup(func() {
		if lk, err := netlink.LinkByName(name); err == nil {
			_ = netlink.LinkDel(lk)
		}
	})
	return name
}

func openSession(t *testing.T, pinDir, stateDir string, programs bool) *Session {
	t.Helper()
	s, err := OpenSession(SessionOptions{PinDir: pinDir, StateDir: stateDir, Programs: programs})
	if err != nil {
		t.Fatalf("open session: %v", err)
	}
	return s
}

// TestSessionAcrossProcesses attaches in one session and checks that later
// sessions (as later processes would) find the device, its binding and its
// counters, refuse pinned maps that disagree with the state file, and
// forget a state file whose maps were recreated.
func TestSessionAcrossProcesses(t *testing.T) {
	privtest.Require(t)
	pinDir := filepath.Join(privtest.BPFFS, netenv.Name("nwbss"))
	t.Cleanup(func() { os.RemoveAll(pinDir) })
	stateDir := t.TempDir()
	dev := sessionVeth(t)

	s := openSession(t, pinDir, stateDir, true)
	var stages [2][2][]maps.Rule
	stages[maps.DirOut][maps.StageL2] = []maps.Rule{match(maps.ActDrop, eq(maps.FSrcMAC, macGWv)), end(maps.ActAccept)}
	d, err := s.Attach(dev, AttachRequest{
		Stages: stages,
		Device: Device{Owner: "g1", Filter: "f", Entries: [2][2][]Entry{{{{Kind: "match", Action: "drop"}, {Kind: "end"}}, {}}, {{}, {}}}},
		Opts:   AttachOptions{AnyDevice: true},
	})
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	if d.BindingID != 1 || d.Method != "tcx" || d.Owner != "g1" {
		t.Errorf("attached %+v", d)
	}
	s.Close()

	s = openSession(t, pinDir, stateDir, false)
	devs, _, err := s.Status()
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if len(devs) != 1 || !devs[0].Present || !devs[0].Bound || devs[0].Hooks != [2]bool{true, true} || len(devs[0].Rules) != 2 || devs[0].Rules[0].Action != "drop" {
		t.Fatalf("status in a later session: %+v", devs)
	}
	s.Close()

	// A binding the state file does not know of: refused, nothing changed.
	bm := filepath.Join(pinDir, "maps", "nwf_bindings")
	m, err := ebpf.LoadPinnedMap(bm, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Put(uint32(0x7fff0000), &maps.Binding{Ruleset: 1}); err != nil {
		t.Fatal(err)
	}
	stateBefore, _ := os.ReadFile(filepath.Join(stateDir, stateFile))
	if _, err := OpenSession(SessionOptions{PinDir: pinDir, StateDir: stateDir}); err == nil || !strings.Contains(err.Error(), "unknown to the state file") {
		t.Errorf("open with a foreign binding: %v, want a disagreement error", err)
	}
	if after, _ := os.ReadFile(filepath.Join(stateDir, stateFile)); string(after) != string(stateBefore) {
		t.Errorf("a refused session changed the state file")
	}
	if err := m.Delete(uint32(0x7fff0000)); err != nil {
		t.Fatal(err)
	}
	// Another pin dir's state: refused.
	if _, err := OpenSession(SessionOptions{PinDir: pinDir + "x", StateDir: stateDir}); err == nil || !strings.Contains(err.Error(), "belongs to pin dir") {
		t.Errorf("open with another pin dir: %v", err)
	}

	// Detach in a session without programs.
	s = openSession(t, pinDir, stateDir, false)
	if err := s.Detach(dev); err != nil {
		t.Fatalf("detach: %v", err)
	}
	if err := s.Detach(dev); !errors.Is(err, ErrNotAttached) {
		t.Errorf("second detach: %v, want ErrNotAttached", err)
	}
	s.Close()
	if _, err := os.Stat(filepath.Join(pinDir, "links", dev)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("link pins after detach: %v", err)
	}

	// Maps recreated (pins removed): the state is forgotten with a warning.
	s = openSession(t, pinDir, stateDir, true)
	if _, err := s.Attach(dev, AttachRequest{Stages: stages, Opts: AttachOptions{AnyDevice: true}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.RemoveAll(pinDir); err != nil {
		t.Fatal(err)
	}
	s = openSession(t, pinDir, stateDir, true)
	if len(s.Devices()) != 0 || len(s.Warnings) != 1 {
		t.Errorf("after the maps were recreated: devices %+v, warnings %q", s.Devices(), s.Warnings)
	}
	s.Close()
	s = openSession(t, pinDir, stateDir, false) // the forgotten state was saved
	defer s.Close()
	if len(s.Warnings) != 0 {
		t.Errorf("warned again: %q", s.Warnings)
	}
}
