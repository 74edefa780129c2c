package engine

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// checkDigestTree fails unless every bucket's digest is the XOR of the
// digests of its leaves, and every leaf's digest is the XOR of the entry
// hashes of its LeafEntries. Call it while nothing writes.
func checkDigestTree(tb testing.TB, e *Engine) {
	tb.Helper()
	buckets, leaves := e.Digests(), e.LeafDigests()
	if len(buckets) != Buckets || len(leaves) != Leaves {
		tb.Fatalf("%d bucket and %d leaf digests, want %d and %d", len(buckets), len(leaves), Buckets, Leaves)
	}
	folded := make([]uint64, Buckets)
	for l, d := range leaves {
		folded[l%Buckets] ^= d
	}
	for b := range buckets {
		if folded[b] != buckets[b] {
			tb.Fatalf("bucket %d digest %x, but its leaves XOR to %x", b, buckets[b], folded[b])
		}
	}
	for b := range Buckets {
		var fromLeaves []Entry
		for l := b; l < Leaves; l += Buckets {
			ents := e.LeafEntries(l)
			var sum uint64
			for _, ent := range ents {
				if LeafOf(ent.Key) != l || ent.Local {
					tb.Fatalf("leaf %d returned %+v", l, ent)
				}
				sum ^= entryHash(hashKey(ent.Key), ent.Version, ent.ExpiresAt, ent.Deleted)
			}
			if sum != leaves[l] {
				tb.Fatalf("leaf %d digest %x, but its entries hash to %x", l, leaves[l], sum)
			}
			fromLeaves = append(fromLeaves, ents...)
		}
		if !sameEntries(fromLeaves, e.BucketEntries(b)) {
			tb.Fatalf("bucket %d: its leaves' entries differ from BucketEntries", b)
		}
	}
}

func TestLeafOf(t *testing.T) {
	keys := []string{"", "k", "\x00manifest/a", "key-000000000001", string(make([]byte, 300))}
	for i := range 10000 {
		keys = append(keys, fmt.Sprint("user/", i))
	}
	seen := map[int]bool{}
	for _, k := range keys {
		l := LeafOf(k)
		if l < 0 || l >= Leaves {
			t.Fatalf("LeafOf(%q) = %d, out of [0, %d)", k, l, Leaves)
		}
		if l%Buckets != BucketOf(k) {
			t.Fatalf("LeafOf(%q) = %d lies in bucket %d, but BucketOf is %d", k, l, l%Buckets, BucketOf(k))
		}
		seen[l] = true
	}
	if len(seen) < 5000 {
		t.Fatalf("10,000 keys fell into only %d leaves", len(seen))
	}
}

func TestLeafDigests(t *testing.T) {
	cfgA, clockA := clockedConfig(t.TempDir())
	cfgB, _ := clockedConfig(t.TempDir())
	r := rand.New(rand.NewPCG(7, 8))
	ents := randomEntries(r, 500)
	soon := clockA.Now().Add(time.Minute).UnixNano()
	for i := range 20 { // values that will expire, and one already expired
		ent := put(fmt.Sprint("exp-", i), "v", ver(int64(i), 0, 1))
		ent.ExpiresAt = soon
		if i == 0 {
			ent.ExpiresAt = clockA.Now().Add(-time.Second).UnixNano()
		}
		ents = append(ents, ent)
	}
	a, b := openTest(t, cfgA), openTest(t, cfgB)
	mustApply(t, a, ents...)
	shuffled := slices.Clone(ents)
	r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, ent := range shuffled {
		mustApply(t, b, ent)
	}
	if !slices.Equal(a.LeafDigests(), b.LeafDigests()) {
		t.Fatal("leaf digests differ after the same entries in another order")
	}
	checkDigestTree(t, a)
	checkDigestTree(t, b)
	nonzero := 0
	for _, d := range a.LeafDigests() {
		if d != 0 {
			nonzero++
		}
	}
	if nonzero < 40 {
		t.Fatalf("only %d leaves have a digest", nonzero)
	}

	// The values expire on a: their bytes go, their digests stay.
	clockA.Advance(2 * time.Minute)
	freed := b.Stats().ValueBytes - 19*int64(len("v")) // exp-0 arrived as a marker
	waitFor(t, 10*time.Second, "the reaper", func() bool { return a.Stats().ValueBytes == freed })
	for i := range 20 {
		if k := fmt.Sprint("exp-", i); !hasMarker(a.LeafEntries(LeafOf(k)), k) {
			t.Fatalf("LeafEntries does not show %s as an expiry marker", k)
		}
	}
	if !slices.Equal(a.LeafDigests(), b.LeafDigests()) || !slices.Equal(a.Digests(), b.Digests()) {
		t.Fatal("freeing expired values changed the digests")
	}
	checkDigestTree(t, a)

	// One newer write changes exactly one leaf.
	before := a.LeafDigests()
	mustApply(t, a, put("key-1", "x", ver(5000, 0, 0)))
	after := a.LeafDigests()
	for l := range before {
		if (before[l] != after[l]) != (l == LeafOf("key-1")) {
			t.Fatalf("leaf %d digest changed=%v", l, before[l] != after[l])
		}
	}
	checkDigestTree(t, a)

	// A restart loads the same digests.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	reopened := openTest(t, cfgA)
	if !slices.Equal(reopened.LeafDigests(), after) {
		t.Fatal("leaf digests differ after a restart")
	}
	checkDigestTree(t, reopened)

	for _, l := range []int{-1, Leaves} {
		if got := reopened.LeafEntries(l); got != nil {
			t.Fatalf("LeafEntries(%d) = %v, want nil", l, got)
		}
	}
}

func hasMarker(ents []Entry, key string) bool {
	for _, e := range ents {
		if e.Key == key {
			return e.Value == nil && !e.Deleted && e.ExpiresAt != 0
		}
	}
	return false
}
