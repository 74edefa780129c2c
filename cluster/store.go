package cluster

import "github.com/disperse/disperse/engine"

// Store is what a Node needs of the storage engine. *engine.Engine
// implements it; tests may wrap it to inject faults.
type Store interface {
	// ApplyBatch makes entries durable and applies those newer than what
	// is held, last writer wins; it returns how many were applied. It
	// keeps copies of the values, and points the Value of each entry it
	// applied at its copy (the Node sends that to peers, so its callers'
	// buffers are free once a write returns).
	ApplyBatch(ents []engine.Entry) (int, error)
	// Get returns the visible (not deleted, not expired) entry of key.
	Get(key string) (engine.Entry, bool)
	// Head returns the newest version held for key in any form: value,
	// tombstone, expiry marker or node-local write.
	Head(key string) (engine.Version, bool)
	// List returns up to limit visible keys starting with prefix that sort
	// after after, and the key to continue after ("" when done).
	List(prefix, after string, limit int) ([]string, string)
	// MaxVersion is the largest version the store holds or has held.
	MaxVersion() engine.Version
	// AboveMax reports whether v is newer than MaxVersion, without a lock
	// (an apply at the same moment may be missed).
	AboveMax(v engine.Version) bool
	// LeafDigests returns engine.Leaves digests of the replicated entries.
	LeafDigests() []uint64
	// LeafEntries returns the replicated entries of one leaf, tombstones
	// and expiry markers included.
	LeafEntries(leaf int) []engine.Entry
}

var _ Store = (*engine.Engine)(nil)
