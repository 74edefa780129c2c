package engine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/disperse/disperse/wal"
)

func TestItemStaysSmall(t *testing.T) {
	if n := unsafe.Sizeof(item{}); n > 16 {
		t.Fatalf("item is %d bytes, want at most 16 (one per key)", n)
	}
}

func TestLastWriterWins(t *testing.T) {
	e := openTest(t, testConfig(t.TempDir()))
	if n := mustApply(t, e, put("k", "v2", ver(100, 2, 1))); n != 1 {
		t.Fatalf("first write stored %d", n)
	}
	steps := []struct {
		ent  Entry
		won  bool
		want string
	}{
		{put("k", "older", ver(100, 1, 9)), false, "v2"},         // older time, higher node
		{put("k", "same", ver(100, 2, 1)), false, "v2"},          // same version: a duplicate
		{put("k", "tie-low", ver(100, 2, 0)), false, "v2"},       // tie on time, lower node loses
		{put("k", "tie-high", ver(100, 2, 3)), true, "tie-high"}, // tie on time, higher node wins
		{put("k", "newer", ver(101, 0, 0)), true, "newer"},
	}
	for i, s := range steps {
		won, err := e.Apply(s.ent)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := getValue(t, e, "k")
		if won != s.won || got != s.want {
			t.Fatalf("step %d: won=%v value=%q, want won=%v value=%q", i, won, got, s.won, s.want)
		}
	}
	if won, _ := e.Apply(del("k", ver(100, 9, 9))); won {
		t.Fatal("an older tombstone won")
	}
	if won, _ := e.Apply(del("k", ver(102, 0, 0))); !won {
		t.Fatal("a newer tombstone lost")
	}
	if _, ok := e.Get("k"); ok {
		t.Fatal("deleted key still visible")
	}
	if won, _ := e.Apply(put("k", "stale", ver(101, 5, 5))); won {
		t.Fatal("a write older than the tombstone won")
	}
	st := e.Stats()
	if st.Keys != 0 || st.Tombstones != 1 {
		t.Fatalf("stats %+v, want 0 keys and 1 tombstone", st)
	}
}

func TestApplyRejectsEmptyKey(t *testing.T) {
	e := openTest(t, testConfig(t.TempDir()))
	if _, err := e.Apply(put("", "v", ver(1, 0, 1))); !errors.Is(err, ErrBadEntry) {
		t.Fatalf("err = %v, want ErrBadEntry", err)
	}
}

// TestApplyBatchKeepsNoCallerBytes: once ApplyBatch returns, the entries
// it stored hold the store's copies of their values, whatever the batch
// (replicated, node-local, expired on arrival, beside an eviction stub),
// and a caller that reuses its buffers changes neither them nor the store.
func TestApplyBatchKeepsNoCallerBytes(t *testing.T) {
	e := openTest(t, testConfig(t.TempDir()))
	buf := []byte("aaaabbbbccccdddd")
	ents := []Entry{
		{Key: "repl", Value: buf[0:4], Version: nowVer(0, 1)},
		{Key: "stub", Evicted: true, Version: nowVer(1, 1)},
		{Key: "local", Value: buf[4:8], Local: true, Version: nowVer(2, 1)},
		{Key: "expired", Value: buf[8:12], ExpiresAt: time.Now().Add(-time.Second).UnixNano(), Version: nowVer(3, 1)},
		{Key: "later", Value: buf[12:16], Version: nowVer(4, 1)},
	}
	if n, err := e.ApplyBatch(ents); err != nil || n != 4 {
		t.Fatalf("stored %d entries (%v), want 4", n, err)
	}
	for i := range buf {
		buf[i] = '#'
	}
	for i, want := range []string{"aaaa", "", "bbbb", "cccc", "dddd"} {
		if got := string(ents[i].Value); got != want {
			t.Fatalf("%s: value %q after the caller's buffer was reused, want %q", ents[i].Key, got, want)
		}
	}
	for key, want := range map[string]string{"repl": "aaaa", "local": "bbbb", "later": "dddd"} {
		got, ok := e.Get(key)
		if !ok || string(got.Value) != want {
			t.Fatalf("Get(%s) = %q, %v after the caller's buffer was reused, want %q", key, got.Value, ok, want)
		}
	}
	if got, _ := e.Get("repl"); unsafe.SliceData(got.Value) != unsafe.SliceData(ents[0].Value) {
		t.Fatal("the stored entry's value is not the store's copy that readers get")
	}
}

func TestLocalSlot(t *testing.T) {
	e := openTest(t, testConfig(t.TempDir()))
	mustApply(t, e, put("k", "cluster", ver(100, 0, 1)))
	digest := e.Digests()
	bucket := BucketOf("k")

	local := put("k", "local", ver(200, 0, 1))
	local.Local = true
	if won, _ := e.Apply(local); !won {
		t.Fatal("newer local write not stored")
	}
	if got, _ := getValue(t, e, "k"); got != "local" {
		t.Fatalf("visible %q, want the newer local value", got)
	}
	if ent, _ := e.Get("k"); !ent.Local {
		t.Fatal("visible entry not flagged Local")
	}
	if !slices.Equal(e.Digests(), digest) {
		t.Fatal("a local write changed the digests")
	}
	for _, be := range e.BucketEntries(bucket) {
		if be.Key == "k" && (be.Local || string(be.Value) != "cluster") {
			t.Fatalf("BucketEntries shows %+v, want the replicated entry only", be)
		}
	}
	// A replicated write older than the local one is stored but stays hidden.
	if won, _ := e.Apply(put("k", "cluster2", ver(150, 0, 1))); !won {
		t.Fatal("newer replicated write not stored in its slot")
	}
	if got, _ := getValue(t, e, "k"); got != "local" {
		t.Fatalf("visible %q, want local (still newer)", got)
	}
	// An older local write loses against the local slot.
	stale := put("k", "stale-local", ver(190, 0, 1))
	stale.Local = true
	if won, _ := e.Apply(stale); won {
		t.Fatal("older local write stored")
	}
	// A newer cluster write wins and drops the local slot.
	mustApply(t, e, put("k", "cluster3", ver(300, 0, 1)))
	if got, _ := getValue(t, e, "k"); got != "cluster3" {
		t.Fatalf("visible %q, want cluster3", got)
	}
	// The local slot is gone: a local write between the old local and the
	// new cluster version must lose to the replicated entry.
	mid := put("k", "mid", ver(250, 0, 1))
	mid.Local = true
	if won, _ := e.Apply(mid); won {
		t.Fatal("local write older than the replicated entry stored")
	}
	if st := e.Stats(); st.ValueBytes != int64(len("cluster3")) {
		t.Fatalf("ValueBytes %d, want only the replicated value", st.ValueBytes)
	}
}

func TestLocalOnlyKeyNotInDigests(t *testing.T) {
	e := openTest(t, testConfig(t.TempDir()))
	ent := put("solo", "v", ver(100, 0, 1))
	ent.Local = true
	mustApply(t, e, ent)
	for i, d := range e.Digests() {
		if d != 0 {
			t.Fatalf("bucket %d digest %x, want 0 with only a local write", i, d)
		}
	}
	if got := e.BucketEntries(BucketOf("solo")); len(got) != 0 {
		t.Fatalf("BucketEntries = %+v, want none", got)
	}
	if got, _ := getValue(t, e, "solo"); got != "v" {
		t.Fatalf("Get = %q", got)
	}
	// A local delete hides it; the key survives a restart as deleted.
	d := del("solo", ver(101, 0, 1))
	d.Local = true
	mustApply(t, e, d)
	if _, ok := e.Get("solo"); ok {
		t.Fatal("locally deleted key visible")
	}
}

// randomEntries is a mix of writes, deletes and local writes over few keys.
func randomEntries(r *rand.Rand, n int) []Entry {
	ents := make([]Entry, n)
	for i := range ents {
		key := fmt.Sprintf("key-%d", r.IntN(50))
		v := ver(int64(1000+r.IntN(100)), uint16(r.IntN(3)), uint64(r.IntN(3)))
		switch r.IntN(6) {
		case 0:
			ents[i] = del(key, v)
		case 1:
			ents[i] = put(key, fmt.Sprint("local", i), v)
			ents[i].Local = true
		default:
			ents[i] = put(key, fmt.Sprint("v", v.String()), v)
			if r.IntN(4) == 0 {
				ents[i].ExpiresAt = 1 << 62
			}
		}
	}
	return ents
}

func TestDigestsIndependentOfOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ents := randomEntries(r, 500)
	a := openTest(t, testConfig(t.TempDir()))
	b := openTest(t, testConfig(t.TempDir()))
	for _, ent := range ents {
		mustApply(t, a, ent)
	}
	shuffled := slices.Clone(ents)
	r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	mustApply(t, b, shuffled...)
	if !slices.Equal(a.Digests(), b.Digests()) {
		t.Fatal("digests differ after the same entries in another order")
	}
	nonzero := 0
	for i, d := range a.Digests() {
		if d != 0 {
			nonzero++
		}
		if !sameEntries(a.BucketEntries(i), b.BucketEntries(i)) {
			t.Fatalf("bucket %d entries differ", i)
		}
	}
	if nonzero == 0 {
		t.Fatal("every digest is zero")
	}
	// One more newer write changes exactly one bucket's digest.
	before := a.Digests()
	mustApply(t, a, put("key-1", "x", ver(5000, 0, 0)))
	after := a.Digests()
	for i := range before {
		if (before[i] != after[i]) != (i == BucketOf("key-1")) {
			t.Fatalf("bucket %d digest changed=%v", i, before[i] != after[i])
		}
	}
}

func sameEntries(a, b []Entry) bool {
	key := func(e Entry) string {
		return fmt.Sprintf("%s|%s|%x|%d|%v|%s", e.Key, e.Version, e.Value, e.ExpiresAt, e.Deleted, e.ContentType)
	}
	ka, kb := make([]string, len(a)), make([]string, len(b))
	for i := range a {
		ka[i] = key(a[i])
	}
	for i := range b {
		kb[i] = key(b[i])
	}
	slices.Sort(ka)
	slices.Sort(kb)
	return slices.Equal(ka, kb)
}

func TestReplayIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	e := openTest(t, testConfig(dir))
	ents := randomEntries(rand.New(rand.NewPCG(3, 4)), 300)
	for i := 0; i < len(ents); i += 7 {
		mustApply(t, e, ents[i:min(i+7, len(ents))]...)
	}
	want := e.Digests()
	wantStats := e.Stats()

	// Recover from the log alone (no snapshot was taken), then feed every
	// entry again, as a duplicate peer copy would.
	r := openTest(t, testConfig(crashCopy(t, dir)))
	if got := r.Recovery().LogRecords; got != int64((len(ents)+6)/7) {
		t.Fatalf("replayed %d records", got)
	}
	check := func(stage string) {
		t.Helper()
		if !slices.Equal(r.Digests(), want) {
			t.Fatalf("%s: digests differ", stage)
		}
		got := r.Stats()
		if got.Keys != wantStats.Keys || got.Tombstones != wantStats.Tombstones ||
			got.KeyBytes != wantStats.KeyBytes || got.ValueBytes != wantStats.ValueBytes {
			t.Fatalf("%s: stats %+v, want %+v", stage, got, wantStats)
		}
		for i := 0; i < 50; i++ {
			k := fmt.Sprintf("key-%d", i)
			a, aok := e.Get(k)
			b, bok := r.Get(k)
			if aok != bok || a.Version != b.Version || string(a.Value) != string(b.Value) {
				t.Fatalf("%s: key %s: %+v vs %+v", stage, k, a, b)
			}
		}
	}
	check("after replay")
	if n := mustApply(t, r, ents...); n != 0 {
		t.Fatalf("re-applying the same entries stored %d", n)
	}
	check("after re-apply")
}

func TestSecondOpenIsLocked(t *testing.T) {
	dir := t.TempDir()
	e := openTest(t, testConfig(dir))
	if _, err := Open(testConfig(dir)); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	again := openTest(t, testConfig(dir))
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestClosedEngine(t *testing.T) {
	e := openTest(t, testConfig(t.TempDir()))
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Apply(put("k", "v", ver(1, 0, 1))); !errors.Is(err, ErrClosed) {
		t.Fatalf("Apply after Close: %v", err)
	}
	if err := e.Snapshot(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Snapshot after Close: %v", err)
	}
}

func TestLogFaultChangesNothing(t *testing.T) {
	fs := wal.NewFaultFS(nil)
	cfg := testConfig(t.TempDir())
	cfg.FS = fs
	cfg.Sync = wal.SyncAlways
	e := openTest(t, cfg)
	mustApply(t, e, put("k", "old", ver(100, 0, 1)))
	before := e.Stats()
	digests := e.Digests()

	fs.SetWriteError(syscall.ENOSPC) // the disk fills up
	_, err := e.Apply(put("k", "new", ver(200, 0, 1)))
	if !errors.Is(err, wal.ErrDiskFull) {
		t.Fatalf("Apply on a full disk: %v, want wal.ErrDiskFull", err)
	}
	_, err = e.Apply(put("other", "x", ver(200, 0, 1)))
	if err == nil {
		t.Fatal("Apply of a new key on a full disk succeeded")
	}
	if got, _ := getValue(t, e, "k"); got != "old" {
		t.Fatalf("Get after failed Apply: %q, want old", got)
	}
	if _, ok := e.Get("other"); ok {
		t.Fatal("failed write of a new key is visible")
	}
	if got := e.Stats(); got != before {
		t.Fatalf("stats changed by failed writes: %+v, want %+v", got, before)
	}
	if !slices.Equal(e.Digests(), digests) {
		t.Fatal("digests changed by a failed write")
	}

	fs.SetWriteError(nil)
	fs.SetSyncError(errors.New("injected fsync failure"))
	if _, err := e.Apply(put("k", "new", ver(200, 0, 1))); !errors.Is(err, wal.ErrIO) {
		t.Fatalf("Apply with failing fsync: %v, want wal.ErrIO", err)
	}
	if got, _ := getValue(t, e, "k"); got != "old" {
		t.Fatalf("Get after failed fsync: %q, want old", got)
	}

	fs.Clear()
	if won, err := e.Apply(put("k", "new", ver(200, 0, 1))); err != nil || !won {
		t.Fatalf("Apply after the fault cleared: won=%v err=%v", won, err)
	}
	if got, _ := getValue(t, e, "k"); got != "new" {
		t.Fatalf("Get = %q, want new", got)
	}
}

// Work's count moves with every read, hit or miss, and every write, and
// stands still across a snapshot; Work reports a snapshot while one is
// being written (here held at its first transaction by an open one), and
// none outside it.
func TestWorkCountsReadsAndWrites(t *testing.T) {
	e := openTest(t, testConfig(t.TempDir()))
	work := func() (uint64, bool) { return e.Work() }
	count := func() uint64 {
		t.Helper()
		n, snapshotting := work()
		if snapshotting {
			t.Fatal("a snapshot is reported while none is being written")
		}
		return n
	}
	n := count()
	mustApply(t, e, put("k", "v", nowVer(0, 1)))
	if m := count(); m <= n {
		t.Fatalf("a write left the count at %d (was %d)", m, n)
	} else {
		n = m
	}
	for _, key := range []string{"k", "absent"} {
		e.Get(key)
		if m := count(); m != n+1 {
			t.Fatalf("a read of %q moved the count from %d to %d", key, n, m)
		}
		n++
	}
	tx, err := e.db.Begin(true) // the snapshot's transaction waits for it
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() // a failed wait lets the snapshot end before the engine closes
	done := make(chan error, 1)
	go func() { done <- e.Snapshot() }()
	waitFor(t, 10*time.Second, "the snapshot reported", func() bool {
		_, snapshotting := work()
		return snapshotting
	})
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if m := count(); m != n {
		t.Fatalf("a snapshot moved the count from %d to %d", n, m)
	}
}
