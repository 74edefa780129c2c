package blob

import (
	"errors"
	"fmt"
	"syscall"
)

// Errors of the blob store. Callers test them with errors.Is; every error
// returned by this package wraps one of them (or a ShardError) with context.
var (
	// ErrNotFound: there is no blob (no manifest) with that id.
	ErrNotFound = errors.New("blob: not found")
	// ErrNoShard: a holder has no file for the shard asked for. A read
	// that meets it turns to the other shards; it never means that the
	// blob is absent.
	ErrNoShard = errors.New("blob: no such shard")
	// ErrBadID: the id is not 1..256 characters of A-Z a-z 0-9 . _ -, or is
	// "." or "..".
	ErrBadID = errors.New("blob: bad id")
	// ErrBadParams: data/parity shard counts outside 1 <= k, 0 <= m,
	// k+m <= 256, or a malformed range or request.
	ErrBadParams = errors.New("blob: bad parameters")
	// ErrBadRange: a byte range that does not overlap the blob.
	ErrBadRange = errors.New("blob: range not satisfiable")
	// ErrUnavailable: fewer than k shards of a needed stripe can be had, or
	// a holder could not take its shard.
	ErrUnavailable = errors.New("blob: unavailable")
	// ErrTooFewNodes: there is no live node to place shards on.
	ErrTooFewNodes = errors.New("blob: too few nodes")
	// ErrCorrupt: a shard block or header failed its checksum or is
	// malformed.
	ErrCorrupt = errors.New("blob: corrupt shard data")
	// ErrBodyRead: the bytes of a blob being stored could not be read (the
	// client went away or sent a broken body); nothing was stored.
	ErrBodyRead = errors.New("blob: reading the blob's bytes failed")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("blob: store closed")
	// ErrDiskFull: a node ran out of disk space (ENOSPC, EDQUOT) while
	// storing a shard or a manifest; what the operation wrote was removed.
	ErrDiskFull = errors.New("blob: disk full")
	// ErrConflict: a manifest's compare-and-set failed because the
	// catalog record changed since it was read (see Catalog).
	ErrConflict = errors.New("blob: manifest changed meanwhile")
	// ErrChecksum: the bytes of a full read did not hash to the blob's
	// sha256; the read is cut before its last stripe.
	ErrChecksum = errors.New("blob: sha256 mismatch")
	// ErrStalled: a shard transfer with another node was cut because no
	// byte moved for Config.TransferIdleTimeout while this node waited on
	// that node. It always comes wrapped together with ErrUnavailable.
	ErrStalled = errors.New("blob: shard transfer stalled")
	// ErrStale: the manifest a read was given has been replaced; look the
	// blob up again.
	ErrStale = errors.New("blob: manifest replaced")
	// ErrPrecondition: the blob a conditional Put or Delete would replace
	// does not meet its Condition; nothing changed.
	ErrPrecondition = errors.New("blob: precondition failed")
)

// ShardError says which shard, on which node, failed. Err wraps the cause
// (ErrCorrupt, ErrNotFound, a network or disk error, ...).
type ShardError struct {
	Index int    // shard index, 0..k+m-1
	Node  string // holder's node name
	Block int    // block (stripe) number, -1 when not about one block
	Err   error
}

func (e *ShardError) Error() string {
	if e.Block >= 0 {
		return fmt.Sprintf("blob: shard %d on %s, block %d: %v", e.Index, e.Node, e.Block, e.Err)
	}
	return fmt.Sprintf("blob: shard %d on %s: %v", e.Index, e.Node, e.Err)
}

func (e *ShardError) Unwrap() error { return e.Err }

// diskError wraps err in ErrDiskFull when the file system said it is out
// of space or quota, so that callers tell a full disk from a broken one.
func diskError(err error) error {
	if err != nil && (errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)) && !errors.Is(err, ErrDiskFull) {
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	return err
}
