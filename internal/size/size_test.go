package size

import "testing"

func TestParseAndFormat(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "100": 100, "100B": 100, "4KiB": 4 << 10, " 64 MiB ": 64 << 20, "2GiB": 2 << 30} {
		got, err := Parse(in, 0)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "1.5MiB", "1TiB", "4611686018427387905", "9999999999GiB"} {
		if _, err := Parse(in, 0); err == nil {
			t.Errorf("Parse(%q) succeeded", in)
		}
	}
	if _, err := Parse("1KiB", 4096); err == nil {
		t.Error("Parse below the least allowed succeeded")
	}
	for n, want := range map[int64]string{0: "0B", 1000: "1000B", 4 << 10: "4KiB", 64 << 20: "64MiB", 3 << 30: "3GiB", 1536 << 10: "1536KiB"} {
		if got := Format(n); got != want {
			t.Errorf("Format(%d) = %q, want %q", n, got, want)
		}
	}
}
