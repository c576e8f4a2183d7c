// SPDX-License-Identifier: Apache-2.0

package integration

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nwbpf/nwbpf/compiler"
	"github.com/nwbpf/nwbpf/compiler/eval"
	"github.com/nwbpf/nwbpf/internal/privtest"
	"github.com/nwbpf/nwbpf/loader"
	"github.com/nwbpf/nwbpf/maps"
)

// fuzzRun is the private classifier the differential fuzz test runs
// frames through, one per test process (fuzz workers are processes).
var fuzzRun struct {
	once sync.Once
	tr   *loader.TestRun
	err  error
}

var writeSeeds = flag.Int("seeds", 0, "FuzzClassifierVsEval: write this many generated inputs that compile and bind to testdata/fuzz/FuzzClassifierVsEval")

func fuzzTestRun(t testing.TB) *loader.TestRun {
	t.Helper()
	privtest.Require(t)
	fuzzRun.once.Do(func() { fuzzRun.tr, fuzzRun.err = loader.NewTestRun() })
	if fuzzRun.err != nil {
		t.Fatalf("load private classifier: %v", fuzzRun.err)
	}
	return fuzzRun.tr
}

// fuzzCase is what one fuzz input describes.
type fuzzCase struct {
	docs  []string
	vars  map[string][]string
	frame []byte
}

func decodeCase(spec, raw []byte) fuzzCase {
	r := &reader{b: spec}
	c := fuzzCase{docs: genFilters(r), vars: genVars(r)}
	c.frame = genFrame(r, raw)
	if len(c.frame) > 1514 {
		c.frame = c.frame[:1514]
	}
	// BPF_PROG_TEST_RUN takes no less than an Ethernet header, and the
	// fixed IP header when the ethertype says IP (loader.ErrFrameRefused):
	// pad with zeros, which both sides then see.
	min := 14
	if len(c.frame) >= 14 {
		switch uint16(c.frame[12])<<8 | uint16(c.frame[13]) {
		case 0x0800:
			min = 14 + 20
		case 0x86dd:
			min = 14 + 40
		}
	}
	for len(c.frame) < min {
		c.frame = append(c.frame, 0)
	}
	return c
}

// compile compiles and binds a case; ok is false when the compiler
// rejects it (which the generator does not try to avoid).
func (c fuzzCase) compile() (*compiler.Program, compiler.Instances, bool) {
	set := compiler.NewSet()
	for i, d := range c.docs {
		f, err := compiler.ParseFilter([]byte(d), fmt.Sprintf("fuzz%d.xml", i))
		if err != nil {
			return nil, nil, false
		}
		if err := set.Define(f); err != nil {
			return nil, nil, false
		}
	}
	prog, err := set.Compile("fz", compiler.Options{})
	if err != nil {
		return nil, nil, false
	}
	var vars compiler.Params
	for _, name := range []string{"MAC", "GWMAC", "IP", "IP6", "PORT", "DHCPSERVER"} {
		for _, v := range c.vars[name] {
			vars.Add(name, v)
		}
	}
	inst, err := prog.Bind(&vars)
	if err != nil {
		return nil, nil, false
	}
	return prog, inst, true
}

// FuzzClassifierVsEval holds the BPF classifier to the reference
// evaluator: a random filter tree (random protocols, attributes, actions,
// directions, priorities, match='no', variables, a sub-chain), compiled by
// compiler/ and bound with random variable values, judges a random or
// malformed frame in both directions, once under BPF_PROG_TEST_RUN and
// once with eval.Eval; verdict, deciding stage, entry and rule id must be
// the same, and so must the parse. Inputs the compiler rejects are
// skipped. Each run starts with no flow state; the reference evaluator
// gets the connection view the classifier reports in its parse (none
// without conntrack-lite: eval.CT{}). A non-first fragment's L3/L4 verdict
// comes from its first fragment, which the stateless evaluator cannot
// know: only an L2 drop of one is compared.
func FuzzClassifierVsEval(f *testing.F) {
	if *writeSeeds > 0 {
		writeSeedCorpus(f, *writeSeeds)
	}
	f.Fuzz(func(t *testing.T, spec, raw []byte) {
		tr := fuzzTestRun(t)
		c := decodeCase(spec, raw)
		prog, inst, ok := c.compile()
		if !ok {
			return
		}
		if err := tr.Bind(loader.LoopbackIfindex, maps.BindRequest{ID: 1, Stages: prog.Stages, Instances: inst}); err != nil {
			t.Fatalf("bind: %v\n%s", err, c)
		}
		for _, dir := range []maps.Dir{maps.DirOut, maps.DirIn} {
			if err := tr.ResetState(); err != nil {
				t.Fatal(err)
			}
			d, err := tr.Run(loader.LoopbackIfindex, dir, c.frame)
			if errors.Is(err, loader.ErrFrameRefused) {
				return // the kernel cannot test-run it
			}
			if err != nil {
				t.Fatalf("run: %v\n%s", err, c)
			}
			if !d.Traced {
				t.Fatalf("%s: no decision traced\n%s", dir, c)
			}
			pkt := eval.Parse(c.frame, eval.Meta{})
			if diff := parseDiff(&d.Pkt, pkt); diff != "" {
				t.Fatalf("%s: parse differs from the reference: %s\n%s", dir, diff, c)
			}
			ct := eval.CT{}
			if d.Pkt.Has(maps.FCTState) {
				ct = eval.CT{Present: true, State: uint8(d.Pkt.Val[maps.FCTState][1]), Dir: uint8(d.Pkt.Val[maps.FCTDir][1])}
			}
			res := eval.Eval(prog.Stages, inst, pkt, dir, ct)
			if d.Pkt.Frag&maps.PFLater != 0 && (res.Stage != maps.StageL2 || res.Verdict == eval.VerdictAccept) {
				continue
			}
			if diff := decisionDiff(d.Trace, res); diff != "" {
				t.Fatalf("%s: %s\n%s", dir, diff, c)
			}
		}
	})
}

// String prints a case for a failure report: the filters, the variables
// and the frame.
func (c fuzzCase) String() string {
	var b strings.Builder
	for _, d := range c.docs {
		b.WriteString(d + "\n")
	}
	fmt.Fprintf(&b, "vars %v\nframe %x", c.vars, c.frame)
	return b.String()
}

// decisionDiff compares the classifier's trace with the reference result.
func decisionDiff(tr maps.Trace, res eval.Result) string {
	want := map[eval.Verdict]maps.Verdict{eval.VerdictAccept: maps.VerdictPass, eval.VerdictDrop: maps.VerdictDrop,
		eval.VerdictReject: maps.VerdictReject, eval.VerdictError: maps.VerdictError}[res.Verdict]
	idx := uint32(maps.NoEntry)
	if res.Index >= 0 {
		idx = uint32(res.Index)
	}
	if tr.Verdict != want || tr.Stage != res.Stage || tr.Index != idx || (res.Index >= 0 && tr.Rule != res.RuleID) {
		return fmt.Sprintf("classifier %s at %s entry %d rule %d (reason %s), reference %s at %s entry %d rule %d (%v)",
			tr.Verdict, tr.Stage, int32(tr.Index), tr.Rule, tr.Reason, want, res.Stage, res.Index, res.RuleID, res.Err)
	}
	return ""
}

// parseDiff compares the classifier's parse with the reference parse,
// but for the connection fields, which the reference takes from Eval's
// argument.
func parseDiff(got *maps.Pkt, want *eval.Packet) string {
	for f := maps.FNone; f < maps.FieldMax; f++ {
		if f == maps.FCTState || f == maps.FCTDir {
			continue
		}
		wv, wok := eval.FieldValue(want, f)
		if got.Has(f) != wok {
			return fmt.Sprintf("field %s present %v, reference %v", f, got.Has(f), wok)
		}
		if wok && got.Val[f] != wv {
			return fmt.Sprintf("field %s = %#x, reference %#x", f, got.Val[f], wv)
		}
	}
	for k := range 256 {
		found, ok := eval.TCPOption(want, uint8(k))
		if (got.TCPOptOK != 0) != ok {
			return fmt.Sprintf("TCP options readable %v, reference %v", got.TCPOptOK != 0, ok)
		}
		if ok && got.HasTCPOption(uint8(k)) != found {
			return fmt.Sprintf("TCP option %d: %v, reference %v", k, got.HasTCPOption(uint8(k)), found)
		}
	}
	return ""
}

// writeSeedCorpus writes n random inputs that compile and bind, and whose
// frames are decided by a rule (not by a stage's default), as the seed
// corpus (go test -run FuzzClassifierVsEval -seeds N ./tests/integration).
func writeSeedCorpus(f *testing.F, n int) {
	dir := filepath.Join("testdata", "fuzz", "FuzzClassifierVsEval")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for written, tries := 0, 0; written < n && tries < 100000; tries++ {
		spec := make([]byte, 40+rng.IntN(160))
		raw := make([]byte, rng.IntN(80))
		for i := range spec {
			spec[i] = byte(rng.UintN(256))
		}
		for i := range raw {
			raw[i] = byte(rng.UintN(256))
		}
		c := decodeCase(spec, raw)
		prog, inst, ok := c.compile()
		if !ok {
			continue
		}
		decided := false
		for _, dir := range []maps.Dir{maps.DirOut, maps.DirIn} {
			if !eval.Eval(prog.Stages, inst, eval.Parse(c.frame, eval.Meta{}), dir, eval.CT{}).Default {
				decided = true
			}
		}
		if !decided && written%4 != 0 {
			continue
		}
		data := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n[]byte(%q)\n", spec, raw)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%02d", written)), []byte(data), 0o644); err != nil {
			f.Fatal(err)
		}
		written++
	}
}
