// SPDX-License-Identifier: Apache-2.0

package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/nwbpf/nwbpf/compiler"
	"github.com/nwbpf/nwbpf/internal/privtest"
	"github.com/nwbpf/nwbpf/maps"
	"github.com/nwbpf/nwbpf/tests/libvirtref"
	"github.com/nwbpf/nwbpf/tests/netenv"
)

// Environment variables of `make conformance`.
const (
	envSeed   = "NWBPF_CONFORMANCE_SEED"   // seed of the random cases
	envRandom = "NWBPF_CONFORMANCE_RANDOM" // number of random cases
	envReport = "NWBPF_CONFORMANCE_REPORT" // write the report there
)

// CI defaults: a fixed seed and a random share that keeps the whole harness
// within its time budget.
const (
	defaultSeed   = 1
	defaultRandom = 100
)

func envUint(t *testing.T, name string, def uint64) uint64 {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return v
}

// libvirtRef is the Reference backed by the libvirt oracle.
type libvirtRef struct {
	t *testing.T
	o *libvirtref.Oracle
}

func (r *libvirtRef) Define(doc string) { libvirtref.DefineFilter(r.t, doc) }

func (r *libvirtRef) Bind(filter string, params []Param) {
	ps := make([]libvirtref.Param, len(params))
	for i, p := range params {
		ps[i] = libvirtref.Param{Name: p.Name, Value: p.Value}
	}
	r.o.Bind(filter, ps...)
}

func (r *libvirtRef) Unbind() { r.o.Unbind() }

func (r *libvirtRef) Flush() { libvirtref.FlushConntrack(r.t) }

// Send is the Oracle's Send, except that an IPv6 atomic fragment also
// counts as delivered in the form bridge netfilter's defragmentation gives
// it (Defragmented).
func (r *libvirtRef) Send(dir maps.Dir, frame []byte, timeout time.Duration) bool {
	var from, to netenv.Endpoint = r.o.Tap, r.o.Sink
	if dir == maps.DirIn {
		from, to = r.o.Sink, r.o.Tap
	}
	if err := netenv.Drain(to); err != nil {
		r.t.Fatalf("send %v: %v", dir, err)
	}
	if err := from.Send(frame); err != nil {
		r.t.Fatalf("send %v: %v", dir, err)
	}
	ok, err := await(to, frame, timeout)
	if err != nil {
		r.t.Fatalf("send %v: %v", dir, err)
	}
	return ok
}

// libvirtVersion describes the reference for the report.
func libvirtVersion() string {
	out, err := exec.Command("libvirtd", "--version").Output()
	if err != nil {
		return "libvirt"
	}
	v := strings.TrimSpace(string(out))
	if f := strings.Fields(v); len(f) > 0 {
		v = "libvirt " + f[len(f)-1]
	}
	return v
}

// TestConformance runs the harness over every stock filter and the
// checklist set against real libvirt, with the reference evaluator and,
// where the classifier loads, BPF_PROG_TEST_RUN and a real tap (the whole
// corpus: a drop the classifier makes is known at once from its drop
// statistics, so only frames lost elsewhere cost a wait). Any divergence
// that is not a Known one fails the test (state-dependent frames included
// for the classifier verdicters), and so does any frame the two classifier
// verdicters judge differently.
func TestConformance(t *testing.T) {
	privtest.Require(t)
	if _, err := os.Stat(StockDir); err != nil && !privtest.CI() {
		t.Skipf("stock filters not installed (%v): apt-get install libvirt-daemon-config-nwfilter", err)
	}
	seed := envUint(t, envSeed, defaultSeed)
	nRandom := int(envUint(t, envRandom, defaultRandom))

	o := libvirtref.New(t)
	// A fixed guest MAC keeps the frames the same from run to run (the
	// peer's MAC is the sink's, random, and only ever named by role).
	o.GuestMAC = net.HardwareAddr{0x52, 0x54, 0x00, 0x77, 0x00, 0x05}
	n := Net{Guest: o.GuestMAC, Peer: o.Sink.MAC}

	set, err := compiler.LoadDir(StockDir)
	if err != nil {
		t.Fatal(err)
	}
	stock, err := Stock(StockDir, n)
	if err != nil {
		t.Fatal(err)
	}
	filters := append(stock, Checklist(strings.TrimPrefix(netenv.Name("c"), "c"), n)...)
	corpus := append(Fixed(), Random(seed, nRandom)...)

	vs := []Verdicter{EvalVerdicter{}}
	if tr := newTestRun(t); tr != nil {
		vs = append(vs, tr)
	}
	tap := newTap(t, n)
	if tap != nil {
		vs = append(vs, tap)
	}
	res, err := Run(&libvirtRef{t: t, o: o}, set, filters, corpus, n, vs, Options{
		Timeout: 25 * time.Millisecond,
		Confirm: 300 * time.Millisecond,
		Known:   KnownDivergences,
		Logf:    t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	res.Seed, res.RandomCases = seed, nRandom
	for _, f := range res.Filters {
		for _, d := range f.Unexplained() {
			t.Errorf("%s %s: %s: %s: libvirt %s, nwbpf %s (%s)%s", f.Verdicter, f.Filter.Label, d.Case.Name, d.Frame.Spec,
				word(d.Libvirt), word(d.Nwbpf), d.Decider, history(f, d))
		}
	}
	// The classifier under BPF_PROG_TEST_RUN and attached to a real tap
	// must agree on every frame, explained divergences included.
	for i, a := range res.Tracked {
		for _, b := range res.Tracked[i+1:] {
			for _, d := range res.Disagreements(a, b) {
				t.Errorf("%s and %s disagree on %s: %s: %s: libvirt %s, %s %s, %s %s", a, b, d.Filter.Label, d.A.Case.Name,
					d.A.Frame.Spec, word(d.A.Libvirt), a, word(d.A.Nwbpf), b, word(d.B.Nwbpf))
			}
		}
	}
	if tap != nil {
		for _, l := range tap.Lost {
			t.Logf("tap: passed by the classifier, lost on the kernel's path: %s", l)
		}
	}
	// An open (nwbpf bug) divergence that no longer occurs has been
	// fixed: its entry must go.
	seen := res.Explained()
	for _, k := range KnownDivergences {
		if k.Open && seen[k.ID] == 0 && (!k.Stateful || len(res.Tracked) > 0) {
			t.Errorf("open divergence %s no longer occurs: remove it from KnownDivergences", k.ID)
		}
	}
	t.Logf("%d filter trees, %d cases, %d frames each, %s", len(filters), res.Cases, res.Frames, res.Duration.Round(time.Second))
	if path := os.Getenv(envReport); path != "" {
		var b bytes.Buffer
		if err := Report(&b, res, ReportInfo{
			Command:     "make conformance",
			Environment: libvirtVersion(),
		}); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// newTestRun returns the BPF_PROG_TEST_RUN verdicter, removed in
// t.Cleanup, or nil where the kernel cannot load the classifier.
func newTestRun(t *testing.T) Verdicter {
	t.Helper()
	v, err := NewTestRunVerdicter(filepath.Join(privtest.BPFFS, netenv.Name("nwbpfc")))
	if errors.Is(err, ebpf.ErrNotSupported) {
		t.Logf("classifier verdicter skipped: %v", err)
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := v.Close(); err != nil {
			t.Error(err)
		}
	})
	return v
}

// newTap returns the real-tap verdicter, or nil where the kernel cannot
// load or attach the classifier through TCX.
func newTap(t *testing.T, n Net) *TapVerdicter {
	t.Helper()
	v, err := NewTapVerdicter(t, n.Peer)
	if errors.Is(err, ebpf.ErrNotSupported) {
		t.Logf("tap verdicter skipped: %v", err)
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// history describes the frames of d's case before d, with both verdicts,
// for a state-dependent divergence (empty otherwise): what the connection
// state was built from.
func history(f *FilterResult, d FrameResult) string {
	if !d.State || d.Index == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("; after")
	for _, fr := range f.Frames {
		if fr.Case == d.Case && fr.Index < d.Index {
			fmt.Fprintf(&b, " [%s: libvirt %s, nwbpf %s]", fr.Frame.Spec, word(fr.Libvirt), word(fr.Nwbpf))
		}
	}
	return b.String()
}
