// SPDX-License-Identifier: Apache-2.0

package compiler

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Set holds filter definitions by name, with libvirt's identity and loop
// rules enforced on every Define.
type Set struct {
	filters map[string]*Filter
}

// NewSet returns an empty set.
func NewSet() *Set { return &Set{filters: map[string]*Filter{}} }

// Lookup returns a filter by name.
func (s *Set) Lookup(name string) (*Filter, bool) {
	f, ok := s.filters[name]
	return f, ok
}

// Names lists the defined filters, sorted.
func (s *Set) Names() []string {
	out := make([]string, 0, len(s.filters))
	for n := range s.filters {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Define adds or replaces a filter. A filter without <uuid> gets a random
// one when it is new. Errors (and nothing changes) when the UUID belongs
// to a filter of another name, when the name exists with another or no
// UUID, or when the filter would close a reference loop.
func (s *Set) Define(f *Filter) error {
	old, exists := s.filters[f.Name]
	for _, o := range s.filters {
		if f.UUIDSpecified && o.UUID == f.UUID && o.Name != f.Name {
			return fmt.Errorf("filter %q: uuid %s is already used by filter %q", f.Name, FormatUUID(f.UUID), o.Name)
		}
	}
	if exists {
		if !f.UUIDSpecified || old.UUID != f.UUID {
			return fmt.Errorf("filter %q already exists with uuid %s", f.Name, FormatUUID(old.UUID))
		}
	} else if !f.UUIDSpecified {
		if _, err := rand.Read(f.UUID[:]); err != nil {
			return fmt.Errorf("filter %q: generate uuid: %w", f.Name, err)
		}
		f.UUID[6] = f.UUID[6]&0x0f | 0x40
		f.UUID[8] = f.UUID[8]&0x3f | 0x80
	}
	if path := s.loopPath(f); path != nil {
		return fmt.Errorf("filter %q would introduce a loop: %s", f.Name, strings.Join(path, " -> "))
	}
	s.filters[f.Name] = f
	return nil
}

// loopPath returns a reference path from f back to f, with f in place of
// its current definition, or nil.
func (s *Set) loopPath(f *Filter) []string {
	get := func(name string) *Filter {
		if name == f.Name {
			return f
		}
		return s.filters[name]
	}
	var path []string
	visiting := map[string]bool{}
	var walk func(cur *Filter) bool
	walk = func(cur *Filter) bool {
		path = append(path, cur.Name)
		visiting[cur.Name] = true
		for _, e := range cur.Entries {
			if e.Ref == nil {
				continue
			}
			if e.Ref.Filter == f.Name {
				path = append(path, f.Name)
				return true
			}
			next := get(e.Ref.Filter)
			if next == nil || visiting[next.Name] {
				continue
			}
			if walk(next) {
				return true
			}
		}
		visiting[cur.Name] = false
		path = path[:len(path)-1]
		return false
	}
	if walk(f) {
		return path
	}
	return nil
}

// DefaultFilterDirs are searched in order by LoadDefault.
var DefaultFilterDirs = []string{"/etc/libvirt/nwfilter", "/usr/share/libvirt/nwfilter"}

// LoadDefault loads the first of DefaultFilterDirs that exists.
func LoadDefault() (*Set, string, error) {
	for _, d := range DefaultFilterDirs {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			s, err := LoadDir(d)
			return s, d, err
		}
	}
	return nil, "", fmt.Errorf("no filter directory found (looked in %s)", strings.Join(DefaultFilterDirs, ", "))
}

// LoadDir parses and defines every *.xml file of a directory, in name
// order. The first bad file is an error naming it.
func LoadDir(dir string) (*Set, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read filter directory: %w", err)
	}
	s := NewSet()
	// Loop detection needs the whole directory: parse everything, then
	// define in an order that keeps a reference's target first.
	var parsed []*Filter
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".xml") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		f, err := ParseFilter(data, p)
		if err != nil {
			return nil, err
		}
		parsed = append(parsed, f)
	}
	for _, f := range parsed {
		if err := s.Define(f); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Source, err)
		}
	}
	return s, nil
}
