// SPDX-License-Identifier: Apache-2.0

package compiler

import (
	"fmt"
	"testing"
)

// BenchmarkBind1000CleanTraffic binds 1000 guests with distinct MAC and IP
// to one compiled clean-traffic program and reports the map bytes each
// binding adds (the program itself is stored once).
func BenchmarkBind1000CleanTraffic(b *testing.B) {
	s, err := LoadDir(stockDir)
	if err != nil {
		b.Skipf("stock filters: %v", err)
	}
	p, err := s.Compile("clean-traffic", Options{})
	if err != nil {
		b.Fatal(err)
	}
	entries := 0
	for d := range p.Stages {
		for st := range p.Stages[d] {
			entries += len(p.Stages[d][st])
		}
	}
	b.ResetTimer()
	total := 0
	for i := 0; i < b.N; i++ {
		total = 0
		for g := 0; g < 1000; g++ {
			v := vars(fmt.Sprintf("MAC=52:54:00:00:%02x:%02x", g>>8, g&0xff), fmt.Sprintf("IP=10.0.%d.%d", g>>8, g&0xff))
			inst, err := p.Bind(v)
			if err != nil {
				b.Fatal(err)
			}
			total += inst.BindingBytes()
		}
	}
	b.ReportMetric(float64(total)/1000, "B/binding")
	b.ReportMetric(float64(entries), "shared-entries")
}
