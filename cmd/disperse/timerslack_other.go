//go:build !linux

package main

import "time"

// applyTimerSlack does nothing where threads have no timer slack to set.
func applyTimerSlack(time.Duration) error { return nil }
