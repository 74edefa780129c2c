//go:build race

package engine

// raceEnabled: the race detector multiplies memory and time, so the tests
// that sample resident memory skip that part and fill less.
const raceEnabled = true
