// Package sockio serves accepted TCP connections with raw read and write
// system calls.
//
// Go's network connections are non-blocking sockets behind the runtime's
// poller, but each read and write still goes through the scheduler's
// system-call protocol: the processor is marked as in a system call, the
// monitor thread is woken if it sleeps, and a call that outlasts one
// monitor tick (20 µs) has its processor handed to another thread. A
// read or write on a non-blocking socket never sleeps in the kernel, so
// that protocol buys nothing for it, and on a machine where system calls
// and thread switches are dear it is a large part of a small request's
// cost. A Conn makes the same calls as raw system calls through the
// connection's syscall.RawConn: waiting for readiness, deadlines and
// Close stay with the runtime's poller, exactly as for a net.TCPConn.
//
// A write is cut into pieces of at most maxRawWrite bytes, so that no
// single call keeps its processor from the collector for long.
package sockio

import (
	"io"
	"net"
	"os"
	"syscall"
)

// maxRawWrite bounds the bytes one write system call copies.
const maxRawWrite = 256 << 10

// Listen returns a listener whose TCP connections are Conns. Connections of
// other kinds, and any connection on a system without raw system calls,
// are returned as accepted.
func Listen(ln net.Listener) net.Listener { return listener{ln} }

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}

// Wrap returns c as a Conn when it is a *net.TCPConn on a system with raw
// system calls, and c itself otherwise.
func Wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok || !supported {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	sc := &Conn{TCPConn: tc, rc: rc}
	sc.rd.do, sc.wr.do = sc.rd.read, sc.wr.write
	return sc
}

// Conn is a TCP connection whose Read and Write are raw system calls. Every
// other method (deadlines, Close, ReadFrom for sendfile, addresses) is the
// net.TCPConn's. One Read and one Write may run at once, as on any
// net.Conn.
type Conn struct {
	*net.TCPConn
	rc syscall.RawConn
	rd op // the Read under way
	wr op // the Write under way
}

// op is one Read or Write: its buffer and result live here so that the
// callback given to the RawConn is bound once, not allocated per call.
type op struct {
	p     []byte
	n     int
	errno syscall.Errno
	do    func(fd uintptr) bool
}

// read is the RawConn callback of Read: false asks the poller to wait until
// the socket is readable.
func (o *op) read(fd uintptr) bool {
	for {
		n, errno := rawRead(fd, o.p)
		switch errno {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		case 0:
			o.n = n
		default: // n is -1 here; a Read that fails moved nothing
			o.errno = errno
		}
		return true
	}
}

// write is the RawConn callback of Write: it writes until all of o.p is
// sent, asking the poller to wait whenever the socket's buffer is full.
func (o *op) write(fd uintptr) bool {
	for o.n < len(o.p) {
		b := o.p[o.n:]
		if len(b) > maxRawWrite {
			b = b[:maxRawWrite]
		}
		n, errno := rawWrite(fd, b)
		switch {
		case errno == 0 && n > 0:
			o.n += n
		case errno == 0: // no progress and no error: never from a socket
			o.errno = syscall.EIO
			return true
		case errno == syscall.EINTR:
		case errno == syscall.EAGAIN:
			return false
		default:
			o.errno = errno
			return true
		}
	}
	return true
}

// Read reads as net.TCPConn's Read does: io.EOF at the end of the stream,
// other errors as *net.OpError.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := c.run(&c.rd, p, false)
	if err == nil && n == 0 {
		return 0, io.EOF
	}
	return n, err
}

// Write writes all of p, or returns how much went out and why the rest did
// not, as net.TCPConn's Write does.
func (c *Conn) Write(p []byte) (int, error) { return c.run(&c.wr, p, true) }

// run makes one Read (o is c.rd) or Write (o is c.wr) of p through the
// RawConn and returns the bytes moved and the error as net reports it.
func (c *Conn) run(o *op, p []byte, write bool) (int, error) {
	o.p, o.n, o.errno = p, 0, 0
	var err error
	name := "read"
	if write {
		name = "write"
		err = c.rc.Write(o.do)
	} else {
		err = c.rc.Read(o.do)
	}
	n, errno := o.n, o.errno
	o.p = nil
	switch {
	case err != nil:
		return n, c.opError(name, err)
	case errno != 0:
		return n, c.opError(name, os.NewSyscallError(name, errno))
	}
	return n, nil
}

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
