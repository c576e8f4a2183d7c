// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFilters(t *testing.T, docs map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, doc := range docs {
		if err := os.WriteFile(filepath.Join(dir, name+".xml"), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCompileTextAndJSON(t *testing.T) {
	dir := writeFilters(t, map[string]string{
		"guard": `<filter name='guard' chain='ipv4'><rule action='return' direction='out'><ip srcipaddr='$IP'/></rule><rule action='drop' direction='out' priority='1000'/></filter>`,
		"top":   `<filter name='top'><filterref filter='guard'/><rule action='accept' direction='in'><tcp dstportstart='22'/></rule></filter>`,
	})
	code, out, errs := runCmd("compile", "--filter-dir", dir, "--filter", "top", "--mac", "52:54:00:00:00:01", "--param", "IP=10.0.0.5", "--param", "IP=10.0.0.6")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"out (sent by the VM), stage l2", "return", "guard#0", "= 10.0.0.5/32", "= 10.0.0.6/32", "ct-state any-of NEW,ESTABLISHED"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, errs = runCmd("compile", "--filter-dir", dir, "--filter", "top", "--mac", "52:54:00:00:00:01", "--param", "IP=10.0.0.5", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var l struct {
		Filter string
		Stages []struct {
			Dir, Stage string
			Entries    []json.RawMessage
		}
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil || l.Filter != "top" || len(l.Stages) != 4 || len(l.Stages[0].Entries) != 5 {
		t.Fatalf("json %v: %+v", err, l)
	}
}

func TestCompileBindingFile(t *testing.T) {
	dir := writeFilters(t, map[string]string{"f": `<filter name='f'><rule action='drop' direction='out'><mac srcmacaddr='$MAC' match='no'/></rule></filter>`})
	b := filepath.Join(t.TempDir(), "b.xml")
	os.WriteFile(b, []byte(`<filterbinding><owner><name>g</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner><portdev name='vnet7'/><mac address='52:54:00:56:44:32'/><filterref filter='f'/></filterbinding>`), 0o644)
	code, out, errs := runCmd("compile", "--filter-dir", dir, "--binding", b)
	if code != 0 || !strings.Contains(out, "52:54:00:56:44:32") {
		t.Fatalf("exit %d %s %s", code, out, errs)
	}
}

func TestCompileErrors(t *testing.T) {
	dir := writeFilters(t, map[string]string{
		"bad": `<filter name='bad'><rule action='drop' direction='out' priority='7'><ip srcipaddr='10.0.0.300'/></rule></filter>`,
	})
	code, _, errs := runCmd("compile", "--filter-dir", dir, "--filter", "bad", "--mac", "52:54:00:00:00:01")
	if code == 0 || !strings.Contains(errs, "bad.xml") || !strings.Contains(errs, `filter "bad"`) || !strings.Contains(errs, "rule 0") || !strings.Contains(errs, "srcipaddr") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	good := writeFilters(t, map[string]string{"f": `<filter name='f'><rule action='drop' direction='out' priority='7'><ip srcipaddr='$IP'/></rule></filter>`})
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--filter", "f", "--mac", "52:54:00:00:00:01"}, "$IP is not set"},
		{[]string{"--filter", "f", "--mac", "52:54:00:00:00:01", "--param", "IP=10.0.0.1", "--param", "IP=nope"}, "srcipaddr"},
		{[]string{"--filter", "missing", "--mac", "52:54:00:00:00:01"}, `"missing" is not defined`},
		{[]string{"--filter", "f", "--mac", "zz"}, "malformed mac"},
		{[]string{"--filter", "f", "--mac", "52:54:00:00:00:01", "--param", "novalue"}, "NAME=VALUE"},
		{[]string{"--mac", "52:54:00:00:00:01"}, "--binding"},
	} {
		code, _, errs := runCmd(append([]string{"compile", "--filter-dir", good}, c.args...)...)
		if code == 0 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d stderr %q, want %q", c.args, code, errs, c.want)
		}
	}
	if code, _, _ := runCmd("nosuch"); code != 2 {
		t.Errorf("unknown command exit %d", code)
	}
}
