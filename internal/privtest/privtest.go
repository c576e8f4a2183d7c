// SPDX-License-Identifier: Apache-2.0

package privtest

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// BPFFS is where the bpf filesystem must be mounted.
const BPFFS = "/sys/fs/bpf"

// MakeTarget is the command that runs the privileged tests.
const MakeTarget = "sudo make test"

var (
	once    sync.Once
	missing error // nil when the process may run privileged tests
)

// CI reports whether the tests run under CI (environment CI=true), where a
// missing privilege fails instead of skipping.
func CI() bool { return os.Getenv("CI") == "true" }

// Require skips t (outside CI) or fails it (under CI=true) unless the process
// runs as root with CAP_NET_ADMIN, CAP_SYS_ADMIN and CAP_BPF and a bpf
// filesystem is mounted at /sys/fs/bpf. Under CI a missing bpffs is mounted
// first. The check runs once per test binary.
func Require(t testing.TB) {
	t.Helper()
	once.Do(func() { missing = check(CI()) })
	report(t, missing, CI())
}

// report turns a missing privilege into a skip, or a failure under CI.
func report(t testing.TB, missing error, ci bool) {
	t.Helper()
	if missing == nil {
		return
	}
	if ci {
		t.Fatalf("privileged test cannot run under CI=true: %v", missing)
		return
	}
	t.Skipf("privileged test skipped: %v (run it with `%s`)", missing, MakeTarget)
}

// check returns why privileged tests cannot run, or nil.
func check(mount bool) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("not root (euid %d)", os.Geteuid())
	}
	for _, c := range []struct {
		bit  uint
		name string
	}{
		{unix.CAP_NET_ADMIN, "CAP_NET_ADMIN"},
		{unix.CAP_SYS_ADMIN, "CAP_SYS_ADMIN"},
		{unix.CAP_BPF, "CAP_BPF"},
	} {
		ok, err := hasCap(c.bit)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("missing %s", c.name)
		}
	}
	err := bpffs()
	if err != nil && mount {
		if merr := os.MkdirAll(BPFFS, 0o755); merr != nil {
			return fmt.Errorf("create %s: %w", BPFFS, merr)
		}
		if merr := unix.Mount("bpf", BPFFS, "bpf", 0, "mode=0700"); merr != nil {
			return fmt.Errorf("mount bpffs at %s: %w", BPFFS, merr)
		}
		err = bpffs()
	}
	return err
}

// hasCap reports whether capability bit is in the effective set.
func hasCap(bit uint) (bool, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false, fmt.Errorf("capget: %w", err)
	}
	return data[bit/32].Effective&(1<<(bit%32)) != 0, nil
}

// errNoBPFFS says the bpf filesystem is absent.
var errNoBPFFS = errors.New("no bpf filesystem at " + BPFFS + " (mount -t bpf bpf " + BPFFS + ")")

// bpffs returns nil when BPFFS is a mounted bpf filesystem.
func bpffs() error {
	var st unix.Statfs_t
	if err := unix.Statfs(BPFFS, &st); err != nil {
		return errNoBPFFS
	}
	if uint32(st.Type) != unix.BPF_FS_MAGIC {
		return errNoBPFFS
	}
	return nil
}
