// SPDX-License-Identifier: Apache-2.0

package conformance

// KnownDivergences are the divergences from libvirt that nwbpf makes on
// purpose, each with the reason and the test that pins nwbpf's behaviour.
var KnownDivergences = []Known{}
