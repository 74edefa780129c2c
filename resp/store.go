package resp

import (
	"context"

	"github.com/disperse/disperse/cluster"
	"github.com/disperse/disperse/engine"
)

// Store is what the Redis protocol needs of a node: the same operations
// the REST API calls. *cluster.Node implements it; tests may use a fake.
type Store interface {
	// Put stamps w with a new version, makes it durable on this node and,
	// unless w.Local, sends it to every live peer. A write whose w.If does
	// not hold fails with an error that wraps cluster.ErrPrecondition and
	// changes nothing. It reads w.Value during the call only (the server
	// passes values that alias its read buffer).
	Put(ctx context.Context, w cluster.Write) (engine.Entry, error)
	// PutBatch makes writes of distinct keys without preconditions as Put
	// makes each, in one store batch, and returns each one's entry or
	// error (a pipeline's run of SETs).
	PutBatch(ctx context.Context, ws []cluster.Write) ([]engine.Entry, []error)
	// Get returns the visible (not deleted, not expired) entry of key. Its
	// Value must not be modified.
	Get(key string) (engine.Entry, bool)
	// List returns up to limit visible keys that start with prefix and sort
	// after after, in byte order, and the key to continue after ("" when
	// done). Internal keys (byte 0x00 first) are left out unless prefix
	// starts with 0x00.
	List(prefix, after string, limit int) ([]string, string)
	// Members lists the nodes of the cluster, this one included.
	Members() []cluster.Member
}

var _ Store = (*cluster.Node)(nil)
