package blob

import "context"

// Catalog holds the manifests: small records replicated to every node, so
// any node can serve any blob and manifests survive restarts. Keys are blob
// ids; an implementation backed by the cluster's replicated cache stores
// them under keys beginning "\x00blob/" and strips that prefix in List.
// Implementations must be safe for concurrent use.
type Catalog interface {
	// Put stores value under key, replacing what was there.
	Put(ctx context.Context, key string, value []byte) error
	// Get returns the value of key and whether it exists.
	Get(key string) ([]byte, bool)
	// Delete removes key (a tombstone in a replicated implementation).
	Delete(ctx context.Context, key string) error
	// List returns up to limit keys starting with prefix that sort after
	// after, in byte order, and the key to continue after ("" when done).
	List(prefix, after string, limit int) ([]string, string)
}
