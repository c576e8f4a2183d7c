// SPDX-License-Identifier: Apache-2.0

package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/nwbpf/nwbpf/internal/privtest"
	"github.com/nwbpf/nwbpf/tests/netenv"
)

// buildNwbpf builds the nwbpf command into a temporary directory.
func buildNwbpf(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go" // sudo may drop it from PATH

	}
	bin := filepath.Join(t.TempDir(), "nwbpf")
	out, err := exec.Command(goBin, "build", "-o", bin, "github.com/nwbpf/nwbpf/cmd/nwbpf").CombinedOutput()
	if err != nil {
		t.Fatalf("go build nwbpf: %v\n%s", err, out)
	}
	return bin
}

// cli runs the nwbpf binary as its own process inside a network namespace
// (a child inherits the namespace of the thread that starts it; the mount
// namespace, and so /sys/fs/bpf, stays the host's).
type cli struct {
	bin  string
	ns   *netenv.NS
	host []string // --pin-dir, --state-dir
}

func (c *cli) run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	err := c.ns.Do(func() error {
		cmd := exec.Command(c.bin, append(args, c.host...)...)
		cmd.Stdout, cmd.Stderr = &out, &errb
		return cmd.Run()
	})
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errb.String()
	}
	if err != nil {
		t.Fatalf("run nwbpf %s: %v", strings.Join(args, " "), err)
	}
	return 0, out.String(), errb.String()
}

// mustRun runs a command that must succeed.
func (c *cli) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := c.run(t, args...)
	if code != 0 {
		t.Fatalf("nwbpf %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// cliStatus is the part of `nwbpf status --json` the test reads.
type cliStatus struct {
	Devices []struct {
		Name      string
		Ifindex   int
		Present   bool
		Kind      string
		Method    string
		OutHook   string `json:"out_hook"`
		Hooks     map[string]bool
		Mode      string
		Bound     bool
		BindingID uint32 `json:"binding_id"`
		Owner     string
		MAC       string
		Filter    string
		Rules     []struct {
			Dir, Stage, Filter, Action string
			Rule                       int
			Packets, Bytes             uint64
		}
	}
	Drops []struct {
		Reason, Dir string
		Packets     uint64
	}
}

func (c *cli) status(t *testing.T) cliStatus {
	t.Helper()
	out := c.mustRun(t, "status", "--json")
	var st cliStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	return st
}

// TestCLIAttachStatusDetach runs `nwbpf attach`, `status` and `detach` as
// separate processes on a bridged tap, so that everything a later command
// knows comes from the pins and the state file: attach binds the stock
// clean-traffic and a spoofed frame is dropped at the receiver; status
// reports the device and counts the drop on the rule that made it; bad
// input changes nothing; attaching again (through clsact) keeps the
// binding; detach removes the attachment, binding and link pins.
func TestCLIAttachStatusDetach(t *testing.T) {
	privtest.Require(t)
	stockSet(t)
	bin := buildNwbpf(t)
	tp := tapTopology(t)
	pinDir := filepath.Join(privtest.BPFFS, netenv.Name("nwbcli"))
	t.Cleanup(func() {
		if err := os.RemoveAll(pinDir); err != nil {
			t.Errorf("remove %s: %v", pinDir, err)
		}
	})
	stateDir := t.TempDir()
	c := &cli{bin: bin, ns: tp.ns, host: []string{"--pin-dir", pinDir, "--state-dir", stateDir}}
	dev := tp.vm.Name
	guestIP, gwIP := net.IPv4(10, 0, 0, 5), net.IPv4(10, 0, 0, 1)
	binding := filepath.Join(t.TempDir(), "binding.xml")
	doc := fmt.Sprintf(`<filterbinding><owner><name>guest1</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>
<portdev name='%s'/><mac address='%s'/>
<filterref filter='clean-traffic'><parameter name='IP' value='%s'/></filterref></filterbinding>`, dev, tp.mac, guestIP)
	if err := os.WriteFile(binding, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	// A stray detach before anything is attached is an error, and makes
	// no pins.
	if code, _, errs := c.run(t, "detach", dev); code == 0 || !strings.Contains(errs, "not attached") {
		t.Errorf("detach before attach: exit %d, %q; want a not-attached error", code, errs)
	}

	out := c.mustRun(t, "attach", dev, "--binding", binding, "--filter-dir", stockDir)
	if want := fmt.Sprintf("attached %s (tuntap, tcx, enforce): filter clean-traffic", dev); !strings.HasPrefix(out, want) {
		t.Errorf("attach output %q, want it to start with %q", out, want)
	}
	st := c.status(t)
	if len(st.Devices) != 1 {
		t.Fatalf("status lists %d devices, want 1: %+v", len(st.Devices), st)
	}
	d := st.Devices[0]
	if d.Name != dev || !d.Present || d.Kind != "tuntap" || d.Method != "tcx" || d.OutHook != "ingress" ||
		!d.Hooks["ingress"] || !d.Hooks["egress"] || !d.Bound || d.Owner != "guest1" || d.Filter != "clean-traffic" ||
		d.MAC != tp.mac.String() || d.Mode != "enforce" || len(d.Rules) != 36 {
		t.Fatalf("status after attach: %+v", d)
	}
	bindingID := d.BindingID

	// The filter is in force: a spoofed frame is dropped, the guest's own
	// frame delivered.
	spoof := udp4Frame(t, netenv.RandomMAC(0x52), tp.peer.MAC, guestIP, gwIP, 4000, 9)
	expect(t, "after nwbpf attach", tp.vm, tp.peer, udp4Frame(t, tp.mac, tp.peer.MAC, guestIP, gwIP, 4001, 9),
		[]probe{{"mac spoofing", spoof, 0}, {"the guest's ipv4", udp4Frame(t, tp.mac, tp.peer.MAC, guestIP, gwIP, 4000, 9), 1}})
	st = c.status(t)
	var spoofHits, spoofBytes uint64
	for _, r := range st.Devices[0].Rules {
		if r.Dir == "out" && r.Stage == "l2" && r.Filter == "no-mac-spoofing" && r.Action == "drop" {
			spoofHits, spoofBytes = r.Packets, r.Bytes
		}
	}
	if spoofHits != 1 || spoofBytes != uint64(len(spoof)) {
		t.Errorf("no-mac-spoofing drop rule counted %d frames, %d bytes; want 1, %d", spoofHits, spoofBytes, len(spoof))
	}
	var l2Drops uint64
	for _, dr := range st.Drops {
		if dr.Reason == "l2" && dr.Dir == "out" {
			l2Drops = dr.Packets
		}
	}
	if l2Drops < 1 {
		t.Errorf("status drops: l2 out %d, want at least 1", l2Drops)
	}
	text := c.mustRun(t, "status")
	for _, want := range []string{dev, "out l2 (sent by the guest)", "no-mac-spoofing#1", "clean-traffic"} {
		if !strings.Contains(text, want) {
			t.Errorf("status text lacks %q:\n%s", want, text)
		}
	}

	// Bad input fails with a clear error and changes nothing.
	stateFile := filepath.Join(stateDir, "state.json")
	before, err := os.ReadFile(stateFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"attach", dev, "--filter-dir", stockDir, "--filter", "no-such-filter", "--mac", tp.mac.String()}, "no-such-filter"},
		{[]string{"attach", dev, "--filter-dir", stockDir, "--filter", "clean-traffic", "--mac", tp.mac.String()}, "IP"},
		{[]string{"attach", dev, "--binding", binding, "--filter-dir", stockDir, "--portdev", "vnet9"}, "vnet9"},
		{[]string{"attach", "nwbnodev0", "--filter-dir", stockDir, "--filter", "clean-traffic", "--mac", tp.mac.String(), "--param", "IP=10.0.0.5"}, "nwbnodev0"},
		{[]string{"attach", "bad/name", "--binding", binding}, "bad/name"},
	} {
		code, _, errs := c.run(t, bad.args...)
		if code == 0 || !strings.Contains(errs, bad.want) {
			t.Errorf("nwbpf %s: exit %d, stderr %q; want an error naming %q", strings.Join(bad.args, " "), code, errs, bad.want)
		}
	}
	if after, _ := os.ReadFile(stateFile); !bytes.Equal(before, after) {
		t.Errorf("bad input changed the state file")
	}
	expect(t, "after bad input", tp.vm, tp.peer, udp4Frame(t, tp.mac, tp.peer.MAC, guestIP, gwIP, 4001, 9),
		[]probe{{"mac spoofing", udp4Frame(t, netenv.RandomMAC(0x52), tp.peer.MAC, guestIP, gwIP, 4000, 9), 0}})

	// Attaching again switches to clsact and keeps the binding's identity;
	// attaching the same once more changes nothing.
	for i := range 2 {
		c.mustRun(t, "attach", dev, "--binding", binding, "--filter-dir", stockDir, "--clsact")
		d := c.status(t).Devices[0]
		if d.Method != "clsact" || !d.Hooks["ingress"] || !d.Hooks["egress"] || !d.Bound || d.BindingID != bindingID {
			t.Errorf("attach --clsact #%d: %+v", i+1, d)
		}
		if _, err := os.Stat(filepath.Join(pinDir, "links", dev)); err == nil {
			t.Errorf("attach --clsact #%d left the TCX link pins", i+1)
		}
	}
	expect(t, "after attach --clsact", tp.vm, tp.peer, udp4Frame(t, tp.mac, tp.peer.MAC, guestIP, gwIP, 4001, 9),
		[]probe{{"mac spoofing", udp4Frame(t, netenv.RandomMAC(0x52), tp.peer.MAC, guestIP, gwIP, 4000, 9), 0}})

	if out := c.mustRun(t, "detach", dev); out != "detached "+dev+"\n" {
		t.Errorf("detach output %q", out)
	}
	if st := c.status(t); len(st.Devices) != 0 {
		t.Errorf("status after detach lists %+v", st.Devices)
	}
	m, err := ebpf.LoadPinnedMap(filepath.Join(pinDir, "maps", "nwf_bindings"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var k uint32
	if err := m.NextKey(nil, &k); err == nil {
		t.Errorf("nwf_bindings still holds ifindex %d after detach", k)
	}
	expect(t, "after detach", tp.vm, tp.peer, udp4Frame(t, tp.mac, tp.peer.MAC, guestIP, gwIP, 4001, 9),
		[]probe{{"mac spoofing, unfiltered", udp4Frame(t, netenv.RandomMAC(0x52), tp.peer.MAC, guestIP, gwIP, 4000, 9), 1}})
	if code, _, errs := c.run(t, "detach", dev); code == 0 || !strings.Contains(errs, "not attached") {
		t.Errorf("second detach: exit %d, %q; want a not-attached error", code, errs)
	}
}
