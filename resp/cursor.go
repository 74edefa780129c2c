package resp

import (
	"math/rand/v2"
	"sync"
)

// SCAN cursors: Redis clients expect a number, and the store lists keys
// after a key, so the server keeps the key each cursor stands for. The
// table is bounded in entries and bytes; the oldest cursors go first, and
// a cursor that is gone is answered "ERR invalid cursor".
const (
	maxCursors      = 65536
	maxCursorsBytes = 8 << 20
)

type cursorTable struct {
	mu    sync.Mutex
	keys  map[uint64]string
	order []uint64 // ids in the order they were made (a ring once full)
	head  int
	bytes int
}

// put keeps after and returns its new cursor, never 0.
func (t *cursorTable) put(after string) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.keys == nil {
		t.keys = map[uint64]string{}
	}
	for len(t.keys) >= maxCursors || t.bytes+len(after) > maxCursorsBytes && len(t.keys) > 0 {
		t.evictOldest()
	}
	var id uint64
	for id == 0 || t.has(id) {
		id = rand.Uint64() >> 1 // below 2^63, for clients that read a signed number
	}
	t.keys[id] = after
	t.bytes += len(after)
	t.order = append(t.order, id)
	return id
}

func (t *cursorTable) has(id uint64) bool { _, ok := t.keys[id]; return ok }

func (t *cursorTable) evictOldest() {
	for t.head < len(t.order) {
		id := t.order[t.head]
		t.head++
		if k, ok := t.keys[id]; ok {
			delete(t.keys, id)
			t.bytes -= len(k)
			break
		}
	}
	if t.head > len(t.order)/2 {
		t.order = append(t.order[:0], t.order[t.head:]...)
		t.head = 0
	}
}

// get returns the key a cursor stands for. A cursor may be used again (a
// client retrying a page), so it stays until it is evicted.
func (t *cursorTable) get(id uint64) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k, ok := t.keys[id]
	return k, ok
}
