// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nwbpf/nwbpf/internal/privtest"
)

func TestParseInterleaved(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	a := fs.String("a", "", "")
	b := fs.Bool("b", false, "")
	pos, err := parseInterleaved(fs, []string{"--a", "1", "dev0", "-b", "dev1"})
	if err != nil || *a != "1" || !*b || !cmp.Equal(pos, []string{"dev0", "dev1"}) {
		t.Errorf("got %q, a=%q b=%v, %v", pos, *a, *b, err)
	}
}

func TestReadFramesErrors(t *testing.T) {
	ok := `{"dir":"out","frame_hex":"` + strings.Repeat("00", 14) + `","group":"g","other":1}`
	for _, c := range []struct {
		name, in, want string
	}{
		{"not json", ok + "\n{", "f.jsonl line 2"},
		{"no dir", `{"frame_hex":"00"}`, `line 1: no "dir"`},
		{"bad dir", `{"dir":"up","frame_hex":"00"}`, `line 1: dir "up"`},
		{"no frame", "\n\n" + `{"dir":"in"}`, `line 3: no "frame_hex"`},
		{"bad hex", `{"dir":"in","frame_hex":"zz"}`, "line 1: frame_hex"},
		{"short frame", `{"dir":"in","frame_hex":"0011"}`, "line 1: frame of 2 bytes"},
	} {
		_, err := readFrames(strings.NewReader(c.in), "f.jsonl")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
	}
	fs, err := readFrames(strings.NewReader(ok+"\n\n"+ok), "f.jsonl")
	if err != nil || len(fs) != 2 || fs[1].line != 3 || fs[0].group != "g" {
		t.Errorf("good input: %+v, %v", fs, err)
	}
}

// frameHex builds an Ethernet frame: dst, src, type, then payload.
func frameHex(dst, src, typ string, payload ...string) string {
	return dst + src + typ + strings.Join(payload, "")
}

// TestVerdictCleanTraffic runs frames through the real classifier with the
// stock clean-traffic, and checks each verdict and its deciding rule.
func TestVerdictCleanTraffic(t *testing.T) {
	privtest.Require(t)
	const stock = "/usr/share/libvirt/nwfilter"
	if _, err := os.Stat(stock); err != nil {
		if privtest.CI() {
			t.Fatalf("stock filters: %v", err)
		}
		t.Skipf("stock filters: %v", err)
	}
	vm, gw := "525400564432", "525400000001"
	ipf := func(frag, src, dst string) string { // IPv4 header, protocol UDP, then a UDP header
		return "4500001c0001" + frag + "4011" + "0000" + src + dst + "04d200350008" + "0000"
	}
	ip := func(src, dst string) string { return ipf("0000", src, dst) }
	guest, other, gwIP := "0a000005", "0a000042", "0a000001"
	lines := []struct{ dir, frame, group string }{
		{"out", frameHex(gw, vm, "0800", ip(guest, gwIP)), ""},
		{"out", frameHex(gw, vm, "0800", ip(other, gwIP)), "a"},
		{"out", frameHex(gw, "525400564433", "0800", ip(guest, gwIP)), "a"},
		{"in", frameHex(vm, gw, "0800", ip(gwIP, guest)), ""},
		{"in", frameHex(vm, gw, "86dd", strings.Repeat("00", 40)), ""},
		// A group shares flow state: the later fragment takes its first
		// fragment's verdict; alone, it is an orphan and dropped.
		{"out", frameHex(gw, vm, "0800", ipf("2000", guest, gwIP)), "frag"},
		{"out", frameHex(gw, vm, "0800", ipf("0003", guest, gwIP)), "frag"},
		{"out", frameHex(gw, vm, "0800", ipf("0003", guest, gwIP)), ""},
	}
	var in strings.Builder
	for _, l := range lines {
		if _, err := hex.DecodeString(l.frame); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(map[string]string{"dir": l.dir, "frame_hex": l.frame, "group": l.group})
		in.Write(append(b, '\n'))
	}
	path := filepath.Join(t.TempDir(), "frames.jsonl")
	if err := os.WriteFile(path, []byte(in.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd("verdict", "--filter-dir", stock, "--filter", "clean-traffic", "--mac", "52:54:00:56:44:32", "--param", "IP=10.0.0.5", "--frames", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := []verdictLine{
		{I: 0, Dir: "out", Verdict: "accept", Stage: "l34"},
		{I: 1, Dir: "out", Verdict: "drop", Stage: "l2", Filter: "no-ip-spoofing", Priority: 1000, Action: "drop"},
		{I: 2, Dir: "out", Verdict: "drop", Stage: "l2", Filter: "no-mac-spoofing", Priority: 500, Action: "drop"},
		{I: 3, Dir: "in", Verdict: "accept", Stage: "l34"},
		{I: 4, Dir: "in", Verdict: "drop", Stage: "l2", Filter: "no-other-l2-traffic", Priority: 1000, Action: "drop"},
		{I: 5, Dir: "out", Verdict: "accept", Stage: "l34"},
		{I: 6, Dir: "out", Verdict: "accept", Stage: "l34"},
		{I: 7, Dir: "out", Verdict: "drop", Stage: "l34"},
	}
	var got []verdictLine
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var v verdictLine
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("output line %q: %v", l, err)
		}
		got = append(got, v)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("verdicts (-want +got):\n%s", diff)
	}
	// A malformed line is an error naming it, and nothing is judged.
	if err := os.WriteFile(path, []byte(in.String()+`{"dir":"sideways"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCmd("verdict", "--filter-dir", stock, "--filter", "clean-traffic", "--mac", "52:54:00:56:44:32", "--param", "IP=10.0.0.5", "--frames", path)
	if code == 0 || out != "" || !strings.Contains(errs, "line 9") {
		t.Errorf("malformed line: exit %d, stdout %q, stderr %q; want an error naming line 9", code, out, errs)
	}
}
