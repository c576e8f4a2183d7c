// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/nwbpf/nwbpf/compiler"
	"github.com/nwbpf/nwbpf/loader"
	"github.com/nwbpf/nwbpf/maps"
)

// verdictFrame is one input line of `nwbpf verdict`.
type verdictFrame struct {
	line  int
	dir   maps.Dir
	frame []byte
	group string
}

// verdictLine is one output line of `nwbpf verdict`.
type verdictLine struct {
	I        int    `json:"i"`
	Dir      string `json:"dir"`
	Verdict  string `json:"verdict"`
	Stage    string `json:"stage"`
	Filter   string `json:"filter"`
	Priority int    `json:"priority"`
	Action   string `json:"action"`
}

// minFrame is the shortest frame BPF_PROG_TEST_RUN takes: an Ethernet
// header.
const minFrame = 14

// readFrames parses the JSON-lines input: {"dir":"out"|"in",
// "frame_hex":"...","group":"optional"}, other fields ignored, blank
// lines skipped. Any malformed line is an error naming it.
func readFrames(r io.Reader, name string) ([]verdictFrame, error) {
	var out []verdictFrame
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var in struct {
			Dir      *string `json:"dir"`
			FrameHex *string `json:"frame_hex"`
			Group    *string `json:"group"`
		}
		if err := json.Unmarshal(line, &in); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", name, n, err)
		}
		f := verdictFrame{line: n}
		switch {
		case in.Dir == nil:
			return nil, fmt.Errorf("%s line %d: no \"dir\"", name, n)
		case *in.Dir == "out":
			f.dir = maps.DirOut
		case *in.Dir == "in":
			f.dir = maps.DirIn
		default:
			return nil, fmt.Errorf("%s line %d: dir %q, want \"out\" or \"in\"", name, n, *in.Dir)
		}
		if in.FrameHex == nil {
			return nil, fmt.Errorf("%s line %d: no \"frame_hex\"", name, n)
		}
		b, err := hex.DecodeString(*in.FrameHex)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: frame_hex: %w", name, n, err)
		}
		if len(b) < minFrame {
			return nil, fmt.Errorf("%s line %d: frame of %d bytes, need at least %d (an Ethernet header)", name, n, len(b), minFrame)
		}
		f.frame = b
		if in.Group != nil {
			f.group = *in.Group
		}
		out = append(out, f)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return out, nil
}

func runVerdict(args []string, stdout io.Writer) error {
	fs := newFlagSet("verdict", "usage: nwbpf verdict (--binding FILE | --filter NAME --mac MAC [--param NAME=VALUE]...) --frames FRAMES.jsonl")
	var bf bindingFlags
	bf.register(fs)
	framesPath := fs.String("frames", "", "frames to judge, one JSON object a line: {\"dir\":\"out\"|\"in\",\"frame_hex\":\"...\",\"group\":\"...\"} ('-' for stdin)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected arguments %q", pos)
	}
	if *framesPath == "" {
		return fmt.Errorf("--frames is required")
	}
	prog, inst, _, err := bf.compileBinding()
	if err != nil {
		return err
	}
	var in io.Reader = os.Stdin
	name := "stdin"
	if *framesPath != "-" {
		f, err := os.Open(*framesPath)
		if err != nil {
			return err
		}
		defer f.Close()
		in, name = f, *framesPath
	}
	frames, err := readFrames(in, name)
	if err != nil {
		return err
	}
	return judge(stdout, prog, inst, frames)
}

// judge runs the frames in order through a private classifier and prints
// one line per frame. A frame without a group, or the first of another
// group than the previous frame's, starts from no flow state.
func judge(w io.Writer, prog *compiler.Program, inst compiler.Instances, frames []verdictFrame) error {
	tr, err := loader.NewTestRun()
	if err != nil {
		return err
	}
	defer tr.Close()
	err = tr.Bind(loader.LoopbackIfindex, maps.BindRequest{
		ID: 1, OutHook: maps.HookIngress, Stages: prog.Stages, Instances: inst,
	})
	if err != nil {
		return fmt.Errorf("bind %s: %w", prog.Filter, err)
	}
	enc := json.NewEncoder(w)
	prev := ""
	for i, f := range frames {
		if f.group == "" || f.group != prev {
			if err := tr.ResetState(); err != nil {
				return err
			}
		}
		prev = f.group
		d, err := tr.Run(loader.LoopbackIfindex, f.dir, f.frame)
		if err != nil {
			return fmt.Errorf("frame %d (line %d): %w", i, f.line, err)
		}
		if !d.Traced {
			return fmt.Errorf("frame %d (line %d): the classifier recorded no decision", i, f.line)
		}
		out := verdictLine{I: i, Dir: f.dir.String(), Verdict: verdictName(d.Trace.Verdict), Stage: d.Trace.Stage.String()}
		if d.Trace.Dflt == 0 && d.Trace.Index != maps.NoEntry && int(d.Trace.Rule) < len(prog.Meta) {
			m := prog.Meta[d.Trace.Rule]
			out.Filter, out.Priority, out.Action = m.Filter, m.Priority, m.Action
		}
		if err := enc.Encode(out); err != nil {
			return err
		}
	}
	return nil
}

// verdictName names a classifier verdict as the output does; a malformed
// program (never one the compiler makes) fails closed: drop.
func verdictName(v maps.Verdict) string {
	switch v {
	case maps.VerdictPass:
		return "accept"
	case maps.VerdictReject:
		return "reject"
	}
	return "drop"
}
