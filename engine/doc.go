// Package engine is the storage engine of one Disperse node: the in-memory
// index of every key, expiry, the write-ahead log (package wal) and an
// incremental bbolt snapshot, and recovery from both at Open.
//
// # Entries and slots
//
// Every mutation is an Entry applied with Apply or ApplyBatch: a value or a
// tombstone (Deleted), stamped with a Version (hybrid logical clock time,
// node id as the tie-break). The index keeps two slots per key: the
// replicated slot and a node-local slot for X-Is-Sync writes (Local).
//
//   - An entry goes into the slot its Local flag names only if its version
//     is newer than that slot's; a Local entry must also be newer than the
//     replicated slot. Applying the same or an older entry changes nothing,
//     so replaying the log and receiving a peer's copy twice are harmless.
//   - When the replicated slot becomes at least as new as the local slot,
//     the local slot is dropped: a newer cluster write wins.
//   - Readers see the local slot when there is one (it is newer by the rule
//     above), except that a local value past its expiry lets the replicated
//     entry show through. Tombstones and expired values (expiry markers
//     included) are never returned.
//   - Digests, LeafDigests, BucketEntries and LeafEntries cover the
//     replicated slots only, tombstones and expiry markers included.
//   - Head is the newest version held in either slot, tombstones and
//     markers included: what a new write must beat. MaxVersion is the
//     largest version applied or loaded since Open, so that a node's clock
//     can start above everything it holds.
//
// # Expiry
//
// At its ExpiresAt a replicated value becomes an expiry marker: its bytes
// and content type are freed, and its key, Version and ExpiresAt stay.
// Like a tombstone, a marker is invisible to Get and List, an entry of the
// same or an older version loses against it (so an older copy of the key
// held by a peer cannot come back once the newer one expired), and it is
// collected TombstoneTTL after its ExpiresAt. A tombstone is collected
// TombstoneTTL after its version's wall time. A marker's digest term is
// the expired value's (key, version, expiry, not deleted), so two nodes
// agree whether or not their reapers have run; BucketEntries and
// LeafEntries show a marker, or a value past its expiry the reaper has not
// reached yet, with a nil Value, no content type and its ExpiresAt (in the
// past), not Deleted. A value that arrives (Apply, log replay, snapshot
// load) already expired goes in as a marker at once, without its bytes.
//
// Node-local slots (Local) leave no marker: a local value goes at its
// ExpiresAt, a local tombstone TombstoneTTL after its version's wall time
// (or, when it hides a replicated entry, while that entry is there).
//
// Each key with a deadline sits in an indexed min-heap; one goroutine
// sleeps until the earliest deadline, re-armed when an earlier one arrives,
// and turns values into markers and removes what is due, updating the
// digests, the counters and the dirty list. Its work is proportional to
// what expires; nothing scans the index. Reads check the time themselves,
// so an expired key is invisible before the reaper gets to it. Stats count
// markers under Tombstones ("tombstones and expiry markers").
//
// # Write path
//
// Apply encodes the entries and, holding the read side of a gate RWMutex,
// appends them to the log as one record (group commit batches concurrent
// appenders under one fsync) and then updates the index. A snapshot holds
// the gate's write side only to swap the per-bucket dirty-key sets and read
// the log's last sequence number. On a log error the index is untouched and
// the error wraps wal.ErrDiskFull or wal.ErrIO.
//
// # Record encoding
//
// A log record's payload, a snapshot value and a peer batch share one
// encoding (AppendEntries, DecodeEntries):
//
//	batch := version:byte(1) count:uvarint entry*
//	entry := flags:byte keyLen:uvarint key
//	         time:uvarint node:uvarint
//	         [expiresAt:varint]              if flags&4 (never 0)
//	         [ctLen:uvarint contentType]     if flags&8 (never empty)
//	         [valueLen:uvarint value]        if flags&16 (never empty)
//	flags: 1 deleted, 2 local, 4 expiry, 8 content type, 16 value,
//	       32 evicted (an eviction stub, or in a log record the eviction
//	       of the key's value at that version; never with 1, 2, 8 or 16)
//
// A put of "k" = "v" at version {Time: 5, Node: 1} encodes as
// 01 01 10 01 6b 05 01 01 76. The decoder bounds every length by the bytes
// left and the count by the smallest entry size, rejects unknown flags and
// trailing bytes, and never panics (FuzzDecodeEntries).
//
// # Snapshot layout
//
// Dir/snapshot.db is a bbolt file with two buckets:
//
//	keys:  key -> batch of the key's slots (replicated first, then local),
//	       encoded as above with empty keys (the bbolt key is the key)
//	meta:  "format" -> 0x01
//	       "seq"    -> 8-byte big-endian log sequence number covered
//
// A snapshot writes every dirty key's current slots and deletes dirty keys
// the index no longer holds, in transactions that change a bounded number
// of pages (bbolt holds every page a transaction changes in memory until
// it commits; with a memory bound those pages take at most 1/64 of it,
// without one 65,536 pages), and sets
// "seq" in the last; only after that commit does the log drop the segments
// at or below seq. The state written may be newer than seq (writes keep
// landing while it runs, and a crash may leave the first transactions of a
// snapshot without the last); replay of the records after seq is
// idempotent, so that is harmless. An expiry marker is written as a
// replicated entry with its expiry and no value, an eviction stub likewise
// with the evicted flag.
//
// A failed snapshot puts its keys back into the dirty lists and gives back
// the disk space it took: a commit grows the file and writes its new pages
// past the old end, and when a write fails (ENOSPC) bbolt rolls back but
// keeps the file's size and the blocks written. The engine truncates the
// file to the committed high-water mark (the file may have been grown
// ahead of it by an earlier commit, and the failed pages written there),
// so that a retried snapshot cannot keep what an operator freed, and the
// log can take it for new segments.
//
// bbolt is opened with NoFreelistSync, so a commit does not write the
// freelist: bbolt rebuilds it by walking the pages at open. The handle
// maps 1 GiB of address space from the start: bbolt remaps when the file
// outgrows its map, and a remap copies every key and value of the open
// transaction to the heap (a snapshot of 100,000 fresh keys allocated four
// times as much with bbolt's doubling map). The data and
// the meta page are fsynced as always, so this trades some open time for
// cheaper commits without risking entries. The hashmap freelist keeps page
// allocation fast as the file grows. Keys are written in sorted order with
// a bucket FillPercent of 0.9, so pages are left nearly full.
//
// # Recovery
//
// Open takes an exclusive flock on Dir/LOCK (ErrLocked if held, even by
// the same process), loads the snapshot through a read-only bbolt handle,
// then replays the log after the snapshot's seq (a torn tail is cut by the
// log) while the writable bbolt handle opens, logs one line with what it
// recovered and only then returns. Loading and replay keep every slot
// whose collection time has not passed, and drop the others: a tombstone's
// is its version's wall time plus TombstoneTTL, an expired value's its
// ExpiresAt plus TombstoneTTL (before that it comes back as a marker,
// without its bytes), a local value's its ExpiresAt. If the log ends
// before the snapshot's seq (the log was lost), the snapshot is
// re-anchored at the log's last seq so that new records are not skipped by
// a later replay. Close writes a last snapshot.
//
// Loading is a two-stage pipeline: one goroutine walks the bbolt cursor,
// decodes and builds the items (the allocations), the other puts them into
// the ordered index a batch at a time and then into the shards. The
// snapshot stores the key count ("keys" in meta) so the shard tables are
// sized once; the read-only handle maps the file with MAP_POPULATE, since
// the load reads every page; and GOGC is raised to 400 while Open runs, as
// nearly all it allocates stays live (the collector would otherwise mark
// the growing index again at every doubling).
//
// # Invariants
//
//   - Every acknowledged Apply is in the log, or in the snapshot whose seq
//     covers its record.
//   - A local slot, when present, is newer than the replicated slot.
//   - A leaf's digest is the XOR of the entry hashes of the replicated
//     slots of its keys; a bucket's digest is the XOR of its leaves'
//     digests (leaf l lies in bucket l % Buckets).
//   - Freeing an expired value (making it a marker) changes no digest.
//   - A replicated slot is never collected before its collection time, so
//     until then no entry of the same or an older version wins the key.
//   - MaxVersion is at least the version of every slot held.
//   - A failed snapshot leaves the bbolt file no larger than before it.
//   - Every key changed since the last swap is in a dirty list, or in the
//     list of the snapshot being written which has not yet read it
//     (dirty.go), except keys evicted while Open loads.
//   - An eviction stub's digest term is the evicted value's; a stub is
//     never visible and never older than a peer's copy it stands for.
//   - With MaxMemory, the charge for the index stays within the budget
//     after every Apply that adds a value (concurrent Applies may pass it
//     by what they add together).
//
// # Index structures
//
// Buckets shards, one per anti-entropy bucket (BucketOf: FNV-1a of the key
// modulo Buckets), each with a mutex, an open-addressing hash table of its
// items, side maps for the rare parts, its dirty list and its digest. Beside
// them, Leaves leaf digests (LeafOf: the same hash modulo Leaves, so a
// leaf's keys all lie in shard leaf % Buckets), each written under its
// shard's lock together with the shard's digest: a write changes one leaf
// and one bucket term in O(1). LeafEntries walks the leaf's shard and keeps
// the keys of the leaf. The largest version seen is two atomics, raised
// under a mutex only when a version beats it. One ordered index over all
// items (sorted leaves of 125 items found through a B-tree of their
// fences, ordered.go) orders keys for List; List reads it in chunks and
// checks each key under its shard's lock, never holding both locks. Lock
// order: shard, then the ordered index or the deadline heap.
//
// # Memory
//
// One item of 16 bytes per key (a pointer, the deadline heap position and
// the flags); the key, the replicated slot's version, expiry and value
// share one allocation, whose lengths and expiry are varints (item.go);
// content types are interned; local slots and rare content types live in
// side maps; the shard tables cost about 12 bytes a key and the ordered
// index 8 to 10 (its leaves fill when keys come in order, as a snapshot's
// do, and stay 86% full at random); the leaf digests are a fixed 512 KiB. An expiry marker keeps
// its key, version and expiry. For 1,000,000 keys of 16 bytes with
// 100-byte values the heap in use is about 1.7 times the raw bytes
// (BenchmarkRecovery1M).
//
// Recovery runs under a raised GOGC (gcpercent.go): nearly all it
// allocates stays live, so the collector would only mark the growing index
// again and again. Its garbage can then reach several times the index; the
// end of the last recovery collects once and gives the free pages back
// (debug.FreeOSMemory) when one of them built an index charged 32 MiB or
// more, so that a
// restarted node is resident at its index, not at the recovery's
// high-water mark (TestRecoveryGivesItsGarbageBack).
//
// # Memory bound and eviction
//
// With Config.MaxMemory set, the engine charges every item what it takes
// on the heap (memory.go: the item, its allocation rounded to the Go size
// class, its table, tree, queue and heap slots, its local slot), plus each
// key in a dirty list or in the snapshot being written
// (TestAccountingCoversHeap checks the figures against the heap: within
// 0.8 to 1.05). The charge stays within the budget, MaxMemory less a
// quarter and 16 MiB: the rest is for what does not grow with the keys,
// a snapshot's transaction (at most 1/64 of the bound in pages, see
// Snapshot layout), requests in flight, and the collector's headroom.
// With Config.SetMemoryLimit the Go memory limit is MaxMemory, so the
// collector runs more often rather than let the heap pass it; snapshots
// start early once the log since the last one passes 1/32 of the bound,
// so that the dirty lists stay small.
//
// A write of a value that would take the charge past the budget first
// evicts, by Config.Eviction:
//
//   - EvictAllKeys (the default) and EvictVolatile (only values with an
//     expiry) choose by SIEVE: each shard keeps a queue of its evictable
//     values, oldest first, a read sets the value's visited bit, and a hand
//     walks the queue from the oldest, clearing visited bits, and evicts
//     the first value without one. The shards are taken in turn, so they
//     shrink alike. SIEVE costs one bit and one queue slot a key and keeps
//     a key that is read on every pass of the hand; on a Zipf trace it
//     beats exact LRU (BenchmarkZipfHitRatio, figures in BENCHMARKS.md).
//   - EvictVolatileTTL evicts the values whose expiry comes first, found
//     by a best-first walk of the deadline heap.
//   - EvictNone evicts nothing.
//
// When the policy finds nothing to evict the write fails with
// ErrMemoryFull and nothing is applied; deletes always go in. Tombstones
// and expiry markers hold no value and are never evicted before their
// collection time, nor are node-local slots.
//
// Evicting a value keeps an eviction stub: the item keeps its key,
// version and expiry and frees the value and content type. A stub is a
// miss for Get and List; its digest term is the value's (key, version,
// expiry), so the hash tree still matches peers that hold the value and
// anti-entropy moves nothing; BucketEntries and LeafEntries return it
// with Evicted set, a nil Value and no content type (a stub past its
// expiry comes as an expiry marker, Evicted unset); an entry of the same
// or an older version loses against it, a newer one replaces it as usual
// (an entry passed to Apply with Evicted set is ignored);
// at its expiry it turns into an expiry marker. Stubs cost memory too:
// once they take more than a quarter of the budget, or when there is no
// value left to evict, the oldest stubs are dropped (the key leaves the
// index and its digest term goes: a peer that still holds the value may
// then send it back, the repair churn the cluster counts). Each eviction
// goes into the log as an entry with the evicted flag (many to a record,
// written beside the writes), and the stub into the snapshot, so an
// evicted key stays evicted across a restart and a crash.
//
// A restart with a smaller bound evicts while it loads, by the same
// policy, after each batch of the snapshot and every 1,024 log records;
// those evictions leave the keys clean (the snapshot keeps the values, and
// the next Open evicts them again) so that loading a large snapshot into
// a small bound does not grow the dirty lists. After Open the writable
// snapshot handle's mapped pages are dropped from resident memory
// (madvise), as they are after every snapshot transaction: they fault
// back in from the page cache when a snapshot needs them.
//
// Returned values alias the engine's memory and must not be modified.
//
// # Example
//
//	e, err := engine.Open(engine.Config{Dir: "data"})
//	if err != nil {
//		return err
//	}
//	defer e.Close()
//	v := engine.Version{Time: uint64(time.Now().UnixMilli()) << 16, Node: 1}
//	if _, err := e.Apply(engine.Entry{Key: "k", Value: []byte("v"), Version: v}); err != nil {
//		return err // wraps wal.ErrDiskFull or wal.ErrIO
//	}
//	ent, ok := e.Get("k")
package engine
