package resp

import (
	"math"
	"strconv"

	"github.com/disperse/disperse/cluster"
	"github.com/disperse/disperse/engine"
)

// cmdDel serves DEL and UNLINK. Like DELETE /cache it writes a tombstone
// whether or not the key is there (so it also beats a write of the key
// still on its way from another node), and counts the keys that were
// visible here just before.
func cmdDel(c *conn, args [][]byte) error {
	n := int64(0)
	for _, k := range args[1:] {
		if !c.validKey(k) {
			continue
		}
		out, err := c.update(string(k), func(engine.Entry, bool) (cluster.Write, bool, error) {
			return cluster.Write{Delete: true}, true, nil
		})
		if err != nil {
			return err
		}
		if out.existed {
			n++
		}
	}
	c.wr.integer(n)
	return nil
}

func cmdExists(c *conn, args [][]byte) error {
	n := int64(0)
	for _, k := range args[1:] {
		if _, ok := c.get(k); ok {
			n++
		}
	}
	c.wr.integer(n)
	return nil
}

func cmdType(c *conn, args [][]byte) error {
	if _, ok := c.get(args[1]); ok {
		c.wr.simple("string")
	} else {
		c.wr.simple("none")
	}
	return nil
}

// cmdExpire serves EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT with NX, XX,
// GT and LT. A key without an expiry counts as one that never expires for
// GT and LT. An expiry that has passed deletes the key.
func cmdExpire(c *conn, args [][]byte) error {
	name := c.lastCmd
	var nx, xx, gt, lt bool
	for _, a := range args[3:] {
		switch upper(a) {
		case "NX":
			nx = true
		case "XX":
			xx = true
		case "GT":
			gt = true
		case "LT":
			lt = true
		default:
			return errorf("ERR Unsupported option %s", a)
		}
	}
	switch {
	case nx && (xx || gt || lt):
		return replyError(msgNXXX)
	case gt && lt:
		return replyError(msgGTLT)
	}
	n, err := intArg(args[2])
	if err != nil {
		return err
	}
	at, err := c.expiryArg(name, n)
	if err != nil {
		return err
	}
	if !c.validKey(args[1]) {
		c.wr.integer(0)
		return nil
	}
	out, err := c.update(string(args[1]), func(cur engine.Entry, ok bool) (cluster.Write, bool, error) {
		has := cur.ExpiresAt != 0
		switch {
		case !ok,
			nx && has,
			xx && !has,
			gt && (!has || at <= cur.ExpiresAt),
			lt && has && at >= cur.ExpiresAt:
			return cluster.Write{}, false, nil
		}
		return c.keep(cur, at), true, nil
	})
	if err != nil {
		return err
	}
	c.wr.boolean(out.wrote)
	return nil
}

// expiryArg turns the time argument of an EXPIRE command into an absolute
// expiry in Unix nanoseconds. Unlike SET's, a time that is not positive is
// allowed: it is in the past, and deletes the key. One that overflows is
// Redis's invalid expire time.
func (c *conn) expiryArg(name string, n int64) (int64, error) {
	unit, abs := unitSeconds, false
	switch name {
	case "pexpire":
		unit = unitMillis
	case "expireat":
		abs = true
	case "pexpireat":
		unit, abs = unitMillis, true
	}
	if n > math.MaxInt64/unit || n < math.MinInt64/unit {
		return 0, invalidExpire(name)
	}
	d := n * unit
	if abs {
		return max(d, 1), nil // 1: the epoch's first nanosecond, long past
	}
	now := c.s.cfg.Now().UnixNano()
	if d > 0 && d > math.MaxInt64-now {
		return 0, invalidExpire(name)
	}
	return max(now+d, 1), nil
}

func cmdPersist(c *conn, args [][]byte) error {
	if !c.validKey(args[1]) {
		c.wr.integer(0)
		return nil
	}
	out, err := c.update(string(args[1]), func(cur engine.Entry, ok bool) (cluster.Write, bool, error) {
		if !ok || cur.ExpiresAt == 0 {
			return cluster.Write{}, false, nil
		}
		return c.keep(cur, 0), true, nil
	})
	if err != nil {
		return err
	}
	c.wr.boolean(out.wrote)
	return nil
}

// cmdTTL serves TTL, PTTL, EXPIRETIME and PEXPIRETIME: -2 for a key that
// does not exist, -1 for one without an expiry.
func cmdTTL(c *conn, args [][]byte) error {
	e, ok := c.get(args[1])
	switch {
	case !ok:
		c.wr.integer(-2)
		return nil
	case e.ExpiresAt == 0:
		c.wr.integer(-1)
		return nil
	}
	ms := e.ExpiresAt / unitMillis
	switch c.lastCmd {
	case "ttl", "pttl":
		// Whole milliseconds left, rounded up as Redis's (which keeps
		// milliseconds) would be right after the expiry was set.
		left := max((e.ExpiresAt-c.s.cfg.Now().UnixNano()+unitMillis-1)/unitMillis, 0)
		if c.lastCmd == "ttl" {
			left = (left + 500) / 1000
		}
		c.wr.integer(left)
	case "expiretime":
		c.wr.integer(ms / 1000)
	default:
		c.wr.integer(ms)
	}
	return nil
}

// scanDefaultCount is SCAN's COUNT when none is given.
const scanDefaultCount = 10

// maxScanCount bounds the keys one SCAN call looks at, whatever COUNT says.
const maxScanCount = 10000

func cmdScan(c *conn, args [][]byte) error {
	cur, err := strconv.ParseUint(string(args[1]), 10, 64)
	if err != nil {
		return replyError(msgCursor)
	}
	count, pattern, typ := int64(scanDefaultCount), []byte(nil), ""
	for i := 2; i < len(args); i += 2 {
		if i+1 == len(args) {
			return replyError(msgSyntax)
		}
		switch upper(args[i]) {
		case "COUNT":
			if count, err = intArg(args[i+1]); err != nil {
				return err
			}
			if count < 1 {
				return replyError(msgSyntax)
			}
		case "MATCH":
			pattern = args[i+1]
		case "TYPE":
			typ = upper(args[i+1])
		default:
			return replyError(msgSyntax)
		}
	}
	after := ""
	if cur != 0 {
		var ok bool
		if after, ok = c.s.cursors.get(cur); !ok {
			return replyError(msgCursor)
		}
	}
	var keys []string
	next := ""
	if typ == "" || typ == "STRING" {
		keys, next = c.scanPage(pattern, after, int(min(count, maxScanCount)))
	}
	var nextCur uint64
	if next != "" {
		nextCur = c.s.cursors.put(next)
	}
	c.wr.array(2)
	c.wr.bulkString(strconv.FormatUint(nextCur, 10))
	c.wr.array(len(keys))
	for _, k := range keys {
		c.wr.bulkString(k)
	}
	return nil
}

// scanPage looks at up to count keys after after and returns those that
// match pattern, and where to go on ("" when done). A pattern with a
// literal prefix lists only keys with that prefix.
func (c *conn) scanPage(pattern []byte, after string, count int) ([]string, string) {
	prefix := ""
	if pattern != nil {
		prefix = literalPrefix(pattern)
	}
	page, next := c.s.store.List(prefix, after, count)
	if pattern == nil {
		return page, next
	}
	keys := page[:0]
	for _, k := range page {
		if globMatch(pattern, []byte(k)) {
			keys = append(keys, k)
		}
	}
	return keys, next
}

func cmdKeys(c *conn, args [][]byte) error {
	var keys []string
	after := ""
	for {
		page, next := c.scanPage(args[1], after, maxScanCount)
		keys = append(keys, page...)
		if next == "" {
			break
		}
		after = next
	}
	c.wr.array(len(keys))
	for _, k := range keys {
		c.wr.bulkString(k)
	}
	return nil
}

func cmdRandomKey(c *conn, _ [][]byte) error {
	k, ok := randomKey(c.s.store, c.s.cfg.MaxKeyBytes)
	if !ok {
		c.wr.null()
		return nil
	}
	c.wr.bulkString(k)
	return nil
}
