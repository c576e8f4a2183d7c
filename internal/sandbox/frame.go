// SPDX-License-Identifier: Apache-2.0

package sandbox

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"time"
)

// Endpoint sends and receives raw Ethernet frames. [Tap] and [Sink]
// implement it.
type Endpoint interface {
	// Send transmits one frame.
	Send(frame []byte) error
	// Recv returns the next frame, waiting at most timeout; when none
	// arrives the error satisfies errors.Is(err, os.ErrDeadlineExceeded).
	Recv(timeout time.Duration) ([]byte, error)
}

// Await reads frames from ep until one matches sent ([FrameMatches]) and
// reports true, or reports false once timeout has passed. Other frames are
// discarded.
func Await(ep Endpoint, sent []byte, timeout time.Duration) (bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return false, nil
		}
		got, err := ep.Recv(left)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if FrameMatches(sent, got) {
			return true, nil
		}
	}
}

// drainWait is how long Drain waits for one more queued frame.
const drainWait = time.Millisecond

// Drain discards every frame already queued on ep.
func Drain(ep Endpoint) error {
	for {
		_, err := ep.Recv(drainWait)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// FrameMatches reports whether got is the frame sent, possibly with its
// Ethernet padding removed: the kernel's bridge netfilter layer trims an
// untagged IPv4 or IPv6 frame to the length its IP header gives.
func FrameMatches(sent, got []byte) bool {
	if bytes.Equal(sent, got) {
		return true
	}
	n := ipFrameLen(sent)
	return n > 0 && n < len(sent) && bytes.Equal(sent[:n], got)
}

// ipFrameLen returns the length of an untagged IPv4/IPv6 frame without
// padding, or 0 for other frames.
func ipFrameLen(f []byte) int {
	if len(f) < 14 {
		return 0
	}
	switch binary.BigEndian.Uint16(f[12:14]) {
	case 0x0800:
		if len(f) < 14+20 || f[14]>>4 != 4 {
			return 0
		}
		return 14 + int(binary.BigEndian.Uint16(f[16:18]))
	case 0x86dd:
		if len(f) < 14+40 || f[14]>>4 != 6 {
			return 0
		}
		return 14 + 40 + int(binary.BigEndian.Uint16(f[18:20]))
	}
	return 0
}
