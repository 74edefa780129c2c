package blob

import (
	"context"
	"io"
	"time"
)

// ShardRef names one shard file: shard Index of upload generation Gen of
// blob ID.
type ShardRef struct {
	ID    string
	Gen   uint64
	Index int
}

// ShardInfo describes a shard file found on a node.
type ShardInfo struct {
	Ref ShardRef `json:"ref"`
	// ModTime is the file's last modification; cleanup spares recent files.
	ModTime time.Time `json:"mod_time"`
	// Temp is true for a file still being written (or abandoned mid-write).
	Temp bool `json:"temp,omitempty"`
	// Size is the file's size in bytes.
	Size int64 `json:"size"`
	// Corrupt is how many blocks of the shard failed their checksum when
	// the holder last read them and are not rewritten yet (only in the
	// answers of a Store's ShardServer).
	Corrupt int `json:"corrupt,omitempty"`
}

// ShardWriter receives the blocks of one new shard, in order. Nothing is
// visible under the shard's name until Commit returns nil; Abort discards
// everything written. Exactly one of Commit or Abort must be called.
type ShardWriter interface {
	// WriteBlock appends the next block. Every block but the last has the
	// shard's block size; p is not retained after the call returns.
	WriteBlock(p []byte) error
	// Commit makes the shard durable and visible.
	Commit() error
	// Abort discards the shard.
	Abort()
}

// ShardStore keeps this node's shard files. DirStore is the real one; a
// test wraps it to make it fail. Implementations must be safe for
// concurrent use.
type ShardStore interface {
	// Create starts a new shard whose blocks are blockSize bytes.
	Create(ref ShardRef, blockSize int) (ShardWriter, error)
	// OpenBlocks streams the framed blocks [from, to) of a shard as they
	// are stored (header then data, see doc.go), without verifying them;
	// to < 0 means to the last block. A missing shard is ErrNoShard.
	OpenBlocks(ref ShardRef, from, to int) (io.ReadCloser, error)
	// Stat describes a committed shard; a missing one is ErrNoShard.
	Stat(ref ShardRef) (ShardInfo, error)
	// RewriteBlock replaces block b of an existing shard with p (repair).
	RewriteBlock(ref ShardRef, b int, p []byte) error
	// Remove deletes a shard (committed or temporary); absent is no error.
	Remove(ref ShardRef) error
	// List lists every shard file, temporary ones included.
	List() ([]ShardInfo, error)
	// RemoveStale deletes temporary files not written to since before and
	// returns how many it removed.
	RemoveStale(before time.Time) (int, error)
}

// ShardClient reaches the ShardServer of another node, addressed by its
// HTTP host:port. HTTPClient is the real one. Implementations must be safe
// for concurrent use.
type ShardClient interface {
	// Create streams a new shard to addr; the remote commits it on Commit.
	Create(ctx context.Context, addr string, ref ShardRef, blockSize int) (ShardWriter, error)
	// OpenBlocks streams framed blocks [from, to) of a shard from addr.
	OpenBlocks(ctx context.Context, addr string, ref ShardRef, from, to int) (io.ReadCloser, error)
	// RewriteBlock replaces block b of a shard on addr.
	RewriteBlock(ctx context.Context, addr string, ref ShardRef, b int, p []byte) error
	// Remove deletes a shard on addr.
	Remove(ctx context.Context, addr string, ref ShardRef) error
	// List lists the shard files on addr.
	List(ctx context.Context, addr string) ([]ShardInfo, error)
	// Stat describes a shard on addr (ErrNoShard when it has none).
	Stat(ctx context.Context, addr string, ref ShardRef) (ShardInfo, error)
	// GetRecord asks addr for its record of blob id; ok is false when it
	// has none.
	GetRecord(ctx context.Context, addr, id string) (rec Record, ok bool, err error)
	// PutRecord tells addr of a new record of blob id.
	PutRecord(ctx context.Context, addr, id string, rec Record) error
}
