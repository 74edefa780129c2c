//go:build !unix

package sockio

import "syscall"

// Without raw system calls, Wrap returns connections as they are.
const supported = false

func rawRead(uintptr, []byte) (int, syscall.Errno)  { panic("sockio: no raw system calls here") }
func rawWrite(uintptr, []byte) (int, syscall.Errno) { panic("sockio: no raw system calls here") }
