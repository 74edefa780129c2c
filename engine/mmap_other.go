//go:build !linux

package engine

import bolt "go.etcd.io/bbolt"

// populateFlag is zero where mmap has no MAP_POPULATE.
const populateFlag = 0

// dropResident does nothing where madvise is not used.
func dropResident(*bolt.DB) {}
