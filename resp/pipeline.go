package resp

import (
	"bytes"
	"time"

	"github.com/disperse/disperse/cluster"
)

// maxRun is the most pipelined SETs applied together.
const maxRun = 64

// plainSet reports whether args is SET key value from a connection that
// may write: the form a run of pipelined SETs is made of.
func (c *conn) plainSet(args [][]byte) bool {
	return len(args) == 3 && c.scope >= scopeWrite && equalFold(args[0], "SET")
}

// gatherSets takes the plain SETs of distinct keys that follow first in the
// read buffer. The first command after them that is not one is returned as
// pending, to run next; err is a framing error met on the way.
func (c *conn) gatherSets(first [][]byte) (run [][][]byte, pending [][]byte, err error) {
	c.argBuf = c.argBuf[:0]
	keep := func(a [][]byte) [][]byte { // next reuses its slice of arguments
		s := len(c.argBuf)
		c.argBuf = append(c.argBuf, a...)
		return c.argBuf[s:len(c.argBuf):len(c.argBuf)]
	}
	run = append(c.run[:0], keep(first))
	defer func() { c.run = run }()
	for len(run) < maxRun {
		args, err := c.rd.next()
		if err != nil || args == nil {
			return run, nil, err
		}
		a := keep(args)
		if !c.plainSet(a) || hasKey(run, a[1]) {
			return run, a, nil
		}
		run = append(run, a)
	}
	return run, nil, nil
}

func hasKey(run [][][]byte, key []byte) bool {
	for _, a := range run {
		if bytes.Equal(a[1], key) {
			return true
		}
	}
	return false
}

// execSets applies a run of plain SETs of distinct keys as one store batch
// (one log append and commit for all) and answers them in order. Each is
// one write, as on its own, stamped with its own version.
func (c *conn) execSets(run [][][]byte, t0 time.Time) time.Time {
	if len(run) == 1 {
		return c.exec(run[0], t0)
	}
	errs := make([]error, len(run))
	ws := make([]cluster.Write, 0, len(run))
	at := make([]int, 0, len(run)) // run index of each write
	for i, a := range run {
		w, err := c.setWrite(a)
		if err != nil {
			errs[i] = err
			continue
		}
		ws = append(ws, w)
		at = append(at, i)
	}
	if len(ws) > 0 {
		_, werrs := c.s.store.PutBatch(c.s.ctx, ws)
		for j, err := range werrs {
			errs[at[j]] = err
		}
	}
	t1 := time.Now()
	for _, err := range errs {
		c.answerSet(err, t1.Sub(t0))
	}
	return t1
}

// setWrite is the write of a plain SET, or the error that answers it.
func (c *conn) setWrite(args [][]byte) (cluster.Write, error) {
	key, err := c.writeKey(args[1])
	if err == nil {
		err = c.checkValue(len(args[2]))
	}
	if err != nil {
		return cluster.Write{}, err
	}
	w := newValue(key, args[2], 0)
	w.Local = c.local
	return w, nil
}

// answerSet answers a plain SET that was applied in a batch (err: why it
// was not) and records it in the metrics, d being its time.
func (c *conn) answerSet(err error, d time.Duration) {
	s := c.s
	set := s.setCmd
	c.lastCmd = set.name
	s.totalCommands.Add(1)
	if err != nil {
		msg, server := s.errorText(err)
		if server {
			s.cfg.Logger.Error("resp: command failed", "command", set.name, "err", err)
		}
		c.wr.errorLine(msg)
	} else {
		c.wr.ok()
	}
	s.metrics.observe(set, d, err != nil)
}
