package resp

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

var errTooManyFiles = syscall.EMFILE

// conn is one client connection. One goroutine reads its requests, runs
// them in order and writes the replies; replies go out when no complete
// request is left in the read buffer (or the reply buffer is full), so a
// pipeline of any depth costs one write per read.
type conn struct {
	s  *Server
	nc net.Conn
	rd *reader
	wr *writer

	id      int64
	created time.Time
	name    string
	libName string
	libVer  string
	lastCmd string

	// scope is what the connection may run: scopeNone before AUTH when
	// the server requires it.
	scope scope
	// local makes every write node-local (CLIENT NODELOCAL on).
	local bool
	// quit: close once the replies so far are sent (QUIT).
	quit bool

	// deadline is the read deadline last set; zero: none.
	deadline time.Time

	// run and argBuf hold a run of pipelined SETs (pipeline.go).
	run    [][][]byte
	argBuf [][]byte

	// held is a command already parsed (its arguments in heldBuf, their
	// bytes in the read buffer) and not yet run: the next to run.
	held    [][]byte
	heldBuf [][]byte

	// lp is the connection's state while an event loop serves it.
	lp loopConn
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{s: s, nc: nc, id: s.nextID.Add(1), created: s.cfg.Now()}
	c.rd = newReader(nc, s.cfg.ReadBufferBytes, max(int(s.cfg.MaxValueBytes), s.cfg.MaxKeyBytes), s.cfg.MaxCommandBytes)
	c.wr = newWriter(nc, s.cfg.WriteBufferBytes)
	c.attach(nc)
	c.reset()
	return c
}

// attach makes nc the connection's reader, writer and socket.
func (c *conn) attach(nc net.Conn) {
	c.nc = nc
	c.rd.src, c.wr.dst = nc, nc
	c.wr.flushAt = c.s.cfg.WriteBufferBytes
	stall := c.s.cfg.StallTimeout
	c.wr.beforeWrite = func() { _ = nc.SetWriteDeadline(time.Now().Add(stall)) }
}

// hold keeps args to run next; its bytes stay in the read buffer, which is
// not filled again before it runs.
func (c *conn) hold(args [][]byte) {
	c.heldBuf = append(c.heldBuf[:0], args...)
	c.held = c.heldBuf
}

// next returns the held command, if any, or the next one in the buffer.
func (c *conn) next() ([][]byte, error) {
	if c.held != nil {
		args := c.held
		c.held = nil
		return args, nil
	}
	return c.rd.next()
}

// reset puts the connection in its initial state (RESET, and at start).
func (c *conn) reset() {
	c.scope = scopeAdmin
	if c.s.cfg.Authenticate != nil {
		c.scope = scopeNone
	}
	c.wr.proto = 2
	c.name, c.local = "", false
}

// serve runs the connection until the client leaves, a protocol error, a
// timeout or shutdown.
func (c *conn) serve() {
	defer c.nc.Close()
	log := c.s.cfg.Logger
	var t0 time.Time
	for {
		args, err := c.next()
		if err == nil && args != nil && c.plainSet(args) {
			if t0.IsZero() {
				t0 = time.Now()
			}
			var run [][][]byte
			run, args, err = c.gatherSets(args)
			t0 = c.execSets(run, t0)
			if args == nil && err == nil {
				continue
			}
		}
		if err != nil {
			c.protocolError(err)
			_ = c.wr.flush()
			return
		}
		if args == nil {
			if c.wr.flush() != nil || c.quit {
				return
			}
			if err := c.read(); err != nil {
				if !errors.Is(err, io.EOF) && !c.s.closing.Load() {
					log.Debug("resp: connection ends", "remote", c.nc.RemoteAddr().String(), "err", err)
				}
				return
			}
			t0 = time.Time{}
			continue
		}
		if t0.IsZero() {
			t0 = time.Now()
		}
		t0 = c.exec(args, t0)
		if c.quit {
			_ = c.wr.flush()
			return
		}
	}
}

// protocolError answers a framing error; the connection is closed once the
// answer is sent.
func (c *conn) protocolError(err error) {
	c.s.metrics.protocolErrors.Inc()
	c.wr.errorLine("ERR " + err.Error())
	c.s.cfg.Logger.Debug("resp: protocol error; closing the connection", "remote", c.nc.RemoteAddr().String(), "err", err)
}

// read waits for more bytes, with the read deadline that fits: none (or
// IdleTimeout) between requests, StallTimeout within one.
func (c *conn) read() error {
	var want time.Time
	switch {
	case c.rd.partial():
		want = time.Now().Add(c.s.cfg.StallTimeout)
	case c.s.cfg.IdleTimeout > 0:
		want = time.Now().Add(c.s.cfg.IdleTimeout)
	}
	if !want.Equal(c.deadline) {
		if err := c.nc.SetReadDeadline(want); err != nil {
			return err
		}
		c.deadline = want
	}
	// Checked after the deadline is set, while wake sets the flag before
	// it moves the deadline: one of the two sees the other.
	if c.s.closing.Load() {
		return net.ErrClosed
	}
	err := c.rd.fill()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.deadline = time.Time{} // unknown after a wake
	}
	return err
}

// wake makes a connection blocked in read return (shutdown).
func (c *conn) wake() { _ = c.nc.SetReadDeadline(time.Unix(1, 0)) }

// exec runs one command and records its metrics; t0 is when it began, and
// the time it ends is returned (the next command's start: one clock read
// per command).
func (c *conn) exec(args [][]byte, t0 time.Time) time.Time {
	return c.execCmd(c.s.lookup(args[0]), args, t0)
}

// execCmd is exec of cmd, looked up from args[0] (nil: unknown).
func (c *conn) execCmd(cmd *command, args [][]byte, t0 time.Time) time.Time {
	s := c.s
	s.totalCommands.Add(1)
	var err error
	switch {
	case cmd == nil:
		err = unknownCommand(args)
	case cmd.arity > 0 && len(args) != cmd.arity, cmd.arity < 0 && len(args) < -cmd.arity:
		err = wrongArgs(cmd.name)
	case c.scope == scopeNone && !cmd.noAuth:
		err = replyError(msgNoAuth)
	case cmd.scope > c.scope:
		err = errorf("NOPERM this connection's token (scope %s) has no permissions to run the '%s' command", c.scope, cmd.name)
	default:
		c.lastCmd = cmd.name
		err = cmd.run(c, args)
	}
	if err != nil {
		msg, server := s.errorText(err)
		if server {
			s.cfg.Logger.Error("resp: command failed", "command", commandName(cmd), "err", err)
		}
		c.wr.errorLine(msg)
	}
	t1 := time.Now()
	s.metrics.observe(cmd, t1.Sub(t0), err != nil)
	return t1
}

// unknownCommand is Redis's reply to a command it does not know, byte for
// byte: the name clipped to 128 bytes, then the first arguments quoted,
// each clipped so that the list stays near 128 bytes.
func unknownCommand(args [][]byte) error {
	var list []byte
	for _, a := range args[1:] {
		if len(list) >= 128 {
			break
		}
		n := 128 - len(list)
		list = append(list, '\'')
		list = appendClipped(list, a, n)
		list = append(list, "' "...)
	}
	b := make([]byte, 0, 64+len(list))
	b = append(b, "ERR unknown command '"...)
	b = appendClipped(b, args[0], 128)
	b = append(b, "', with args beginning with: "...)
	b = append(b, list...)
	return replyError(b)
}

func appendClipped(b, s []byte, n int) []byte {
	if len(s) > n {
		s = s[:n]
	}
	return append(b, s...)
}
