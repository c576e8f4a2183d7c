// SPDX-License-Identifier: Apache-2.0

package sandbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Sink is an AF_PACKET socket bound to one link: it sends raw Ethernet
// frames out of the link and receives the frames that arrive on it (frames
// the link itself transmits are ignored).
type Sink struct {
	// Name, Index and MAC describe the link the socket is bound to.
	Name  string
	Index int
	MAC   net.HardwareAddr

	f *os.File
}

// NewSink opens an AF_PACKET socket on link, which lives in n. The socket
// belongs to n, so it can be used from any goroutine; Close closes it.
func (n *NS) NewSink(link netlink.Link) (*Sink, error) {
	a := link.Attrs()
	s := &Sink{Name: a.Name, Index: a.Index, MAC: a.HardwareAddr}
	var fd int
	err := n.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("socket: %w", err)
		}
		// Tagged frames reach the socket untagged with the tag in the
		// auxiliary data; Recv puts it back.
		if err = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
			err = fmt.Errorf("PACKET_AUXDATA: %w", err)
		} else if err = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
			err = fmt.Errorf("PACKET_IGNORE_OUTGOING: %w", err)
		} else if err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: a.Index}); err != nil {
			err = fmt.Errorf("bind to %s: %w", a.Name, err)
		}
		if err != nil {
			unix.Close(fd)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sink on %s in netns %s: %w", a.Name, n, err)
	}
	s.f = os.NewFile(uintptr(fd), "sink "+a.Name)
	// Frames of other links may have been queued before bind.
	if err := Drain(s); err != nil {
		return nil, errors.Join(fmt.Errorf("sink on %s in netns %s: %w", a.Name, n, err), s.Close())
	}
	return s, nil
}

// Close closes the socket.
func (s *Sink) Close() error {
	if err := s.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("close sink on %s: %w", s.Name, err)
	}
	return nil
}

// Send transmits frame (a complete Ethernet frame) out of the link.
func (s *Sink) Send(frame []byte) error {
	if len(frame) < 14 {
		return fmt.Errorf("send on %s: %d-byte frame is shorter than an Ethernet header", s.Name, len(frame))
	}
	rc, err := s.f.SyscallConn()
	if err != nil {
		return err
	}
	to := &unix.SockaddrLinklayer{Protocol: htons(binary.BigEndian.Uint16(frame[12:14])), Ifindex: s.Index}
	var serr error
	err = rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), frame, 0, to)
		return serr != unix.EAGAIN
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("send on %s: %w", s.Name, err)
	}
	return nil
}

// Recv returns the next frame that arrived on the link, waiting at most
// timeout; an 802.1Q/802.1ad tag the kernel moved out of the frame is put
// back. When none arrives the error satisfies
// errors.Is(err, os.ErrDeadlineExceeded).
func (s *Sink) Recv(timeout time.Duration) ([]byte, error) {
	rc, err := s.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	if err := s.f.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, fmt.Errorf("set deadline on sink %s: %w", s.Name, err)
	}
	buf := make([]byte, maxFrame)
	oob := make([]byte, unix.CmsgSpace(int(unsafe.Sizeof(unix.TpacketAuxdata{}))))
	for {
		var n, oobn int
		var from unix.Sockaddr
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, oobn, _, from, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
			return rerr != unix.EAGAIN
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			return nil, fmt.Errorf("receive on sink %s: %w", s.Name, err)
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		return withTag(buf[:n], oob[:oobn])
	}
}

// withTag copies frame and re-inserts the VLAN tag reported in the
// PACKET_AUXDATA control message, if any.
func withTag(frame, oob []byte) ([]byte, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("parse control messages: %w", err)
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_PACKET || m.Header.Type != unix.PACKET_AUXDATA {
			continue
		}
		if len(m.Data) < int(unsafe.Sizeof(unix.TpacketAuxdata{})) {
			return nil, errors.New("short PACKET_AUXDATA")
		}
		aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&m.Data[0]))
		if aux.Status&unix.TP_STATUS_VLAN_VALID == 0 || len(frame) < 12 {
			break
		}
		tpid := uint16(unix.ETH_P_8021Q)
		if aux.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
			tpid = aux.Vlan_tpid
		}
		out := make([]byte, 0, len(frame)+4)
		out = append(out, frame[:12]...)
		out = binary.BigEndian.AppendUint16(out, tpid)
		out = binary.BigEndian.AppendUint16(out, aux.Vlan_tci)
		return append(out, frame[12:]...), nil
	}
	return append([]byte(nil), frame...), nil
}

// htons converts a 16-bit value to network byte order.
func htons(v uint16) uint16 { return v<<8 | v>>8 }
