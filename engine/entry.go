package engine

import (
	"fmt"
	"strconv"
	"time"
)

// Version orders writes of one key: the higher version wins everywhere.
// Time is a hybrid logical clock reading (upper 48 bits: Unix milliseconds,
// lower 16 bits: a logical counter); Node is the writer's node id and breaks
// ties between writes stamped with the same Time on different nodes.
type Version struct {
	Time uint64
	Node uint64
}

// Compare returns -1, 0 or +1 as v is older than, equal to or newer than o.
func (v Version) Compare(o Version) int {
	switch {
	case v.Time < o.Time:
		return -1
	case v.Time > o.Time:
		return 1
	case v.Node < o.Node:
		return -1
	case v.Node > o.Node:
		return 1
	}
	return 0
}

// IsZero reports whether v is the zero version (no write).
func (v Version) IsZero() bool { return v == Version{} }

// WallTime is the physical part of the clock reading.
func (v Version) WallTime() time.Time { return time.UnixMilli(int64(v.Time >> 16)) }

// String is the version as 32 hex digits; it sorts like Compare.
func (v Version) String() string { return fmt.Sprintf("%016x%016x", v.Time, v.Node) }

// ParseVersion reads what String writes.
func ParseVersion(s string) (Version, error) {
	if len(s) != 32 {
		return Version{}, fmt.Errorf("engine: bad version %q", s)
	}
	t, err := strconv.ParseUint(s[:16], 16, 64)
	if err != nil {
		return Version{}, fmt.Errorf("engine: bad version %q", s)
	}
	n, err := strconv.ParseUint(s[16:], 16, 64)
	if err != nil {
		return Version{}, fmt.Errorf("engine: bad version %q", s)
	}
	return Version{Time: t, Node: n}, nil
}

// Entry is one write of one key: a value or, with Deleted, a tombstone.
type Entry struct {
	Key         string
	Value       []byte
	ContentType string
	// ExpiresAt is the absolute expiry in Unix nanoseconds; 0 means never.
	ExpiresAt int64
	Version   Version
	// Deleted marks a tombstone: the key was deleted at Version.
	Deleted bool
	// Local marks a node-local write (X-Is-Sync): it is never sent to peers
	// and not counted by anti-entropy.
	Local bool
	// Evicted marks an eviction stub, set only by the engine on the entries
	// BucketEntries and LeafEntries return: the value of Key at Version was
	// evicted on this node (Value is nil), and the node keeps the key,
	// Version and ExpiresAt so that its digests still match peers that hold
	// the value. A stub is never sent to a peer; Apply ignores entries with
	// Evicted set (they are not stored and not counted).
	Evicted bool
}

// Expired reports whether e has an expiry at or before now.
func (e *Entry) Expired(now time.Time) bool {
	return e.ExpiresAt != 0 && e.ExpiresAt <= now.UnixNano()
}
