// SPDX-License-Identifier: Apache-2.0

package compiler

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// stockDir is where Debian's libvirt-daemon-config-nwfilter installs the
// stock filters (.ci/run installs the package).
const stockDir = "/usr/share/libvirt/nwfilter"

func stockSet(t *testing.T) *Set {
	t.Helper()
	if _, err := os.Stat(stockDir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("stock filters missing in CI: %v", err)
		}
		t.Skipf("stock filters not installed (%v): apt-get install libvirt-daemon-config-nwfilter", err)
	}
	s, err := LoadDir(stockDir)
	if err != nil {
		t.Fatalf("load stock filters: %v", err)
	}
	return s
}

// stockBinding is a realistic binding providing every variable the stock
// filters use.
var stockBinding = []string{
	"MAC=52:54:00:56:44:32", "IP=10.0.0.5", "IP=10.0.0.6", "IPV6=fd00::5",
	"DHCPSERVER=10.0.0.1", "DHCPSERVERV6=fd00::1", "GATEWAY_MAC=52:54:00:00:00:01",
}

// TestStockFiltersGolden: every stock filter compiles with a realistic
// binding, and its listing is pinned (checklist 83).
func TestStockFiltersGolden(t *testing.T) {
	s := stockSet(t)
	names := s.Names()
	if len(names) < 20 {
		t.Fatalf("only %d stock filters found", len(names))
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			kv := stockBinding
			if name == "allow-dhcpv6-server" {
				// It takes its server list from DHCPSERVER too, as IPv6.
				kv = []string{"MAC=52:54:00:56:44:32", "DHCPSERVER=fd00::1"}
			}
			p, inst := compileBind(t, s, name, kv...)
			var buf bytes.Buffer
			if err := p.List(inst).WriteText(&buf); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "golden", name+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run go test ./compiler -update): %v", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("listing differs from %s:\n%s", golden, diffLines(string(want), buf.String()))
			}
		})
	}
}

func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			out = append(out, "- "+x, "+ "+y)
		}
	}
	return strings.Join(out, "\n")
}

// TestCleanTrafficOrder pins the from-VM root chain order measured on
// libvirt 9.0 (NWFILTER.md §11).
func TestCleanTrafficOrder(t *testing.T) {
	s := stockSet(t)
	p, _ := compileBind(t, s, "clean-traffic", "IP=10.0.0.5")
	var got []string
	for _, r := range p.Stages[0][0] {
		m := p.Meta[r.ID]
		if m.Chain != "root" {
			break
		}
		match := m.Match
		if match == "" {
			match = "*"
		}
		got = append(got, m.Action+" "+match)
	}
	wantLines(t, got, []string{
		"jump mac *",
		"jump ipv4-ip ethproto == 0x800",
		"accept ethproto == ipv4",
		"jump arp-mac ethproto == 0x806",
		"jump arp-ip ethproto == 0x806",
		"accept ethproto == arp",
		"jump rarp ethproto == 0x8035",
		"accept ethproto == 0x835",
		"drop *",
		"end:accept *",
	})
}
