package engine

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"unsafe"

	bolt "go.etcd.io/bbolt"
)

func TestSnapshotAndLogTailRecovery(t *testing.T) {
	dir := t.TempDir()
	e := openTest(t, testConfig(dir))
	for i := 0; i < 100; i++ {
		mustApply(t, e, put(fmt.Sprintf("a%03d", i), fmt.Sprint("before-", i), ver(int64(i), 0, 1)))
	}
	local := put("a000", "local", ver(500, 0, 1))
	local.Local = true
	mustApply(t, e, local)
	if err := e.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.SnapshotSeq != st.LastSeq || st.SnapshotSeq != 101 {
		t.Fatalf("stats after snapshot %+v", st)
	}
	// The tail: new keys, overwrites and deletes of snapshotted ones.
	for i := 0; i < 20; i++ {
		mustApply(t, e, put(fmt.Sprintf("b%03d", i), "after", ver(1000, 0, 1)))
		mustApply(t, e, put(fmt.Sprintf("a%03d", i+10), "overwritten", ver(1000, 0, 1)))
	}
	mustApply(t, e, del("a050", ver(1000, 0, 1)), del("a051", ver(1000, 0, 1)))

	check := func(stage string, r *Engine) {
		t.Helper()
		for i := 0; i < 100; i++ {
			k := fmt.Sprintf("a%03d", i)
			got, ok := getValue(t, r, k)
			want := fmt.Sprint("before-", i)
			switch {
			case i == 0:
				want = "local"
			case i >= 10 && i < 30:
				want = "overwritten"
			case i == 50 || i == 51:
				if ok {
					t.Fatalf("%s: deleted %s is back", stage, k)
				}
				continue
			}
			if got != want {
				t.Fatalf("%s: %s = %q (ok=%v), want %q", stage, k, got, ok, want)
			}
		}
		for i := 0; i < 20; i++ {
			if got, _ := getValue(t, r, fmt.Sprintf("b%03d", i)); got != "after" {
				t.Fatalf("%s: b%03d = %q", stage, i, got)
			}
		}
		if !equalDigests(r.Digests(), e.Digests()) {
			t.Fatalf("%s: digests differ from the original", stage)
		}
		if st := r.Stats(); st.Keys != 118 || st.Tombstones != 2 {
			t.Fatalf("%s: stats %+v", stage, st)
		}
	}
	crashed := openTest(t, testConfig(crashCopy(t, dir)))
	check("snapshot plus tail", crashed)
	if rec := crashed.Recovery(); rec.SnapshotEntries != 101 || rec.LogRecords != 41 {
		t.Fatalf("recovery %+v, want 101 snapshot entries and 41 records", rec)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	r := openTest(t, testConfig(dir))
	check("after close", r)
	if rec := r.Recovery(); rec.LogRecords != 0 {
		t.Fatalf("replayed %d records after a clean close", rec.LogRecords)
	}
}

func equalDigests(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSnapshotReleasesLog(t *testing.T) {
	e := openTest(t, testConfig(t.TempDir()))
	value := make([]byte, 10<<10)
	for i := 0; i < 300; i++ { // about 3 MiB: several 1 MiB segments
		mustApply(t, e, Entry{Key: fmt.Sprint("k", i%10), Value: value, Version: ver(int64(i), 0, 1)})
	}
	before := e.Stats().LogBytes
	if err := e.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if after := e.Stats().LogBytes; after >= before/2 {
		t.Fatalf("log bytes %d -> %d: the snapshot released nothing", before, after)
	}
}

func TestSnapshotBesideWriters(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.SnapshotWALBytes = 8 << 10 // background snapshots all along
	e := openTest(t, cfg)

	const writers, writes = 4, 300
	acked := make([]map[string]Entry, writers)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	snapErr := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				snapErr <- nil
				return
			default:
			}
			if err := e.Snapshot(); err != nil {
				snapErr <- err
				return
			}
		}
	}()
	for w := 0; w < writers; w++ {
		acked[w] = map[string]Entry{}
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < writes; i++ {
				ent := put(fmt.Sprintf("w%d-%d", w, i%50), fmt.Sprint(i), ver(int64(i), 0, uint64(w)))
				if i%7 == 0 {
					ent = del(ent.Key, ent.Version)
				}
				if _, err := e.Apply(ent); err != nil {
					t.Errorf("Apply: %v", err)
					return
				}
				acked[w][ent.Key] = ent
			}
		}(w)
	}
	wg.Wait()
	close(stop)
	if err := <-snapErr; err != nil {
		t.Fatal(err)
	}
	e.snapMu.Lock() // no snapshot half-written while copying
	crashDir := crashCopy(t, dir)
	e.snapMu.Unlock()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, crashDir} {
		r := openTest(t, testConfig(d))
		for _, m := range acked {
			for k, want := range m {
				got, ok := r.Get(k)
				if want.Deleted {
					if ok {
						t.Fatalf("%s: deleted %s is back", d, k)
					}
					continue
				}
				if !ok || got.Version != want.Version || string(got.Value) != string(want.Value) {
					t.Fatalf("%s: %s = %+v, want %+v", d, k, got, want)
				}
			}
		}
	}
}

func TestCorruptSnapshotStopsOpen(t *testing.T) {
	dir := t.TempDir()
	e := openTest(t, testConfig(dir))
	mustApply(t, e, put("k", "v", ver(1, 0, 1)))
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(dir, "snapshot.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketKeys).Put([]byte("k"), []byte{codecVersion, 1, 0xff})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(testConfig(dir)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with a damaged snapshot value: %v, want ErrCorrupt", err)
	}
	// The failed Open released the lock.
	if _, err := Open(testConfig(dir)); errors.Is(err, ErrLocked) {
		t.Fatal("a failed Open kept the lock")
	}
}

func TestLogBehindSnapshot(t *testing.T) {
	dir := t.TempDir()
	e := openTest(t, testConfig(dir))
	for i := 0; i < 5; i++ {
		mustApply(t, e, put(fmt.Sprint("old", i), "v", ver(1, 0, 1)))
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	// The log is lost: the snapshot covers seq 5, a new log starts at 1.
	if err := os.RemoveAll(filepath.Join(dir, "wal")); err != nil {
		t.Fatal(err)
	}
	r := openTest(t, testConfig(dir))
	if st := r.Stats(); st.Keys != 5 || st.SnapshotSeq != 0 {
		t.Fatalf("after losing the log: %+v, want 5 keys and the snapshot re-anchored at 0", st)
	}
	mustApply(t, r, put("new", "v", ver(2, 0, 1)))
	crashed := openTest(t, testConfig(crashCopy(t, dir)))
	if _, ok := crashed.Get("new"); !ok {
		t.Fatal("a write made after the log was lost is missing after a crash")
	}
}

// TestSnapshotTransactionsBoundBytes: keys written in order fill one bbolt
// node after another, so a bound on the nodes alone let one transaction
// hold every value of the snapshot in memory. A transaction stops at its
// bound in bytes too; the snapshot goes on in the next ones, and a node
// restarted from it has every key.
func TestSnapshotTransactionsBoundBytes(t *testing.T) {
	dir := t.TempDir()
	e := openTest(t, testConfig(dir))
	const keys, limit = 3000, 64 // 3 MB of values; 256 KiB a transaction
	value := make([]byte, 1000)
	for i := range keys {
		value[0] = byte(i)
		mustApply(t, e, Entry{Key: fmt.Sprintf("k%05d", i), Value: value, Version: ver(int64(i+1), 0, 1)})
	}
	list := flatten(e.ix.swapDirty())
	var a arena
	n, err := e.writeSnapshotTx(list, e.wal.LastSeq(), limit, &a)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || n == len(list) {
		t.Fatalf("one transaction wrote %d of %d keys, want some but not all", n, len(list))
	}
	if a.used > limit*4096+int64(len(value))+64 {
		t.Fatalf("one transaction held %d bytes of values, bound %d", a.used, limit*4096)
	}
	a.reset()
	if err := e.writeSnapshot(list[n:], e.wal.LastSeq()); err != nil {
		t.Fatal(err)
	}
	// Recover from the snapshot alone: the log is not replayed over it.
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	logs, err := filepath.Glob(filepath.Join(dir, "wal", "*"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("log files: %v, %v", logs, err)
	}
	for _, name := range logs {
		if err := os.Remove(name); err != nil {
			t.Fatal(err)
		}
	}
	e = openTest(t, testConfig(dir))
	for i := range keys {
		got, ok := e.Get(fmt.Sprintf("k%05d", i))
		if !ok || len(got.Value) != len(value) || got.Value[0] != byte(i) {
			t.Fatalf("key %d after recovery from the snapshot: found %v, %d bytes", i, ok, len(got.Value))
		}
	}
}

// TestSnapshotOfFreshKeysAllocatesLittle: the snapshot handle maps room
// ahead, so a snapshot that grows the file does not make bbolt copy its
// open transaction to the heap at each remap. Measured: 8 bytes allocated
// per byte of values with the room, 35 when bbolt remapped as the file grew.
func TestSnapshotOfFreshKeysAllocatesLittle(t *testing.T) {
	e := openTest(t, testConfig(t.TempDir()))
	const keys, size = 100_000, 100
	value := bytes.Repeat([]byte{'v'}, size)
	batch := make([]Entry, 0, 1000)
	for i := range keys {
		batch = append(batch, Entry{Key: fmt.Sprintf("k%d", i), Value: value, Version: ver(1, 0, 1)})
		if len(batch) == cap(batch) {
			mustApply(t, e, batch...)
			batch = batch[:0]
		}
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := e.Snapshot(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("a snapshot of %d keys (%d MB of values) allocated %d MB", keys, keys*size>>20, allocated>>20)
	if allocated > 16*keys*size {
		t.Fatalf("a snapshot of %d keys allocated %d bytes, %d per byte of values; want at most 16",
			keys, allocated, allocated/(keys*size))
	}
}

// TestFlattenCopiesKeys: the keys a snapshot writes from do not alias the
// items' buffers, which hold the values, and come once each in order.
func TestFlattenCopiesKeys(t *testing.T) {
	e := openTest(t, testConfig(t.TempDir()))
	mustApply(t, e, Entry{Key: "a", Value: make([]byte, 4096), Version: ver(1, 0, 1)})
	it := e.ix.shard(hashKey("a")).t.get("a", hashKey("a"))
	keys := flatten(e.ix.swapDirty())
	if len(keys) != 1 || keys[0] != "a" {
		t.Fatalf("flatten: %q", keys)
	}
	if unsafe.StringData(keys[0]) == unsafe.StringData(it.key()) {
		t.Fatal("the snapshot's key list points into the item's buffer, keeping its value alive")
	}
	var lists [2]dirtyKeys
	lists[0].add("b")
	lists[0].add("a")
	lists[1].add("b")
	if got := flatten(lists[:]); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("flatten of b, a and b: %q", got)
	}
}

// TestDirtyBit: a key changed again while it is dirty is listed once; a
// change between the swap and the snapshot's read of the key is in that
// snapshot; a change after the read is in the next one. Each step is
// checked against a recovery from the snapshot alone.
func TestDirtyBit(t *testing.T) {
	dir := t.TempDir()
	e := openTest(t, testConfig(dir))
	for i := range 5 {
		mustApply(t, e, put("k", fmt.Sprint("v", i), ver(int64(i+1), 0, 1)))
	}
	if n := dirtyCount(e); n != 1 {
		t.Fatalf("one key written five times: %d in the dirty lists", n)
	}
	keys := flatten(e.ix.swapDirty())
	mustApply(t, e, put("k", "between", ver(10, 0, 1)))
	if n := dirtyCount(e); n != 0 {
		t.Fatalf("a change before the snapshot read the key added it again (%d listed)", n)
	}
	if err := e.writeSnapshot(keys, e.wal.LastSeq()); err != nil {
		t.Fatal(err)
	}
	e.snapSeq.Store(e.wal.LastSeq())
	if got := snapshotValue(t, e, "k"); got != "between" {
		t.Fatalf("snapshot holds %q, want the change made before it read the key", got)
	}
	mustApply(t, e, put("k", "after", ver(11, 0, 1)))
	if n := dirtyCount(e); n != 1 {
		t.Fatalf("a change after the snapshot read the key: %d listed, want 1", n)
	}
	if err := e.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if got := snapshotValue(t, e, "k"); got != "after" {
		t.Fatalf("next snapshot holds %q, want the change made after the first read the key", got)
	}
}

// dirtyCount is how many keys the shards' dirty lists hold.
func dirtyCount(e *Engine) int64 {
	var n int64
	for i := range e.ix.shards {
		s := &e.ix.shards[i]
		s.mu.Lock()
		n += int64(len(s.dirty.appendKeys(nil)))
		s.mu.Unlock()
	}
	return n
}

// snapshotValue decodes key's replicated value from the snapshot file.
func snapshotValue(t *testing.T, e *Engine, key string) string {
	t.Helper()
	var out string
	err := e.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketKeys).Get([]byte(key))
		if v == nil {
			return fmt.Errorf("%q not in the snapshot", key)
		}
		ents, err := decodeEntries(v, nil)
		if err != nil {
			return err
		}
		for _, ent := range ents {
			if !ent.Local {
				out = string(ent.Value)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
