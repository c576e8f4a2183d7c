// SPDX-License-Identifier: Apache-2.0

// Package integration holds nwbpf's end-to-end tests on the real kernel:
// the stock clean-traffic filter, compiled by compiler/ and bound through
// maps.Store, enforced by the classifier attached with loader/ to a tap
// on a bridge and to a macvtap on a veth, through TCX and through clsact,
// with the test playing the guest through the device's file descriptor
// and counting what a peer namespace receives; the nwbpf command's
// attach, status and detach run as separate processes; and
// FuzzClassifierVsEval, which holds the classifier to the reference
// evaluator (compiler/eval) on random filter trees and frames.
//
// Every test creates its own namespaces, devices and pin directory (unique
// names) and removes them in t.Cleanup. The tests need root and run under
// `sudo make test` (internal/privtest).
package integration
