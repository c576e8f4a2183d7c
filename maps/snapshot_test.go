// SPDX-License-Identifier: Apache-2.0

package maps

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// roundTrip saves s's state through JSON and restores a Store over the
// same fake maps.
func roundTrip(t *testing.T, s *Store, f *fakes, c *clock) *Store {
	t.Helper()
	data, err := json.Marshal(s.State())
	if err != nil {
		t.Fatal(err)
	}
	var st StoreState
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	r, err := RestoreStore(Maps{Bindings: f.bindings, Rulesets: f.rulesets, Rules: f.rules, Vidx: f.vidx, Vals: f.vals},
		st, Options{Quarantine: time.Second, Now: c.now})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if diff := cmp.Diff(s.State(), r.State()); diff != "" {
		t.Fatalf("restored state differs (-saved +restored):\n%s", diff)
	}
	return r
}

// TestStoreStateRoundTrip runs one sequence of binds and unbinds twice:
// on one Store, and on Stores restored from the saved state after every
// step (a control plane that runs as separate processes). Both must make
// the same writes and end in the same state, quarantine included.
func TestStoreStateRoundTrip(t *testing.T) {
	v := func(x uint64) CVal { return CVal{A: U128{0, x}} }
	varProg := func(id uint32) [2][2][]Rule {
		p := prog(id, 2)
		p[DirIn][StageL2] = []Rule{{Kind: RKMatch, NVar: 1, NCond: 1, Cond: [MaxConds]Cond{{Flags: CFVar}}}}
		return p
	}
	steps := []func(s *Store) error{
		func(s *Store) error {
			return s.Bind(1, BindRequest{ID: 1, Stages: varProg(1), Instances: [][][]CVal{{{v(1)}, {v(2)}}}})
		},
		func(s *Store) error {
			return s.Bind(2, BindRequest{ID: 2, Stages: varProg(1), Instances: [][][]CVal{{{v(3)}}}})
		},
		func(s *Store) error { return s.Bind(3, BindRequest{ID: 3, Stages: prog(2, 3)}) },
		func(s *Store) error { return s.Bind(1, BindRequest{ID: 1, Stages: prog(3, 1)}) }, // quarantines
		func(s *Store) error { return s.Unbind(2) },
		func(s *Store) error {
			return s.Bind(4, BindRequest{ID: 4, Stages: varProg(1), Instances: [][][]CVal{{{v(4)}}}})
		}, // revives
		func(s *Store) error { return s.Unbind(3) },
		func(s *Store) error { return s.Bind(5, BindRequest{ID: 5, Stages: prog(4, 4)}) },
	}
	one, fOne, cOne := newTestStore(t, 32)
	many, fMany, cMany := newTestStore(t, 32)
	for i, step := range steps {
		cOne.t = cOne.t.Add(600 * time.Millisecond)
		cMany.t = cOne.t
		if err := step(one); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		many = roundTrip(t, many, fMany, cMany)
		if err := step(many); err != nil {
			t.Fatalf("step %d, restored: %v", i, err)
		}
		if diff := cmp.Diff(one.State(), many.State()); diff != "" {
			t.Fatalf("step %d: state (-one process +restored):\n%s", i, diff)
		}
	}
	for name, pair := range map[string][2]*fakeMap{
		"bindings": {fOne.bindings, fMany.bindings}, "rulesets": {fOne.rulesets, fMany.rulesets},
		"rules": {fOne.rules, fMany.rules}, "vidx": {fOne.vidx, fMany.vidx}, "vals": {fOne.vals, fMany.vals},
	} {
		if diff := cmp.Diff(pair[0].data, pair[1].data); diff != "" {
			t.Errorf("map %s (-one process +restored):\n%s", name, diff)
		}
	}
	if len(many.State().Pending) == 0 {
		t.Errorf("no quarantined range carried over: the sequence does not test the quarantine")
	}
}

// TestRestoreStoreRejects checks that an inconsistent state is refused
// with an error naming what is wrong.
func TestRestoreStoreRejects(t *testing.T) {
	s, f, c := newTestStore(t, 32)
	if err := s.Bind(1, BindRequest{Stages: prog(1, 3), Instances: [][][]CVal{{{{}}}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Bind(2, BindRequest{Stages: prog(2, 3), Instances: [][][]CVal{{{{}}}}}); err != nil {
		t.Fatal(err)
	}
	good := s.State()
	m := Maps{Bindings: f.bindings, Rulesets: f.rulesets, Rules: f.rules, Vidx: f.vidx, Vals: f.vals}
	cases := []struct {
		name   string
		change func(st *StoreState)
		want   string
	}{
		{"overlapping rules", func(st *StoreState) { st.Rulesets[1].Rules.Start = 2 }, "overlaps"},
		{"range past the map", func(st *StoreState) { st.Rulesets[1].Rules.Start = 30 }, "past the map"},
		{"missing ruleset", func(st *StoreState) { st.Bindings[0].Value.Ruleset = 99 }, "not stored"},
		{"overlapping vals", func(st *StoreState) { st.Bindings[1].Vals = st.Bindings[0].Vals }, "overlaps"},
		{"bad digest", func(st *StoreState) { st.Rulesets[0].Digest = "xyz" }, "bad digest"},
		{"stage outside range", func(st *StoreState) { st.Rulesets[0].Value.Len[0][0] = 9 }, "outside its range"},
		{"vidx base", func(st *StoreState) { st.Bindings[0].Value.Vidx = 7 }, "vidx base"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data, _ := json.Marshal(good)
			var st StoreState
			if err := json.Unmarshal(data, &st); err != nil {
				t.Fatal(err)
			}
			tc.change(&st)
			_, err := RestoreStore(m, st, Options{Now: c.now})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("restore: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := RestoreStore(m, good, Options{Now: c.now}); err != nil {
		t.Errorf("restore the good state: %v", err)
	}
}
