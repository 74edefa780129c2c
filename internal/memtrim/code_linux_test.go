package memtrim

import (
	"os"
	"testing"
)

// TestCodeMappingsPicksTheExecutablesReadOnlyPages: of a process's
// mappings only those of its own executable file (here one removed since
// it started) that are private and not writable are released; the data
// segment (writable), other files (one at the path the executable had), a
// shared mapping, anonymous memory and a read-only mapping with pages
// copied on write are not.
func TestCodeMappingsPicksTheExecutablesReadOnlyPages(t *testing.T) {
	smaps := `00400000-01216000 r-xp 00000000 fd:01 1234 /opt/disperse/bin/disperse (deleted)
Size:              14424 kB
Rss:                9460 kB
Pss:                9460 kB
Anonymous:             0 kB
01216000-0202e000 r--p 00e16000 fd:01 1234 /opt/disperse/bin/disperse (deleted)
Size:              14432 kB
Rss:                7880 kB
0202e000-020e8000 rw-p 01c2e000 fd:01 1234 /opt/disperse/bin/disperse (deleted)
Size:                744 kB
Rss:                 488 kB
020e8000-02200000 rw-p 00000000 00:00 0
Rss:                 100 kB
7f0000000000-7f0000100000 r--p 00000000 fd:01 99 /opt/disperse/bin/disperse
Rss:                  64 kB
7f0000100000-7f0000180000 r--p 00000000 fd:01 98 /opt/disperse/bin/disperse (deleted)x
Rss:                  32 kB
7f0000200000-7f0000300000 r--s 00000000 fd:01 1234 /opt/disperse/bin/disperse (deleted)
Rss:                  32 kB
7f0000400000-7f0000500000 r--p 00000000 fd:01 55 /data/snapshot.db
Rss:                 400 kB
7f0000600000-7f0000700000 r--p 01d00000 fd:01 1234 /opt/disperse/bin/disperse (deleted)
Rss:                  16 kB
Anonymous:             8 kB
`
	got := codeMappings([]byte(smaps), "/opt/disperse/bin/disperse (deleted)")
	want := []codeMapping{
		{start: 0x400000, end: 0x1216000, rss: 9460 << 10},
		{start: 0x1216000, end: 0x202e000, rss: 7880 << 10},
	}
	if len(got) != len(want) {
		t.Fatalf("mappings %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("mapping %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if r := residentCode(got); r != (9460+7880)<<10 {
		t.Fatalf("resident %d", r)
	}
}

// TestReleaseCodeDropsResidentPages releases this test binary's own code
// pages: fewer are resident after than before, and the process runs on.
func TestReleaseCodeDropsResidentPages(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p, err := ReleaseCode()
	if err != nil {
		t.Fatal(err)
	}
	if p.Before <= 0 {
		t.Fatalf("no resident pages of %s found before: %+v", exe, p)
	}
	if p.After >= p.Before {
		t.Fatalf("resident code %d bytes before and %d after releasing it", p.Before, p.After)
	}
	t.Logf("%s: %d KiB of code and read-only data resident before, %d after", exe, p.Before>>10, p.After>>10)
}
