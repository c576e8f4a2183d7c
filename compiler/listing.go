// SPDX-License-Identifier: Apache-2.0

package compiler

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/nwbpf/nwbpf/maps"
)

// Listing is the JSON form of a compiled program and a binding's values.
type Listing struct {
	Filter string         `json:"filter"`
	Stages []StageListing `json:"stages"`
}

// StageListing is one direction and stage.
type StageListing struct {
	Dir     string         `json:"dir"`
	Stage   string         `json:"stage"`
	Entries []EntryListing `json:"entries"`
}

// EntryListing is one entry with its metadata and, for entries with
// variables, the binding's instances.
type EntryListing struct {
	Index     int         `json:"index"`
	Kind      string      `json:"kind"`
	Target    *uint32     `json:"target,omitempty"`
	Meta      RuleMeta    `json:"meta"`
	Conds     []maps.Cond `json:"conds"`
	Instances [][]string  `json:"instances,omitempty"`
}

// List builds the listing; inst may be nil.
func (p *Program) List(inst Instances) Listing {
	l := Listing{Filter: p.Filter}
	for _, d := range []maps.Dir{maps.DirOut, maps.DirIn} {
		for _, st := range []maps.Stage{maps.StageL2, maps.StageL34} {
			sl := StageListing{Dir: d.String(), Stage: st.String(), Entries: []EntryListing{}}
			for i, r := range p.Stages[d][st] {
				e := EntryListing{Index: i, Kind: r.Kind.String(), Meta: p.Meta[r.ID], Conds: append([]maps.Cond(nil), r.Cond[:r.NCond]...)}
				if r.Kind == maps.RKJump {
					t := r.Target
					e.Target = &t
				}
				if r.NVar > 0 && inst != nil && int(r.VSlot) < len(inst) {
					for _, in := range inst[r.VSlot] {
						var vals []string
						for j, cv := range in {
							vals = append(vals, formatValue(varCond(r, j), cv))
						}
						e.Instances = append(e.Instances, vals)
					}
				}
				sl.Entries = append(sl.Entries, e)
			}
			l.Stages = append(l.Stages, sl)
		}
	}
	return l
}

func varCond(r maps.Rule, j int) maps.Cond {
	for _, c := range r.Cond[:r.NCond] {
		if c.Flags&maps.CFVar != 0 && int(c.Var) == j {
			return c
		}
	}
	return maps.Cond{}
}

// formatValue prints an instance value for its field.
func formatValue(c maps.Cond, v maps.CVal) string {
	switch c.Field {
	case maps.FSrcMAC, maps.FDstMAC, maps.FArpSHA, maps.FArpTHA, maps.FStpRootAddr, maps.FStpSenderAddr:
		return formatMACU(v.A) + "/" + formatMACU(v.B)
	case maps.FIP4Src, maps.FIP4Dst, maps.FArpSPA, maps.FArpTPA:
		if c.Op == maps.OpRange {
			return ip4(v.A) + "-" + ip4(v.B)
		}
		return ip4(v.A) + "/" + fmt.Sprint(ones32(v.B[1]))
	}
	if c.Op == maps.OpRange {
		return fmt.Sprintf("%d-%d", v.A[1], v.B[1])
	}
	if c.Field.Width() == 16 {
		return fmt.Sprintf("%016x%016x/%016x%016x", v.A[0], v.A[1], v.B[0], v.B[1])
	}
	return fmt.Sprintf("0x%x", v.A[1])
}

func ip4(a maps.U128) string {
	x := a[1]
	return fmt.Sprintf("%d.%d.%d.%d", byte(x>>24), byte(x>>16), byte(x>>8), byte(x))
}

func ones32(m uint64) int {
	n := 0
	for i := 31; i >= 0 && m&(1<<uint(i)) != 0; i-- {
		n++
	}
	return n
}

// WriteText prints the listing for an operator: per direction and stage,
// each entry's position, chain, priority, action, source filter and
// match, then the binding's instance values of variable entries.
func (l Listing) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "filter %s\n", l.Filter)
	for _, s := range l.Stages {
		dir := map[string]string{"out": "out (sent by the VM)", "in": "in (sent to the VM)"}[s.Dir]
		fmt.Fprintf(tw, "\n%s, stage %s: %d entries\n", dir, s.Stage, len(s.Entries))
		if len(s.Entries) == 0 {
			continue
		}
		fmt.Fprintln(tw, "#\tCHAIN\tPRIO\tACTION\tFILTER\tMATCH")
		for _, e := range s.Entries {
			filter := e.Meta.Filter
			if filter != "" {
				filter = fmt.Sprintf("%s#%d", filter, e.Meta.Rule)
				if e.Meta.Reversed {
					filter += " (reversed)"
				}
			}
			action := e.Meta.Action
			if e.Target != nil {
				action = fmt.Sprintf("%s (@%d)", action, *e.Target)
			}
			match := e.Meta.Match
			if match == "" {
				match = "*"
			}
			fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\n", e.Index, e.Meta.Chain, e.Meta.Priority, action, filter, match)
			for _, in := range e.Instances {
				fmt.Fprintf(tw, "\t\t\t\t\t  = %s\n", strings.Join(in, ", "))
			}
		}
	}
	return tw.Flush()
}
