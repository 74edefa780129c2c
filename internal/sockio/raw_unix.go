//go:build unix

package sockio

import (
	"syscall"
	"unsafe"
)

const supported = true

// rawRead and rawWrite are read(2) and write(2) without the scheduler's
// system-call protocol; fd must be a non-blocking socket and b not empty.
func rawRead(fd uintptr, b []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return int(n), e
}

func rawWrite(fd uintptr, b []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return int(n), e
}

// Read and Write are read(2) and write(2) on a non-blocking descriptor
// as raw system calls, for a caller that waits for readiness itself (an
// event loop over descriptors it owns). b must not be empty.
func Read(fd int, b []byte) (int, syscall.Errno)  { return rawRead(uintptr(fd), b) }
func Write(fd int, b []byte) (int, syscall.Errno) { return rawWrite(uintptr(fd), b) }
