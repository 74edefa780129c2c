package resp

import (
	"errors"

	"github.com/disperse/disperse/cluster"
	"github.com/disperse/disperse/engine"
)

// maxCASTries bounds how often a read-modify-write is tried again because
// another writer changed the key between its read and its write.
const maxCASTries = 64

// put makes an unconditional or self-conditioned write from this
// connection (node-local if the connection is).
func (c *conn) put(w cluster.Write) (engine.Entry, error) {
	w.Local = c.local
	return c.s.store.Put(c.s.ctx, w)
}

// newValue is the write of a value given by the client, with the content
// type of values written over this protocol. v aliases the read buffer,
// which is reused once the command is done: the store copies a write's
// value during the call and keeps (and sends to peers) its copy only
// (cluster.Write).
func newValue(key string, v []byte, expiresAt int64) cluster.Write {
	return cluster.Write{Key: key, Value: v, ContentType: contentType, ExpiresAt: expiresAt}
}

// change decides a read-modify-write: given the key's visible entry (ok:
// there is one), it returns the write to make, or write false for none.
type change func(cur engine.Entry, ok bool) (w cluster.Write, write bool, err error)

// outcome is what update saw and did.
type outcome struct {
	prev    engine.Entry // the visible entry the decision was made on
	existed bool         // there was one
	wrote   bool         // the write was made
	entry   engine.Entry // the entry written
}

// update runs a read-modify-write of key as a compare-and-set on this
// node: f decides from the visible entry, and the write is made only if
// that entry is still the visible one (cluster.Precondition Match, or
// Absent); when another writer got there first, it reads and decides again,
// at most maxCASTries times. Writes of one key on one node are therefore
// atomic; on different nodes the newest version wins (README).
func (c *conn) update(key string, f change) (outcome, error) {
	for range maxCASTries {
		cur, ok := c.s.store.Get(key)
		w, write, err := f(cur, ok)
		if err != nil || !write {
			return outcome{prev: cur, existed: ok}, err
		}
		w.Key = key
		if ok {
			w.If = cluster.Precondition{Match: cur.Version}
		} else {
			w.If = cluster.Precondition{Absent: true}
		}
		ent, err := c.put(w)
		if errors.Is(err, cluster.ErrPrecondition) {
			continue
		}
		if err != nil {
			return outcome{}, err
		}
		return outcome{prev: cur, existed: ok, wrote: true, entry: ent}, nil
	}
	return outcome{}, errBusy
}

// keep is a write of the entry's own value and content type with another
// expiry (EXPIRE, PERSIST, GETEX); an expiry that has passed deletes it.
func (c *conn) keep(cur engine.Entry, expiresAt int64) cluster.Write {
	if c.expired(expiresAt) {
		return cluster.Write{Delete: true}
	}
	return cluster.Write{Value: cur.Value, ContentType: cur.ContentType, ExpiresAt: expiresAt}
}

// deleteOf is an unconditional delete of key.
func deleteOf(key string) cluster.Write { return cluster.Write{Key: key, Delete: true} }
