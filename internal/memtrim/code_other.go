//go:build !linux

package memtrim

import "errors"

// ReleaseCode is for Linux only: elsewhere it does nothing and says so.
func ReleaseCode() (CodePages, error) {
	return CodePages{}, errors.New("memtrim: releasing code pages needs Linux")
}
