package resp

import (
	"errors"

	"github.com/disperse/disperse/cluster"
	"github.com/disperse/disperse/engine"
)

// get reads a key for a command; a key that cannot exist is absent.
func (c *conn) get(k []byte) (engine.Entry, bool) {
	if !c.validKey(k) {
		return engine.Entry{}, false
	}
	e, ok := c.s.store.Get(string(k))
	if ok {
		c.s.hits.Add(1)
	} else {
		c.s.misses.Add(1)
	}
	return e, ok
}

func cmdGet(c *conn, args [][]byte) error {
	e, ok := c.get(args[1])
	if !ok {
		c.wr.null()
		return nil
	}
	c.wr.bulk(e.Value)
	return nil
}

// setOptions are SET's options after the key and value.
type setOptions struct {
	nx, xx, get, keepTTL bool
	expiresAt            int64
	hasExpiry            bool
}

func (c *conn) parseSet(args [][]byte) (setOptions, error) {
	var o setOptions
	for i := 0; i < len(args); i++ {
		opt := upper(args[i])
		switch {
		case opt == "NX" && !o.xx:
			o.nx = true
		case opt == "XX" && !o.nx:
			o.xx = true
		case opt == "GET":
			o.get = true
		case opt == "KEEPTTL" && !o.hasExpiry:
			o.keepTTL = true
		case (opt == "EX" || opt == "PX" || opt == "EXAT" || opt == "PXAT") && !o.hasExpiry && !o.keepTTL && i+1 < len(args):
			at, _, err := c.expiryOption(opt, args[i+1], "set")
			if err != nil {
				return o, err
			}
			o.expiresAt, o.hasExpiry = at, true
			i++
		default:
			return o, replyError(msgSyntax)
		}
	}
	return o, nil
}

func cmdSet(c *conn, args [][]byte) error {
	key, err := c.writeKey(args[1])
	if err != nil {
		return err
	}
	if err := c.checkValue(len(args[2])); err != nil {
		return err
	}
	o, err := c.parseSet(args[3:])
	if err != nil {
		return err
	}
	if !o.get && !o.keepTTL {
		// The common case: one write, conditional at most on existence.
		w := newValue(key, args[2], o.expiresAt)
		w.If = cluster.Precondition{Absent: o.nx, Exists: o.xx}
		_, err := c.put(w)
		switch {
		case errors.Is(err, cluster.ErrPrecondition):
			c.wr.null()
		case err != nil:
			return err
		default:
			c.wr.ok()
		}
		return nil
	}
	out, err := c.update(key, func(cur engine.Entry, ok bool) (cluster.Write, bool, error) {
		if o.nx && ok || o.xx && !ok {
			return cluster.Write{}, false, nil
		}
		w := newValue(key, args[2], o.expiresAt)
		if o.keepTTL && ok {
			w.ExpiresAt = cur.ExpiresAt
		}
		return w, true, nil
	})
	switch {
	case err != nil:
		return err
	case o.get && out.existed:
		c.wr.bulk(out.prev.Value)
	case o.get, !out.wrote:
		c.wr.null()
	default:
		c.wr.ok()
	}
	return nil
}

func cmdSetNX(c *conn, args [][]byte) error {
	key, err := c.writeKey(args[1])
	if err != nil {
		return err
	}
	if err := c.checkValue(len(args[2])); err != nil {
		return err
	}
	w := newValue(key, args[2], 0)
	w.If.Absent = true
	_, err = c.put(w)
	switch {
	case errors.Is(err, cluster.ErrPrecondition):
		c.wr.integer(0)
	case err != nil:
		return err
	default:
		c.wr.integer(1)
	}
	return nil
}

func cmdSetEX(c *conn, args [][]byte) error  { return c.setWithTTL(args, unitSeconds, "setex") }
func cmdPSetEX(c *conn, args [][]byte) error { return c.setWithTTL(args, unitMillis, "psetex") }

// setWithTTL serves SETEX and PSETEX: key, time-to-live, value.
func (c *conn) setWithTTL(args [][]byte, unit int64, name string) error {
	key, err := c.writeKey(args[1])
	if err != nil {
		return err
	}
	n, err := intArg(args[2])
	if err != nil {
		return err
	}
	at, err := c.relativeExpiry(n, unit, name)
	if err != nil {
		return err
	}
	if err := c.checkValue(len(args[3])); err != nil {
		return err
	}
	if _, err := c.put(newValue(key, args[3], at)); err != nil {
		return err
	}
	c.wr.ok()
	return nil
}

func cmdGetSet(c *conn, args [][]byte) error {
	key, err := c.writeKey(args[1])
	if err != nil {
		return err
	}
	if err := c.checkValue(len(args[2])); err != nil {
		return err
	}
	out, err := c.update(key, func(engine.Entry, bool) (cluster.Write, bool, error) {
		return newValue(key, args[2], 0), true, nil
	})
	if err != nil {
		return err
	}
	c.replyPrev(out)
	return nil
}

// replyPrev answers the value a read-modify-write found, or null.
func (c *conn) replyPrev(out outcome) {
	if out.existed {
		c.wr.bulk(out.prev.Value)
	} else {
		c.wr.null()
	}
}

func cmdGetDel(c *conn, args [][]byte) error {
	if !c.validKey(args[1]) {
		c.wr.null()
		return nil
	}
	out, err := c.update(string(args[1]), func(_ engine.Entry, ok bool) (cluster.Write, bool, error) {
		return cluster.Write{Delete: true}, ok, nil
	})
	if err != nil {
		return err
	}
	c.replyPrev(out)
	return nil
}

func cmdGetEX(c *conn, args [][]byte) error {
	var at int64
	var set bool
	for i := 2; i < len(args); i++ {
		opt := upper(args[i])
		if opt == "PERSIST" && !set {
			at, set = 0, true
			continue
		}
		if set || i+1 == len(args) {
			return replyError(msgSyntax)
		}
		e, ok, err := c.expiryOption(opt, args[i+1], "getex")
		if !ok {
			return replyError(msgSyntax)
		}
		if err != nil {
			return err
		}
		at, set = e, true
		i++
	}
	if !set {
		return cmdGet(c, args)
	}
	if !c.validKey(args[1]) {
		c.wr.null()
		return nil
	}
	out, err := c.update(string(args[1]), func(cur engine.Entry, ok bool) (cluster.Write, bool, error) {
		if !ok || cur.ExpiresAt == at {
			return cluster.Write{}, false, nil
		}
		return c.keep(cur, at), true, nil
	})
	if err != nil {
		return err
	}
	c.replyPrev(out)
	return nil
}

func cmdMGet(c *conn, args [][]byte) error {
	c.wr.array(len(args) - 1)
	for _, k := range args[1:] {
		if e, ok := c.get(k); ok {
			c.wr.bulk(e.Value)
		} else {
			c.wr.null()
		}
	}
	return nil
}

// pairs checks the key-value pairs of MSET and MSETNX before anything is
// written.
func (c *conn) pairs(args [][]byte, name string) ([]string, error) {
	if len(args)%2 != 1 {
		return nil, wrongArgs(name)
	}
	keys := make([]string, 0, len(args)/2)
	for i := 1; i < len(args); i += 2 {
		k, err := c.writeKey(args[i])
		if err != nil {
			return nil, err
		}
		if err := c.checkValue(len(args[i+1])); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// cmdMSet writes each pair on its own: a failure of the store part way
// leaves the pairs before it written (and answers the error).
func cmdMSet(c *conn, args [][]byte) error {
	keys, err := c.pairs(args, "mset")
	if err != nil {
		return err
	}
	for i, k := range keys {
		if _, err := c.put(newValue(k, args[2+2*i], 0)); err != nil {
			return err
		}
	}
	c.wr.ok()
	return nil
}

// cmdMSetNX writes each pair on condition that its key is absent; when one
// exists, the pairs already written are deleted again (each only if it
// still holds what was written) and the answer is 0. Other clients may see
// the first pairs for that moment: MSETNX is atomic per key, not across
// keys.
func cmdMSetNX(c *conn, args [][]byte) error {
	keys, err := c.pairs(args, "msetnx")
	if err != nil {
		return err
	}
	for _, k := range keys {
		if _, ok := c.s.store.Get(k); ok {
			c.wr.integer(0)
			return nil
		}
	}
	var written []engine.Entry
	for i, k := range keys {
		w := newValue(k, args[2+2*i], 0)
		w.If.Absent = true
		e, err := c.put(w)
		if err == nil {
			written = append(written, e)
			continue
		}
		for _, done := range written {
			_, uerr := c.put(cluster.Write{Key: done.Key, Delete: true, If: cluster.Precondition{Match: done.Version}})
			if uerr != nil && !errors.Is(uerr, cluster.ErrPrecondition) {
				return uerr
			}
		}
		if errors.Is(err, cluster.ErrPrecondition) {
			c.wr.integer(0)
			return nil
		}
		return err
	}
	c.wr.integer(1)
	return nil
}

func cmdStrlen(c *conn, args [][]byte) error {
	e, _ := c.get(args[1])
	c.wr.integer(int64(len(e.Value)))
	return nil
}

func cmdGetRange(c *conn, args [][]byte) error {
	start, err := intArg(args[2])
	if err != nil {
		return err
	}
	end, err := intArg(args[3])
	if err != nil {
		return err
	}
	e, _ := c.get(args[1])
	c.wr.bulk(substr(e.Value, start, end))
	return nil
}

// substr is GETRANGE's slice of v: negative offsets count from the end,
// both ends inclusive, clamped to v.
func substr(v []byte, start, end int64) []byte {
	n := int64(len(v))
	if start < 0 && end < 0 && start > end {
		return nil
	}
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	start, end = max(start, 0), max(end, 0)
	end = min(end, n-1)
	if n == 0 || start > end {
		return nil
	}
	return v[start : end+1]
}

func cmdAppend(c *conn, args [][]byte) error {
	key, err := c.writeKey(args[1])
	if err != nil {
		return err
	}
	out, err := c.update(key, func(cur engine.Entry, ok bool) (cluster.Write, bool, error) {
		if !ok {
			return newValue(key, args[2], 0), true, nil
		}
		if err := c.checkValue(len(cur.Value) + len(args[2])); err != nil {
			return cluster.Write{}, false, err
		}
		v := make([]byte, 0, len(cur.Value)+len(args[2]))
		v = append(append(v, cur.Value...), args[2]...)
		return cluster.Write{Value: v, ContentType: cur.ContentType, ExpiresAt: cur.ExpiresAt}, true, nil
	})
	if err != nil {
		return err
	}
	c.wr.integer(int64(len(out.entry.Value)))
	return nil
}

func cmdSetRange(c *conn, args [][]byte) error {
	key, err := c.writeKey(args[1])
	if err != nil {
		return err
	}
	off, err := intArg(args[2])
	if err != nil {
		return err
	}
	if off < 0 {
		return replyError(msgOffset)
	}
	patch := args[3]
	if off > c.s.cfg.MaxValueBytes || c.checkValue(int(off)+len(patch)) != nil {
		return msgTooBigErr
	}
	out, err := c.update(key, func(cur engine.Entry, ok bool) (cluster.Write, bool, error) {
		if len(patch) == 0 {
			return cluster.Write{}, false, nil // nothing changes, nothing is created
		}
		n := max(len(cur.Value), int(off)+len(patch))
		v := make([]byte, n)
		copy(v, cur.Value)
		copy(v[off:], patch)
		if !ok {
			return cluster.Write{Value: v, ContentType: contentType}, true, nil
		}
		return cluster.Write{Value: v, ContentType: cur.ContentType, ExpiresAt: cur.ExpiresAt}, true, nil
	})
	if err != nil {
		return err
	}
	if out.wrote {
		c.wr.integer(int64(len(out.entry.Value)))
	} else {
		c.wr.integer(int64(len(out.prev.Value)))
	}
	return nil
}
