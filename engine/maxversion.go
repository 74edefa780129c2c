package engine

import (
	"sync"
	"sync/atomic"
)

// maxVersion is the largest version the index has seen. A version at or
// below it costs two atomic loads; a larger one takes the mutex, which
// serialises raises. A raise stores node before time and a reader loads
// time before node, so a reader that sees a time sees a node of that raise
// or a later one: when v.Time < time, or v.Time == time and v.Node <= node,
// some version at least v was already recorded.
type maxVersion struct {
	time, node atomic.Uint64
	mu         sync.Mutex
}

// note raises the maximum to v if v is larger.
func (m *maxVersion) note(v Version) {
	if t := m.time.Load(); v.Time < t || (v.Time == t && v.Node <= m.node.Load()) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if v.Compare(Version{Time: m.time.Load(), Node: m.node.Load()}) > 0 {
		m.node.Store(v.Node)
		m.time.Store(v.Time)
	}
}

// below reports whether v is newer than the maximum, without the mutex: a
// raise under way at the same moment may be missed.
func (m *maxVersion) below(v Version) bool {
	if t := m.time.Load(); v.Time != t {
		return v.Time > t
	}
	return v.Node > m.node.Load()
}

// get returns the maximum (the zero version before any note).
func (m *maxVersion) get() Version {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Version{Time: m.time.Load(), Node: m.node.Load()}
}
