// SPDX-License-Identifier: Apache-2.0

package compiler

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nwbpf/nwbpf/maps"
)

// Vars is a binding's variable set: the <filterref> parameters of the
// binding, with MAC set from the binding's MAC unless given.
func (b *Binding) Vars() *Params {
	v := &Params{}
	for _, n := range b.Params.Names() {
		vals, _ := b.Params.Get(n)
		for _, x := range vals {
			v.Add(n, x)
		}
	}
	if _, ok := v.Get("MAC"); !ok {
		v.Add("MAC", FormatMAC(b.MAC))
	}
	return v
}

// scopedLookup resolves a variable for a rule occurrence: the binding's
// values win over the parameters of the filterrefs on the path, and an
// outer filterref's over an inner one's.
func scopedLookup(vars *Params, scopes []*Params) func(string) ([]string, bool) {
	return func(name string) ([]string, bool) {
		if v, ok := vars.Get(name); ok {
			return v, true
		}
		for _, s := range scopes {
			if v, ok := s.Get(name); ok {
				return v, true
			}
		}
		return nil, false
	}
}

// Bind computes a binding's per-rule instance values for p. Every
// variable referenced anywhere in the tree must resolve (libvirt checks
// them all before instantiating), lists sharing an iterator must have
// equal length, element accesses must exist, and every substituted value
// must be valid for its attribute.
func (p *Program) Bind(vars *Params) (Instances, error) {
	type combos = []map[VarAccess]string
	cache := map[*ruleInst]combos{}
	expandFor := func(ri *ruleInst) (combos, error) {
		if c, ok := cache[ri]; ok {
			return c, nil
		}
		c, err := expand(ri.r.Vars, scopedLookup(vars, ri.scopes))
		if err != nil {
			var ue *ErrUnboundVar
			if errors.As(err, &ue) && ue.Name == "IP" {
				err = fmt.Errorf("%w (IP address learning is not available: pass the guest's address, e.g. --param IP=10.0.0.5)", err)
			}
			return nil, &Error{Where: ri.where(), Err: err}
		}
		cache[ri] = c
		return c, nil
	}
	for _, ri := range p.varInsts {
		if _, err := expandFor(ri); err != nil {
			return nil, err
		}
	}
	out := make(Instances, len(p.VarRules))
	for _, vr := range p.VarRules {
		combos, err := expandFor(vr.inst)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, combo := range combos {
			inst := make([]maps.CVal, len(vr.conds))
			for j, c := range vr.conds {
				vals, err := resolveValues(c, vr.inst.r, combo)
				if err != nil {
					return nil, &Error{Where: vr.inst.where(), Err: err}
				}
				a, b := c.build(vals)
				if c.check != nil {
					if err := c.check(a, b); err != nil {
						return nil, &Error{Where: vr.inst.where(), Err: fmt.Errorf("%s: %w", strings.Join(c.attrs, "/"), err)}
					}
				}
				inst[j] = maps.CVal{A: a, B: b}
			}
			key := fmt.Sprint(inst)
			if seen[key] {
				continue
			}
			seen[key] = true
			out[vr.Slot] = append(out[vr.Slot], inst)
		}
	}
	return out, nil
}

// resolveValues substitutes one combination into a condition's attributes
// and parses each value for its attribute's type.
func resolveValues(c condT, r *Rule, combo map[VarAccess]string) ([]value, error) {
	vals := make([]value, len(c.attrs))
	pd := protocols[r.Proto]
	for i, an := range c.attrs {
		a, ok := r.Attrs[an]
		if !ok {
			continue
		}
		if a.Var == nil {
			vals[i] = a.Val
			continue
		}
		raw := combo[*a.Var]
		v, err := parseTyped(pd.attr(an), raw)
		if err != nil {
			return nil, fmt.Errorf("<%s> attribute %s from $%s: %w", r.Proto, an, a.Var.String(), err)
		}
		v.raw = raw
		vals[i] = v
	}
	return vals, nil
}

// Footprint is how many nwf_vidx and nwf_vals entries a binding's
// instances occupy; with the nwf_bindings entry that is all the kernel
// memory a binding adds on top of its shared Program.
func (in Instances) Footprint() (vidx, vals int) {
	for _, slot := range in {
		vidx++
		for _, inst := range slot {
			vals += len(inst)
		}
	}
	return vidx, vals
}

// BindingBytes is the value and key bytes a binding adds to the maps:
// its nwf_bindings entry (4-byte key, 16-byte value), nwf_vidx (8 bytes)
// and nwf_vals (32 bytes) entries.
func (in Instances) BindingBytes() int {
	vidx, vals := in.Footprint()
	return 4 + 16 + 8*vidx + 32*vals
}
