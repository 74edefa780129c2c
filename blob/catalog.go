package blob

import (
	"context"
	"fmt"
	"strconv"
)

// Catalog holds the manifests: small records replicated to every node, so
// any node can serve any blob and manifests survive restarts. Keys are blob
// ids; an implementation backed by the cluster's replicated cache stores
// them under keys beginning "\x00blob/" and strips that prefix in List.
//
// Every record has a Version that grows with each write of its key. Writes
// are compare-and-set on the version read: the store never replaces or
// deletes a manifest it has not seen, so a repair working from a copy
// that has become stale cannot overwrite a newer upload. The condition is
// checked atomically with the write on the node that makes it, and a
// write that fails it changes nothing and returns an error wrapping
// ErrConflict.
//
// Implementations must be safe for concurrent use.
type Catalog interface {
	// Get returns the value of key, its version, and whether it exists.
	// For a deleted key it returns ok false and, when the implementation
	// still knows it, the version of the deletion (else zero): a record
	// another node announced is then known to be older than the deletion.
	Get(key string) (value []byte, v Version, ok bool)
	// Put stores value under key if the key's current version is prev, or,
	// when prev is zero, if the key is absent (never written, or deleted).
	// It returns the version written.
	Put(ctx context.Context, key string, value []byte, prev Version) (Version, error)
	// Delete removes key (a tombstone in a replicated implementation) if
	// its current version is prev; a zero prev deletes whatever is there.
	// It returns the tombstone's version.
	Delete(ctx context.Context, key string, prev Version) (Version, error)
	// List returns up to limit keys starting with prefix that sort after
	// after, in byte order, and the key to continue after ("" when done).
	List(prefix, after string, limit int) ([]string, string)
}

// Version is the version of a catalog record. Two versions of one key are
// ordered: the later write has the higher version. The zero Version means
// "no record". The cluster's catalog uses its hybrid logical clock
// (engine.Version has the same two fields).
type Version struct {
	Time uint64
	Node uint64
}

// Compare returns -1, 0 or +1 as v is older than, equal to or newer than o.
func (v Version) Compare(o Version) int {
	switch {
	case v.Time != o.Time:
		if v.Time < o.Time {
			return -1
		}
		return 1
	case v.Node < o.Node:
		return -1
	case v.Node > o.Node:
		return 1
	}
	return 0
}

// IsZero reports whether v is the zero version.
func (v Version) IsZero() bool { return v == Version{} }

// String is v as 32 hex digits.
func (v Version) String() string { return fmt.Sprintf("%016x%016x", v.Time, v.Node) }

// MarshalText writes String.
func (v Version) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText reads what MarshalText writes.
func (v *Version) UnmarshalText(b []byte) error {
	if len(b) != 32 {
		return fmt.Errorf("%w: version %q", ErrBadParams, b)
	}
	t, err1 := strconv.ParseUint(string(b[:16]), 16, 64)
	n, err2 := strconv.ParseUint(string(b[16:]), 16, 64)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("%w: version %q", ErrBadParams, b)
	}
	*v = Version{Time: t, Node: n}
	return nil
}
