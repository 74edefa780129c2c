package loadgen

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// peakRSSKiB reads VmHWM, the peak resident set size in KiB, from
// /proc/pid/status.
func peakRSSKiB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("peak memory of pid %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("peak memory of pid %d: VmHWM %q: %w", pid, rest, err)
			}
			return kib, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("peak memory of pid %d: %w", pid, err)
	}
	return 0, fmt.Errorf("peak memory of pid %d: no VmHWM line in /proc/%d/status", pid, pid)
}

// resetPeakRSS sets the peak of pid back to its current resident size
// (writing 5 to /proc/pid/clear_refs), so VmHWM after the run is this
// run's peak; it says so when it cannot.
func resetPeakRSS(w io.Writer, pid int) {
	err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
	if err != nil {
		fmt.Fprintf(w, "note: could not reset the peak memory of pid %d (%v); VmHWM is since it started\n", pid, err)
	}
}
