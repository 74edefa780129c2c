//go:build !linux

package engine

// populateFlag is zero where mmap has no MAP_POPULATE.
const populateFlag = 0
