package memtrim

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// codeMapping is one read-only private mapping of the executable.
type codeMapping struct {
	start, end uintptr
	rss        int64
	anon       int64 // pages copied on write (relocations): not the file's
}

// codeMappings reads from smaps (the text of /proc/self/smaps) the
// mappings of the executable file exe that are private and not writable,
// with what each has resident. exe is the path as the kernel shows it for
// the process's executable (/proc/self/exe), " (deleted)" included when
// the file was since removed or replaced: the same string smaps shows for
// its mappings. A writable mapping (the data segment) is never among them:
// its pages may differ from the file; nor is one with pages of its own
// (anonymous), such as relocations made read-only after they were written.
func codeMappings(smaps []byte, exe string) []codeMapping {
	var out []codeMapping
	cur := -1
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if addr, ok := strings.CutSuffix(f[0], ":"); ok {
			if cur >= 0 && len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				switch addr {
				case "Rss":
					out[cur].rss = kb << 10
				case "Anonymous":
					out[cur].anon = kb << 10
				}
			}
			continue
		}
		cur = -1
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok || len(f) < 6 || len(f[1]) != 4 || f[1][1] == 'w' || f[1][3] != 'p' ||
			strings.Join(f[5:], " ") != exe {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		out = append(out, codeMapping{start: uintptr(start), end: uintptr(end)})
		cur = len(out) - 1
	}
	return slices.DeleteFunc(out, func(m codeMapping) bool { return m.anon != 0 })
}

// residentCode sums what ms have resident.
func residentCode(ms []codeMapping) int64 {
	var n int64
	for _, m := range ms {
		n += m.rss
	}
	return n
}

// ownCode reads this process's executable mappings. os.Executable is not
// used: it drops the " (deleted)" that smaps keeps.
func ownCode() ([]codeMapping, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return nil, err
	}
	return codeMappings(b, exe), nil
}

// ReleaseCode unmaps the pages of the process's own executable (code and
// read-only data) from its address space, to be mapped again from the page
// cache by the first use of each. A server touches much of its binary only
// while it starts (package initialisation, parsing its settings, recovery)
// and the kernel maps file pages 64 KiB around each one touched; without
// this those pages stay counted in its resident memory for as long as it
// runs. What it serves with comes back within its first requests, as
// minor faults. The pages are clean copies of the file: nothing is lost,
// and the writable data segment is left alone.
func ReleaseCode() (CodePages, error) {
	ms, err := ownCode()
	if err != nil {
		return CodePages{}, err
	}
	if len(ms) == 0 {
		return CodePages{}, errors.New("memtrim: no read-only mapping of the executable in /proc/self/smaps")
	}
	p := CodePages{Before: residentCode(ms)}
	for _, m := range ms {
		if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, m.start, m.end-m.start, syscall.MADV_DONTNEED); e != 0 {
			return p, e
		}
	}
	if ms, err = ownCode(); err != nil {
		return p, err
	}
	p.After = residentCode(ms)
	return p, nil
}
