// SPDX-License-Identifier: Apache-2.0

package sandbox

import (
	"errors"
	"fmt"
	"net"
	"sync"
)

// Datagram is one datagram an [EchoServer] received.
type Datagram struct {
	From    *net.UDPAddr
	Payload []byte
}

// EchoServer is a UDP echo service inside a namespace: it sends every
// datagram back to its sender and reports it on Received.
type EchoServer struct {
	// Addr is the address it listens on.
	Addr *net.UDPAddr
	// Received reports each datagram (never blocking: when nobody reads,
	// reports beyond the buffer are lost, the echo is not).
	Received chan Datagram

	conn *net.UDPConn
	done sync.WaitGroup
}

// ListenEcho starts an echo server on addr inside n.
func (n *NS) ListenEcho(addr *net.UDPAddr) (*EchoServer, error) {
	s := &EchoServer{Addr: addr, Received: make(chan Datagram, 64)}
	err := n.Do(func() error {
		// A socket belongs to the namespace of the thread creating it.
		var err error
		s.conn, err = net.ListenUDP("udp4", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen on udp %s in netns %s: %w", addr, n, err)
	}
	s.done.Add(1)
	go s.serve()
	return s, nil
}

func (s *EchoServer) serve() {
	defer s.done.Done()
	buf := make([]byte, maxFrame)
	for {
		k, from, err := s.conn.ReadFromUDP(buf)
		if err != nil {
			return // closed
		}
		d := Datagram{From: from, Payload: append([]byte(nil), buf[:k]...)}
		select {
		case s.Received <- d:
		default:
		}
		_, _ = s.conn.WriteToUDP(d.Payload, from)
	}
}

// Close stops the server.
func (s *EchoServer) Close() error {
	err := s.conn.Close()
	s.done.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("close echo server %s: %w", s.Addr, err)
	}
	return nil
}
