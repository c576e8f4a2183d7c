// SPDX-License-Identifier: Apache-2.0

package maps

import (
	"reflect"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// object is the classifier as committed by `make generate`.
const object = "../loader/nwbpf_bpfel.o"

// TestLayout compares every Go mirror with its C struct in the BTF of the
// compiled classifier: size, and each field's offset, size and name, in
// order (explicit padding included). It reads the object file only, so it
// needs no privileges.
func TestLayout(t *testing.T) {
	spec, err := ebpf.LoadCollectionSpec(object)
	if err != nil {
		t.Fatalf("load %s: %v", object, err)
	}
	for _, m := range []struct {
		c      string
		mirror any
	}{
		{"nwf_cond", Cond{}},
		{"nwf_rule", Rule{}},
		{"nwf_ruleset", Ruleset{}},
		{"nwf_binding", Binding{}},
		{"nwf_vidx", Vidx{}},
		{"nwf_cval", CVal{}},
		{"nwf_count", Count{}},
		{"nwf_drop_count", DropCount{}},
		{"nwf_trace", Trace{}},
		{"nwf_frag_key", FragKey{}},
		{"nwf_frag_val", FragVal{}},
		{"nwf_pkt", Pkt{}},
		{"nwf_ct_key", CTKey{}},
		{"nwf_ct_val", CTVal{}},
		{"nwf_ct_tcp", CTTCP{}},
		{"nwf_ct_side", CTSide{}},
	} {
		t.Run(m.c, func(t *testing.T) {
			var s *btf.Struct
			if err := spec.Types.TypeByName(m.c, &s); err != nil {
				t.Fatalf("BTF of %s: %v", m.c, err)
			}
			compareStruct(t, s, reflect.TypeOf(m.mirror))
		})
	}
}

func compareStruct(t *testing.T, s *btf.Struct, g reflect.Type) {
	t.Helper()
	if uintptr(s.Size) != g.Size() {
		t.Errorf("size: C %d, Go %s %d", s.Size, g.Name(), g.Size())
	}
	if len(s.Members) != g.NumField() {
		t.Fatalf("fields: C %d, Go %s %d", len(s.Members), g.Name(), g.NumField())
	}
	for i, m := range s.Members {
		f := g.Field(i)
		size, err := btf.Sizeof(m.Type)
		if err != nil {
			t.Fatalf("size of %s.%s: %v", s.Name, m.Name, err)
		}
		if uintptr(m.Offset.Bytes()) != f.Offset || uintptr(size) != f.Type.Size() {
			t.Errorf("%s.%s at %d size %d, Go %s at %d size %d",
				s.Name, m.Name, m.Offset.Bytes(), size, f.Name, f.Offset, f.Type.Size())
		}
		if !sameName(m.Name, f.Name) {
			t.Errorf("field %d: C %s, Go %s", i, m.Name, f.Name)
		}
	}
}

// sameName matches a C member with its Go mirror: snake_case to CamelCase,
// and _pad members to blank fields.
func sameName(c, g string) bool {
	if strings.HasPrefix(c, "_pad") {
		return g == "_"
	}
	return strings.ReplaceAll(c, "_", "") == strings.ToLower(g)
}
