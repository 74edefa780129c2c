// Package size reads and writes byte counts as the settings and flags of
// the disperse command spell them: plain bytes, or a whole number with
// KiB, MiB or GiB (powers of two).
package size

import (
	"fmt"
	"strconv"
	"strings"
)

// units are the suffixes Parse reads, longest first.
var units = []struct {
	suffix string
	mult   int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

// Parse reads v as plain bytes or a whole number with KiB, MiB or GiB, of
// at least min bytes and at most 2^62.
func Parse(v string, min int64) (int64, error) {
	num, mult := strings.TrimSpace(v), int64(1)
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size (bytes, or a whole number with KiB, MiB or GiB)", v)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is too large", v)
	}
	if n*mult < min {
		return 0, fmt.Errorf("%q is less than %d bytes", v, min)
	}
	return n * mult, nil
}

// Format writes n with the largest binary unit that divides it (64MiB,
// 1000B).
func Format(n int64) string {
	for _, u := range units {
		if n >= u.mult && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}
