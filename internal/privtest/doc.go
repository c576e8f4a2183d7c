// SPDX-License-Identifier: Apache-2.0

// Package privtest gates privileged tests.
//
// Every test that needs root, network namespaces, BPF or libvirt starts with
// privtest.Require(t). Outside CI the test is skipped with the reason and the
// command that runs it (`sudo make test`); under CI (environment CI=true) a
// missing privilege is a failure, so a misconfigured runner can never turn
// the privileged suite into a silent row of skips.
package privtest
