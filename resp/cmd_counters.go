package resp

import (
	"math"
	"strconv"

	"github.com/disperse/disperse/cluster"
	"github.com/disperse/disperse/engine"
)

func cmdIncr(c *conn, args [][]byte) error { return c.incrBy(args[1], 1) }
func cmdDecr(c *conn, args [][]byte) error { return c.incrBy(args[1], -1) }

func cmdIncrBy(c *conn, args [][]byte) error {
	n, err := intArg(args[2])
	if err != nil {
		return err
	}
	return c.incrBy(args[1], n)
}

func cmdDecrBy(c *conn, args [][]byte) error {
	n, err := intArg(args[2])
	if err != nil {
		return err
	}
	if n == math.MinInt64 {
		return replyError("ERR decrement would overflow")
	}
	return c.incrBy(args[1], -n)
}

// incrBy adds by to the integer value of key (0 if absent) as a
// compare-and-set, keeping its expiry and content type.
func (c *conn) incrBy(k []byte, by int64) error {
	key, err := c.writeKey(k)
	if err != nil {
		return err
	}
	var result int64
	_, err = c.update(key, func(cur engine.Entry, ok bool) (cluster.Write, bool, error) {
		var n int64
		if ok {
			var good bool
			if n, good = parseInt(cur.Value); !good {
				return cluster.Write{}, false, replyError(msgNotInt)
			}
		}
		if by > 0 && n > math.MaxInt64-by || by < 0 && n < math.MinInt64-by {
			return cluster.Write{}, false, replyError(msgOverflow)
		}
		result = n + by
		return counterWrite(cur, ok, strconv.AppendInt(nil, result, 10)), true, nil
	})
	if err != nil {
		return err
	}
	c.wr.integer(result)
	return nil
}

// counterWrite is the write of a counter's new value v: the entry's
// content type and expiry are kept; a new key gets the protocol's.
func counterWrite(cur engine.Entry, ok bool, v []byte) cluster.Write {
	if !ok {
		return cluster.Write{Value: v, ContentType: contentType}
	}
	return cluster.Write{Value: v, ContentType: cur.ContentType, ExpiresAt: cur.ExpiresAt}
}

func cmdIncrByFloat(c *conn, args [][]byte) error {
	key, err := c.writeKey(args[1])
	if err != nil {
		return err
	}
	by, ok := parseFloat(args[2])
	if !ok {
		return replyError(msgNotFloat)
	}
	var result []byte
	_, err = c.update(key, func(cur engine.Entry, ok bool) (cluster.Write, bool, error) {
		var f float64
		if ok {
			var good bool
			if f, good = parseFloat(cur.Value); !good {
				return cluster.Write{}, false, replyError(msgNotFloat)
			}
		}
		f += by
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return cluster.Write{}, false, replyError(msgNaN)
		}
		result = formatFloat(nil, f)
		return counterWrite(cur, ok, result), true, nil
	})
	if err != nil {
		return err
	}
	c.wr.bulk(result)
	return nil
}
