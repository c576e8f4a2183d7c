// SPDX-License-Identifier: Apache-2.0

package libvirtref

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/nwbpf/nwbpf/internal/privtest"
)

// URI is the libvirt connection used for every call. It works on Debian 12
// (libvirt 9.0), both with the monolithic libvirtd and with virtnwfilterd.
const URI = "nwfilter:///system"

// virshTimeout bounds one virsh call.
const virshTimeout = time.Minute

// startTimeout bounds how long Ensure waits for a freshly started libvirtd.
const startTimeout = 30 * time.Second

var (
	ensureOnce sync.Once
	ensureErr  error
)

// Ensure makes sure libvirtd answers on [URI], starting it when needed
// (`systemctl start libvirtd` under systemd, else `libvirtd -d`). It calls
// privtest.Require first. When libvirt is not installed it skips t, or fails
// it under CI=true; when libvirtd cannot be reached it fails t.
func Ensure(t testing.TB) {
	t.Helper()
	privtest.Require(t)
	ensureOnce.Do(func() { ensureErr = ensure() })
	if errors.Is(ensureErr, errNotInstalled) && !privtest.CI() {
		t.Skipf("libvirt oracle skipped: %v", ensureErr)
	}
	if ensureErr != nil {
		t.Fatalf("libvirt: %v", ensureErr)
	}
}

// errNotInstalled says libvirt's programs are missing: a skip outside CI.
var errNotInstalled = errors.New("libvirt is not installed (apt-get install libvirt-daemon-system libvirt-clients libvirt-daemon-config-nwfilter)")

func ensure() error {
	for _, bin := range []string{"virsh", "libvirtd"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%w: %v", errNotInstalled, err)
		}
	}
	if _, err := virsh("nwfilter-list"); err == nil {
		return nil
	}
	start := exec.Command("libvirtd", "-d")
	if st, err := os.Stat("/run/systemd/system"); err == nil && st.IsDir() {
		start = exec.Command("systemctl", "start", "libvirtd.service")
	}
	// The daemon must not inherit the test's output pipes: `go test` would
	// wait for them to close. A concurrent test binary may win the race to
	// start it; a failure to start a second daemon is harmless, so only
	// the wait below counts.
	start.Stdin, start.Stdout, start.Stderr = nil, nil, nil
	startErr := start.Run()
	deadline := time.Now().Add(startTimeout)
	for {
		_, err := virsh("nwfilter-list")
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer on %s %v after `%s` (%v): %w",
				URI, startTimeout, strings.Join(start.Args, " "), startErr, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// virsh runs `virsh -c URI args...` and returns its standard output; the
// error carries standard error.
func virsh(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), virshTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "virsh", append([]string{"-q", "-c", URI}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("virsh %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}

var (
	definedMu sync.Mutex
	defined   = map[string]bool{} // filters this process defined
)

// DefineFilter defines (or redefines) the filter in xml, a `<filter>`
// document, and returns its name. A filter is undefined in t.Cleanup unless
// it is gone by then. To protect libvirt's stock filters, defining a name
// that exists and was not defined by this test binary fails.
func DefineFilter(t testing.TB, filterXML string) string {
	t.Helper()
	var f struct {
		XMLName xml.Name `xml:"filter"`
		Name    string   `xml:"name,attr"`
	}
	if err := xml.Unmarshal([]byte(filterXML), &f); err != nil || f.Name == "" {
		t.Fatalf("define filter: not a named <filter> document (%v)", err)
	}
	definedMu.Lock()
	ours := defined[f.Name]
	definedMu.Unlock()
	if !ours && filterExists(f.Name) {
		t.Fatalf("define filter %s: a filter of that name exists already and is not a test's; choose a unique name", f.Name)
	}
	path := filepath.Join(t.TempDir(), "filter.xml")
	if err := os.WriteFile(path, []byte(filterXML), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := virsh("nwfilter-define", path); err != nil {
		t.Fatalf("define filter %s: %v", f.Name, err)
	}
	if !ours {
		definedMu.Lock()
		defined[f.Name] = true
		definedMu.Unlock()
		t.Cleanup(func() {
			if !filterExists(f.Name) {
				return
			}
			if _, err := virsh("nwfilter-undefine", f.Name); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
	}
	return f.Name
}

// UndefineFilter undefines the named filter; libvirt refuses while a
// binding uses it.
func UndefineFilter(t testing.TB, name string) {
	t.Helper()
	if _, err := virsh("nwfilter-undefine", name); err != nil {
		t.Fatalf("undefine filter: %v", err)
	}
}

// filterExists reports whether libvirt knows the named filter.
func filterExists(name string) bool {
	_, err := virsh("nwfilter-dumpxml", name)
	return err == nil
}

// Param is one filter parameter (variable) of a binding. Repeating a name
// builds a list, in order.
type Param struct {
	Name, Value string
}

// Bind instantiates filter on port (a host-namespace tap) for a guest with
// mac, through `virsh nwfilter-binding-create`, and unbinds it in t.Cleanup
// unless it is gone by then. The call returns once libvirt's rules are in
// place. Invalid parameters are dropped by libvirt without an error.
func Bind(t testing.TB, port string, mac net.HardwareAddr, filter string, params ...Param) {
	t.Helper()
	type parameter struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	}
	type attr struct {
		Name    string `xml:"name,attr,omitempty"`
		Address string `xml:"address,attr,omitempty"`
	}
	var b struct {
		XMLName xml.Name `xml:"filterbinding"`
		Owner   struct {
			Name string `xml:"name"`
			UUID string `xml:"uuid"`
		} `xml:"owner"`
		PortDev   attr `xml:"portdev"`
		MAC       attr `xml:"mac"`
		FilterRef struct {
			Filter string      `xml:"filter,attr"`
			Params []parameter `xml:"parameter"`
		} `xml:"filterref"`
	}
	b.Owner.Name, b.Owner.UUID = "nwbpf-test-"+port, newUUID()
	b.PortDev.Name = port
	b.MAC.Address = mac.String()
	b.FilterRef.Filter = filter
	for _, p := range params {
		b.FilterRef.Params = append(b.FilterRef.Params, parameter(p))
	}
	doc, err := xml.MarshalIndent(&b, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "binding.xml")
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := virsh("nwfilter-binding-create", path); err != nil {
		t.Fatalf("bind %s to %s: %v\n%s", filter, port, err, doc)
	}
	t.Cleanup(func() {
		if !bound(port) {
			return
		}
		if _, err := virsh("nwfilter-binding-delete", port); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}

// Unbind removes the filter binding of port.
func Unbind(t testing.TB, port string) {
	t.Helper()
	if _, err := virsh("nwfilter-binding-delete", port); err != nil {
		t.Fatalf("unbind %s: %v", port, err)
	}
}

// bound reports whether port has a filter binding.
func bound(port string) bool {
	_, err := virsh("nwfilter-binding-dumpxml", port)
	return err == nil
}

// Bindings returns the ports that have a filter binding.
func Bindings(t testing.TB) []string {
	t.Helper()
	out, err := virsh("nwfilter-binding-list")
	if err != nil {
		t.Fatalf("list bindings: %v", err)
	}
	var ports []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			ports = append(ports, f[0])
		}
	}
	return ports
}

// FlushConntrack deletes every entry of the host namespace's connection
// tracking table (IPv4 and IPv6), like `conntrack -F`, so that a case does
// not see the connections of the previous one.
func FlushConntrack(t testing.TB) {
	t.Helper()
	if err := netlink.ConntrackTableFlush(netlink.ConntrackTable); err != nil {
		t.Fatalf("flush conntrack: %v", err)
	}
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("libvirtref: read random bytes: %v", err))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
