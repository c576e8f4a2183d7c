// SPDX-License-Identifier: Apache-2.0

package netenv

import (
	"time"

	"github.com/nwbpf/nwbpf/internal/sandbox"
)

// Endpoint sends and receives raw Ethernet frames. [Tap] and [Sink]
// implement it.
type Endpoint = sandbox.Endpoint

// Await reads frames from ep until one matches sent ([FrameMatches]) and
// reports true, or reports false once timeout has passed. Other frames are
// discarded.
func Await(ep Endpoint, sent []byte, timeout time.Duration) (bool, error) {
	return sandbox.Await(ep, sent, timeout)
}

// Drain discards every frame already queued on ep.
func Drain(ep Endpoint) error { return sandbox.Drain(ep) }

// FrameMatches reports whether got is the frame sent, possibly with its
// Ethernet padding removed: the kernel's bridge netfilter layer trims an
// untagged IPv4 or IPv6 frame to the length its IP header gives.
func FrameMatches(sent, got []byte) bool { return sandbox.FrameMatches(sent, got) }
