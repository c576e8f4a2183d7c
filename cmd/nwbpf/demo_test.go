// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/nwbpf/nwbpf/compiler"
	"github.com/nwbpf/nwbpf/internal/privtest"
	"github.com/nwbpf/nwbpf/internal/sandbox"
)

// requireDemo skips (fails under CI) unless the demo can run here.
func requireDemo(t *testing.T) {
	t.Helper()
	privtest.Require(t)
	if _, _, err := stockFilters(compiler.DefaultFilterDirs); err != nil {
		if privtest.CI() {
			t.Fatalf("%v (.ci/run installs it)", err)
		}
		t.Skipf("%v", err)
	}
	if _, err := sandbox.NftBinary(); err != nil {
		if privtest.CI() {
			t.Fatalf("%v (.ci/run installs it)", err)
		}
		t.Skipf("%v", err)
	}
}

// leftovers lists what a demo run with the suffix left behind: named
// namespaces, links in this namespace, pins and state directories.
func leftovers(t *testing.T, suffix string) []string {
	t.Helper()
	var out []string
	for _, pattern := range []string{
		filepath.Join(sandbox.NetnsDir, "*"+suffix+"*"),
		filepath.Join(privtest.BPFFS, "*"+suffix+"*"),
		filepath.Join(os.TempDir(), "nwbpf-demo-"+suffix+"*"),
	} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m...)
	}
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatalf("list links: %v", err)
	}
	for _, l := range links {
		if strings.Contains(l.Attrs().Name, suffix) {
			out = append(out, "link "+l.Attrs().Name)
		}
	}
	return out
}

var demoSuffix = regexp.MustCompile(`^nwbpf demo ([0-9a-f]{8}):`)

// TestDemo runs `nwbpf demo` end to end: every probe has its expected
// outcome (the legitimate ones delivered, through the NAT too, the
// spoofed ones delivered without nwbpf and dropped by the stock rule that
// forbids them with it), and nothing is left behind.
func TestDemo(t *testing.T) {
	requireDemo(t)
	code, out, errs := runCmd("demo")
	m := demoSuffix.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("exit %d, no suffix in the output:\n%s%s", code, out, errs)
	}
	if left := leftovers(t, m[1]); len(left) > 0 {
		t.Errorf("left behind: %q", left)
	}
	if code != 0 {
		t.Fatalf("exit %d:\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		"server got it from 203.0.113.1:", "(masqueraded); echo came back as 203.0.113.10:7 → 192.168.122.10:",
		"answered: 192.168.122.1 is-at ",
		"spoof dropped   guest1 → upstream: UDP from spoofed source IP 192.168.122.99",
		"drop no-ip-spoofing#2 (prio 1000) +1",
		"drop no-mac-spoofing#1 (prio 500) +1",
		"drop no-arp-ip-spoofing#1 (prio 1000) +1",
		"accept allow-incoming-ipv4#0 (prio 500) +1",
		"nwbpf drop counter: l2/out +1",
		"all expectations met",
		"sandbox removed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "  ok   "); n != 14 {
		t.Errorf("%d probes ok, want 14 (7 without nwbpf, 7 with):\n%s", n, out)
	}
	if strings.Contains(out, "FAIL") {
		t.Errorf("output reports a failure:\n%s", out)
	}
}

// TestDemoFailsWhenSpoofingPasses binds the guests in shadow mode, where
// the classifier passes everything: the demo must report every spoofed
// probe as a failed expectation, exit with an error, and still clean up.
func TestDemoFailsWhenSpoofingPasses(t *testing.T) {
	requireDemo(t)
	suffix, err := sandbox.Suffix()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = demo(context.Background(), &out, demoConfig{filterDirs: compiler.DefaultFilterDirs, suffix: suffix, bpffs: privtest.BPFFS, shadow: true})
	if err == nil || !strings.Contains(err.Error(), "4 expectations failed") {
		t.Errorf("demo in shadow mode: error %v, want 4 expectations failed\n%s", err, out.String())
	}
	if n := len(regexp.MustCompile(`FAIL \d spoof delivered`).FindAllString(out.String(), -1)); n != 4 {
		t.Errorf("%d spoofed probes reported delivered, want 4:\n%s", n, out.String())
	}
	if left := leftovers(t, suffix); len(left) > 0 {
		t.Errorf("left behind: %q", left)
	}
}

// TestDemoInterrupted cancels the demo (as Ctrl-C does) once the guests
// are attached: it stops with the cancellation and removes everything.
func TestDemoInterrupted(t *testing.T) {
	requireDemo(t)
	suffix, err := sandbox.Suffix()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out bytes.Buffer
	err = demo(ctx, &out, demoConfig{filterDirs: compiler.DefaultFilterDirs, suffix: suffix, bpffs: privtest.BPFFS, afterAttach: cancel})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("interrupted demo: error %v, want context.Canceled\n%s", err, out.String())
	}
	if n := strings.Count(out.String(), "  ok   "); n != 7 || strings.Contains(out.String(), "expectations met") {
		t.Errorf("%d probes ok, want only the 7 run before the interruption:\n%s", n, out.String())
	}
	if left := leftovers(t, suffix); len(left) > 0 {
		t.Errorf("left behind: %q", left)
	}
}

// TestDemoWithoutStockFilters: without libvirt's stock filters the demo
// tells the operator what to install and builds nothing.
func TestDemoWithoutStockFilters(t *testing.T) {
	code, out, errs := runCmd("demo", "--filter-dir", t.TempDir())
	if code == 0 {
		t.Fatalf("exit 0 without stock filters:\n%s", out)
	}
	if !strings.Contains(errs, "apt-get install libvirt-daemon-config-nwfilter") {
		t.Errorf("stderr does not say what to install: %q", errs)
	}
	if out != "" {
		t.Errorf("output before failing: %q", out)
	}
}
