package benchkit

import (
	"net"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// enableRxTimestamps asks the kernel to stamp every segment conn receives
// with the time it arrived (SO_TIMESTAMPNS, software receive timestamps).
// It reports whether it could.
func enableRxTimestamps(conn net.Conn) bool {
	keepStampsOn.Do(keepStamping)
	return setRxTimestamps(conn)
}

func setRxTimestamps(conn net.Conn) bool {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}); err != nil || serr != nil {
		return false
	}
	return true
}

// rxTimestamp waits for the next byte on conn and returns the kernel's
// arrival time of the segment that carries it, without consuming it: it
// peeks one byte with recvmsg(MSG_PEEK) through the connection's RawConn,
// so the netpoller does the waiting and conn's deadline holds, and the
// reply is then read, whole, by the ordinary reader. Peeking one byte
// gives the first segment's stamp even when the reply spans several. It
// returns the zero time when there is no stamp (or an error, which the
// reader that follows will meet too).
func rxTimestamp(conn net.Conn) time.Time {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return time.Time{}
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return time.Time{}
	}
	var b [1]byte
	oob := make([]byte, unix.CmsgSpace(int(unsafe.Sizeof(unix.Timespec{}))))
	var at time.Time
	rc.Read(func(fd uintptr) bool {
		for {
			n, oobn, _, _, err := unix.Recvmsg(int(fd), b[:], oob, unix.MSG_PEEK)
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				return false // nothing yet: the netpoller waits for it
			case err != nil || n == 0:
				return true
			}
			at = parseTimestamp(oob[:oobn])
			return true
		}
	})
	return at
}

// parseTimestamp finds SCM_TIMESTAMPNS among control messages.
func parseTimestamp(oob []byte) time.Time {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS &&
			len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
			ts := *(*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
			return time.Unix(int64(ts.Sec), int64(ts.Nsec))
		}
	}
	return time.Time{}
}

// The kernel stamps received packets only while some socket asks for it,
// and it turns stamping on in a deferred work item: a connection that
// asks for stamps and is answered at once can find its first segments
// unstamped, and stamping may stop between one client's close and the
// next one's connect. keepStamping holds a loopback TCP connection that
// asks for stamps for the life of the process, and returns once a
// segment sent over it arrives stamped (or after a bounded number of
// tries; unstamped replies then count as fallbacks).
var (
	keepStampsOn sync.Once
	stampKeeper  [2]net.Conn
)

func keepStamping() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return
	}
	defer ln.Close()
	out, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return
	}
	in, err := ln.Accept()
	if err != nil {
		out.Close()
		return
	}
	stampKeeper = [2]net.Conn{in, out}
	if !setRxTimestamps(in) {
		return
	}
	var b [1]byte
	for range 1000 {
		if _, err := out.Write(b[:]); err != nil {
			return
		}
		at := rxTimestamp(in)
		if _, err := in.Read(b[:]); err != nil || !at.IsZero() {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
