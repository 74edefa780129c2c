package engine

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Policy is what the engine does when a write would take the index past
// its memory budget (Config.MaxMemory).
type Policy uint8

const (
	// EvictAllKeys evicts any value, chosen by SIEVE (see Memory in
	// doc.go). The default.
	EvictAllKeys Policy = iota
	// EvictNone evicts nothing: writes of values fail with ErrMemoryFull;
	// reads and deletes keep working.
	EvictNone
	// EvictVolatile evicts only values with an expiry, chosen by SIEVE;
	// with none left, writes fail as with EvictNone.
	EvictVolatile
	// EvictVolatileTTL evicts the values whose expiry comes soonest; with
	// none left, writes fail as with EvictNone.
	EvictVolatileTTL
)

// ParsePolicy reads the names String writes: "allkeys", "noeviction",
// "volatile", "volatile-ttl".
func ParsePolicy(s string) (Policy, error) {
	for p := EvictAllKeys; p <= EvictVolatileTTL; p++ {
		if p.String() == s {
			return p, nil
		}
	}
	return 0, fmt.Errorf("engine: unknown eviction policy %q (want noeviction, allkeys, volatile or volatile-ttl)", s)
}

func (p Policy) String() string {
	switch p {
	case EvictAllKeys:
		return "allkeys"
	case EvictNone:
		return "noeviction"
	case EvictVolatile:
		return "volatile"
	case EvictVolatileTTL:
		return "volatile-ttl"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// Shares of Config.MaxMemory (see Memory in doc.go).
const (
	// MinMaxMemory is the smallest bound: below it the fixed parts of a
	// node (leaf digests, buffers, the runtime) would leave the index
	// little.
	MinMaxMemory = 32 << 20
	// reserveFixed plus 1/reserveShareDen of MaxMemory is kept out of the
	// index's budget: the parts of a node that do not grow with its keys
	// (about 10 MiB: leaf digests, buffers, the runtime), a snapshot's
	// transaction, requests in flight, and the collector's headroom, which
	// it needs to run seldom (with the Go memory limit at MaxMemory, a live
	// heap close to it would have it run without end).
	reserveFixed    = 16 << 20
	reserveShareDen = 4
	// snapshotShare: a snapshot starts early once the log since the last
	// one passes MaxMemory/snapshotShare.
	snapshotShare = 32
	// stubShareDen: stubs may take 1/stubShareDen of the budget before the
	// oldest are dropped.
	stubShareDen = 4
)

// budgetOf is the index's budget for a bound of maxMemory (0: none).
func budgetOf(maxMemory int64) int64 {
	if maxMemory == 0 {
		return 0
	}
	return max(maxMemory-maxMemory/reserveShareDen-reserveFixed, 1<<20)
}

// What the accounting charges, in bytes. The figures are what the
// structures cost on a 64-bit machine with the index at its usual fill;
// TestAccountingCoversHeap checks them against the heap.
const (
	// costItem: the item (16), its shard table slot (9 bytes at a load of
	// 1/2 to 3/4), its ordered index slot (8 bytes in leaves 2/3 to full)
	// and its eviction or stub queue slot (8 bytes, with the slices' spare
	// room).
	costItem = 16 + 16 + 12 + 12
	// costDeadline: an entry in the deadline heap (16 bytes, with spare room).
	costDeadline = 24
	// costLocal: a node-local slot (its map entry and struct).
	costLocal = 24 + 80
	// costCtypeX: a content type the interner had no room for (plus its bytes).
	costCtypeX = 24 + 16
	// costDirty: a key in a dirty list (its length prefix, with the
	// list's spare room) and in the sorted list a snapshot writes from (a
	// string header); dirtyCost adds the key's bytes.
	costDirty = 8 + 16
)

// sizeClasses are the Go allocator's size classes up to 32 KiB: an
// allocation takes the smallest class that holds it.
var sizeClasses = [...]uint16{
	8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224,
	240, 256, 288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704, 768,
	896, 1024, 1152, 1280, 1408, 1536, 1792, 2048, 2304, 2688, 3072, 3200,
	3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728, 10240,
	10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576,
	27264, 28672, 32768,
}

// allocSize is what an allocation of n bytes takes on the heap.
func allocSize(n int) int64 {
	if n == 0 {
		return 0
	}
	if n > 32768 {
		return int64(n+8191) &^ 8191 // large objects take whole pages
	}
	lo, hi := 0, len(sizeClasses)-1
	for lo < hi {
		m := (lo + hi) / 2
		if int(sizeClasses[m]) >= n {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return int64(sizeClasses[lo])
}

// entryCost is what a new key holding e would be charged, at most: a
// write is refused or makes room by this much before it goes in.
func entryCost(e *Entry) int64 {
	c := costItem + allocSize(recordSize(len(e.Key), len(e.Value), e.ExpiresAt))
	if e.ExpiresAt != 0 || e.Deleted {
		c += costDeadline
	}
	if e.Local {
		c += costLocal + allocSize(len(e.Value))
	}
	return c + dirtyCost(len(e.Key))
}

// ContainerMemoryLimit reads the memory limit of the cgroup (v2) the
// process runs in from path (normally /sys/fs/cgroup/memory.max), or 0
// when there is none ("max") or it cannot be read.
func ContainerMemoryLimit(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= 0 || n >= 1<<60 {
		return 0
	}
	return n
}

// ContainerShareNum/ContainerShareDen of a container's memory limit is the
// default bound of a node that finds one: the rest is for the binary, the
// kernel's view of the page cache the container is charged for, and the
// overhead BENCHMARKS.md states.
const ContainerShareNum, ContainerShareDen = 3, 4

// DefaultMaxMemory is the bound of a node that was not given one:
// ContainerShareNum/ContainerShareDen of the cgroup's memory limit read
// from path, or 0 (none) when there is no limit or the share would be
// below MinMaxMemory.
func DefaultMaxMemory(path string) int64 {
	n := ContainerMemoryLimit(path) / ContainerShareDen * ContainerShareNum
	if n < MinMaxMemory {
		return 0
	}
	return n
}

// processResident is the process's resident memory from /proc/self/statm,
// 0 where that cannot be read.
func processResident() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}

// dirtyCost is what a key of n bytes is charged in a dirty list: its bytes
// twice (the list grows by doubling) and costDirty.
func dirtyCost(n int) int64 { return costDirty + 2*int64(n) }
