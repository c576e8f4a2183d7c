// SPDX-License-Identifier: Apache-2.0

package loader

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/nwbpf/nwbpf/maps"
)

// BenchmarkConntrack measures the cost per frame through BPF_PROG_TEST_RUN
// of the classifier (loaded as in production, without tracing) running a
// clean-traffic-like L2 stage and libvirt's stateful L3/L4 rules (accept
// out udp/53 and its replies, drop the rest), next to the empty program:
//
//   - established-out, established-in: a DNS flow that saw its answer;
//     the L3/L4 verdict comes from the flow's cache (fast path).
//   - established-tcp: a data segment of an established TCP connection
//     into the VM's port 22, through the TCP state and window checks
//     and the cache.
//   - new-flow: every frame starts a new flow (a new source port and
//     destination each time), which is looked up twice, evaluated and
//     inserted. Distinct frames need one test run each, so this is timed
//     one run at a time; empty-single is the empty program timed the same
//     way, the baseline to subtract.
//
// Without a context the test run's device is the loopback (ifindex 1).
func BenchmarkConntrack(b *testing.B) {
	l := benchLoader(b)
	stages, inst := cleanTrafficLike()
	sp := statefulProgram()
	stages[maps.DirOut][maps.StageL34] = sp[maps.DirOut][maps.StageL34]
	stages[maps.DirIn][maps.StageL34] = sp[maps.DirIn][maps.StageL34]
	if !maps.FlowInvariant(&stages) {
		b.Fatal("benchmark program not flow-invariant")
	}
	benchBind(b, l, stages, inst)
	query, answer := udpFrame(b, true, 4000, 53), udpFrame(b, false, 53, 4000)
	out, in := l.Program(maps.HookIngress), l.Program(maps.HookEgress)
	// The flow, answered, and one evaluated frame each way to fill the
	// cache.
	for _, p := range []struct {
		prog interface {
			Test([]byte) (uint32, []byte, error)
		}
		frame []byte
	}{{out, query}, {in, answer}, {out, query}, {in, answer}} {
		if ret, _, err := p.prog.Test(p.frame); err != nil || ret != tcOK {
			b.Fatalf("priming the flow: verdict %d, %v", ret, err)
		}
	}
	// A TCP connection into the VM's port 22, numbered as its ends would.
	syn, synack, ack := tcpFrame(b, false, 33000, 22, "S"), tcpFrame(b, true, 22, 33000, "SA"), tcpFrame(b, false, 33000, 22, "A")
	setSeq := func(f []byte, seq, ack uint32) []byte {
		binary.BigEndian.PutUint32(f[14+20+4:], seq)
		binary.BigEndian.PutUint32(f[14+20+8:], ack)
		return f
	}
	setSeq(syn, 7000, 0)
	setSeq(synack, 1000, 7001)
	setSeq(ack, 7001, 1001)
	data := setSeq(tcpFrame(b, false, 33000, 22, "PA"), 7001, 1001)
	for _, p := range []struct {
		prog interface {
			Test([]byte) (uint32, []byte, error)
		}
		frame []byte
	}{{in, syn}, {out, synack}, {in, ack}, {in, data}} {
		if ret, _, err := p.prog.Test(p.frame); err != nil || ret != tcOK {
			b.Fatalf("priming the TCP flow: verdict %d, %v", ret, err)
		}
	}
	for _, bc := range []struct {
		name  string
		run   func(b *testing.B) (time.Duration, uint32, error)
		cache bool
	}{
		{"empty", repeated(l.EmptyProgram().Benchmark, query), false},
		{"established-out", repeated(out.Benchmark, query), true},
		{"established-in", repeated(in.Benchmark, answer), true},
		{"established-tcp", repeated(in.Benchmark, data), true},
		{"empty-single", single(l.EmptyProgram().Benchmark), false},
		{"new-flow", single(out.Benchmark), false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			before := fastPathHits(b, l)
			d, ret, err := bc.run(b)
			if err != nil {
				b.Fatal(err)
			}
			if ret != tcOK {
				b.Fatalf("verdict %d, want pass", ret)
			}
			if hits := fastPathHits(b, l) - before; bc.cache && hits < uint64(b.N) {
				b.Fatalf("%d fast-path frames of %d", hits, b.N)
			}
			b.ReportMetric(float64(d.Nanoseconds()), "ns/frame")
		})
	}
}

// single runs a new flow's first frame b.N times, one test run each, and
// returns the mean of the runs' own durations.
func single(bench func([]byte, int, func()) (uint32, time.Duration, error)) func(*testing.B) (time.Duration, uint32, error) {
	return func(b *testing.B) (time.Duration, uint32, error) {
		var total time.Duration
		f := udpFrame(b, true, 0, 53)
		for i := range b.N {
			binary.BigEndian.PutUint16(f[14+20:], uint16(i))     // source port
			binary.BigEndian.PutUint16(f[14+18:], uint16(i>>16)) // destination address
			ret, d, err := bench(f, 1, nil)
			if err != nil || ret != tcOK {
				return 0, ret, err
			}
			total += d
		}
		return total / time.Duration(max(b.N, 1)), tcOK, nil
	}
}

// repeated runs a frame b.N times in one test run.
func repeated(bench func([]byte, int, func()) (uint32, time.Duration, error), f []byte) func(*testing.B) (time.Duration, uint32, error) {
	return func(b *testing.B) (time.Duration, uint32, error) {
		ret, d, err := bench(f, b.N, b.ResetTimer)
		return d, ret, err
	}
}

func fastPathHits(tb testing.TB, l *Loader) uint64 {
	tb.Helper()
	st, err := l.ConntrackStats()
	if err != nil {
		tb.Fatal(err)
	}
	return st.FastPathHits
}
