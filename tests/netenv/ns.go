// SPDX-License-Identifier: Apache-2.0

package netenv

import (
	"fmt"
	"testing"

	"github.com/nwbpf/nwbpf/internal/sandbox"
)

// Name returns prefix followed by 8 random hex digits. Prefixes longer than
// 7 characters are cut so the result is a valid interface name.
func Name(prefix string) string {
	suffix, err := sandbox.Suffix()
	if err != nil {
		panic(fmt.Sprintf("netenv: %v", err))
	}
	return sandbox.Name(prefix, suffix)
}

// NS is a network namespace: a private one from [NewNS], or the test
// process's own from [Host]. Its fields (Name, Handle) and methods (Do,
// FD, ...) are sandbox.NS's; the constructors below shadow sandbox's with
// testing.TB ones.
type NS struct {
	*sandbox.NS
}

// NewNS creates a uniquely named network namespace with its loopback up
// and IPv6 off, and deletes it in t.Cleanup.
func NewNS(t testing.TB) *NS {
	t.Helper()
	ns, err := sandbox.NewNS(Name("nwt"))
	if err != nil {
		t.Fatal(err)
	}
	closeInCleanup(t, ns)
	return &NS{ns}
}

// Host returns the test process's own network namespace (the one its main
// thread is in), with a netlink handle closed in t.Cleanup. Devices created
// through it are visible to host daemons such as libvirtd.
func Host(t testing.TB) *NS {
	t.Helper()
	ns, err := sandbox.Host()
	if err != nil {
		t.Fatal(err)
	}
	closeInCleanup(t, ns)
	return &NS{ns}
}
