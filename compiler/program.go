// SPDX-License-Identifier: Apache-2.0

package compiler

import "github.com/nwbpf/nwbpf/maps"

// Program is a compiled filter tree. It depends only on the filter
// definitions, never on a binding's variable values, so every binding of the
// same tree shares one Program (stored once in the kernel).
type Program struct {
	// Filter is the name of the tree's root filter.
	Filter string `json:"filter"`
	// Stages holds the entries per direction and stage: Stages[dir][stage].
	// Jump targets are relative to the start of their stage. A stage with
	// no rules is empty (it passes).
	Stages [2][2][]maps.Rule `json:"-"`
	// Meta describes every entry; maps.Rule.ID indexes it.
	Meta []RuleMeta `json:"rules"`
	// VarRules describes, per variable slot (maps.Rule.VSlot), how a
	// binding's values fill the entry's NWF_CF_VAR conditions.
	VarRules []VarRule `json:"-"`

	// varInsts are all rule occurrences that reference variables, checked
	// at bind time even when they produce no entry (libvirt resolves every
	// variable of the tree before instantiating).
	varInsts []*ruleInst
}

// RuleMeta says where an entry came from, for listings, logs and verdicts.
type RuleMeta struct {
	ID       uint32        `json:"id"`
	Dir      maps.Dir      `json:"-"`
	Stage    maps.Stage    `json:"-"`
	Kind     maps.RuleKind `json:"-"`
	Chain    string        `json:"chain"`    // chain the entry sits in: "root", "mac", "ipv4-ip", ...
	Filter   string        `json:"filter"`   // filter that holds the rule ("" for chain ends)
	Rule     int           `json:"rule"`     // index of the rule in that filter, from 0 (-1 for jumps and ends)
	Priority int           `json:"priority"` // effective priority used for ordering
	Action   string        `json:"action"`   // accept drop reject return continue, "jump" or "end"
	Match    string        `json:"match"`    // human-readable conditions
	Path     []string      `json:"path"`     // filterref path from the root filter
	Reversed bool          `json:"reversed"` // source and destination swapped (the other direction's copy)
}

// VarRule is the binding-dependent part of one entry with variables.
type VarRule struct {
	// Slot is the entry's maps.Rule.VSlot.
	Slot uint32
	// ID is the entry's maps.Rule.ID.
	ID uint32

	inst  *ruleInst
	conds []condT // the entry's NWF_CF_VAR conditions, by Cond.Var
}

// Instances is a binding's data for one Program: for every variable slot,
// the instances of that rule, each a list of maps.Rule.NVar values in the
// order of the entry's Cond.Var indexes.
type Instances [][][]maps.CVal
