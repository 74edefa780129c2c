package resp

import (
	"errors"
	"io"
	"math"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/disperse/disperse/cluster"
	"github.com/disperse/disperse/internal/sockio"
)

// An event loop serves the server's plain TCP connections from one
// goroutine, as Redis serves all of its clients: it waits in epoll for the
// connections that have sent something, reads each once, runs the reads
// and connection commands it finds at once (GET, MGET, PING, HELLO, AUTH,
// CLIENT ...), gathers the plain SETs of all of them into one store batch
// (one log append and, under --fsync always, one commit for all), answers,
// and writes each connection's replies with one system call. A goroutine per connection costs two parks and wake-ups per request
// (the poller's, then the commit's) and a read that finds nothing; on a
// small machine that is a large part of a small request's CPU.
//
// Every other write (INCR, DEL, SET with options, MSET ...) waits on the
// log by itself, and KEYS, SCAN and RANDOMKEY walk the keyspace; the loop runs none of
// them, which would stall every client for it. The first such command
// moves its connection to the goroutine path (conn.serve) for the rest of
// its life, with what it has read and not yet answered, where those
// writes of many clients share the log's commits as before. So does a
// connection whose replies the socket does not take at once (a slow
// reader, whose remaining bytes the goroutine sends under the stall
// timeout), and every connection at shutdown. A worker goroutine per such
// command, with the connection back in the loop afterwards, was measured
// and rejected: INCR fell to half the goroutine path's rate. A TLS
// connection never enters the loop.
//
// The loop owns its descriptors: a connection's socket is duplicated and
// the net.Conn closed, so that the runtime's poller no longer watches it,
// and a hand-off makes a new net.Conn of the descriptor.

// Bounds of one round's batch of SETs.
const (
	loopMaxBatch      = 1024
	loopMaxBatchBytes = 4 << 20
)

// loopTick is how often the loop checks its connections' idle and stall
// timeouts; they are enforced to within a tick.
const loopTick = time.Second

// errWouldBlock is a read or write of a loop's socket that found it not
// ready.
var errWouldBlock = errors.New("resp: socket not ready")

// loopConn is a connection's state in the loop; only the loop touches it.
type loopConn struct {
	fd     int
	queued bool      // in this round's or the next round's list
	active time.Time // last read that brought bytes

	sets []setOutcome // the SETs taken this round, in order
	perr error        // a framing error, answered after this round's SETs

	close   bool // end the connection once its replies are sent
	handoff bool // give it to a goroutine once its replies are sent
	more    bool // it has requests left for the next round
}

// setOutcome is a SET of a round: its index in the batch, or err when it
// was refused before it.
type setOutcome struct {
	batch int
	err   error
}

type loop struct {
	s      *Server
	epfd   int
	wakefd int

	// added are connections given to the loop and not yet in conns.
	mu    sync.Mutex
	added []*conn

	conns  map[int64]*conn // by id
	events []unix.EpollEvent
	ready  []*conn
	next   []*conn
	batch  []cluster.Write
	keys   map[string]struct{}
	bytes  int // of the batch's values
}

// fdIO reads and writes a loop's non-blocking socket.
type fdIO int

func (f fdIO) Read(p []byte) (int, error) {
	for {
		n, errno := sockio.Read(int(f), p)
		switch errno {
		case 0:
			if n == 0 {
				return 0, io.EOF
			}
			return n, nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, errWouldBlock
		}
		return 0, os.NewSyscallError("read", errno)
	}
}

// Write is never called while the loop holds the connection (its writer
// never flushes by itself then); it is there for the writer's type.
func (f fdIO) Write(p []byte) (int, error) { return 0, errWouldBlock }

// toLoop gives a plain TCP connection to the server's event loop, starting
// the loop with the first; false: a goroutine is to serve it. Called with
// s.mu held.
func (s *Server) toLoop(c *conn) bool {
	if s.noLoop || s.cfg.goroutines {
		return false
	}
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	if s.loop == nil {
		l, err := newLoop(s)
		if err != nil {
			s.noLoop = true
			s.cfg.Logger.Warn("resp: no event loop; a goroutine serves each connection", "err", err)
			return false
		}
		s.loop = l
		s.wg.Add(1)
		go l.run()
	}
	fd := -1
	_ = rc.Control(func(raw uintptr) { fd, _ = unix.FcntlInt(raw, unix.F_DUPFD_CLOEXEC, 0) })
	if fd < 0 {
		return false
	}
	c.nc.Close() // the duplicate keeps the socket open; c.nc keeps the addresses
	c.rd.src, c.wr.dst = fdIO(fd), fdIO(fd)
	c.wr.flushAt, c.wr.beforeWrite = math.MaxInt, nil
	c.lp = loopConn{fd: fd, active: time.Now()}
	if err := s.loop.add(c); err != nil {
		s.cfg.Logger.Warn("resp: event loop refused a connection", "err", err)
		if nc, err := fdConn(fd); err == nil {
			c.attach(nc)
		}
		return false
	}
	s.looped.Add(1)
	return true
}

func newLoop(s *Server) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN} // id 0: the wake-up
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	return &loop{
		s: s, epfd: epfd, wakefd: wakefd,
		conns:  map[int64]*conn{},
		events: make([]unix.EpollEvent, 256),
		keys:   map[string]struct{}{},
	}, nil
}

// add watches c; the loop takes it up at its next wake-up.
func (l *loop) add(c *conn) error {
	l.mu.Lock()
	l.added = append(l.added, c)
	l.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(uint32(c.id)), Pad: int32(uint32(c.id >> 32))}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, c.lp.fd, &ev); err != nil {
		l.mu.Lock()
		if i := len(l.added) - 1; i >= 0 && l.added[i] == c {
			l.added = l.added[:i]
		}
		l.mu.Unlock()
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// wake makes the loop look at the server's state (shutdown).
func (l *loop) wake() {
	one := [8]byte{1}
	_, _ = unix.Write(l.wakefd, one[:])
}

func (l *loop) run() {
	defer l.s.wg.Done()
	defer unix.Close(l.wakefd)
	defer unix.Close(l.epfd)
	tick := time.Now()
	for {
		wait := int(loopTick / time.Millisecond)
		if len(l.next) > 0 {
			wait = 0
		}
		n, err := unix.EpollWait(l.epfd, l.events, wait)
		if err != nil && err != unix.EINTR {
			l.s.cfg.Logger.Error("resp: event loop failed; goroutines serve its connections", "err", err)
			l.s.mu.Lock() // no connection is added after this
			l.s.loop, l.s.noLoop = nil, true
			l.s.mu.Unlock()
			l.takeAdded()
			l.stop()
			return
		}
		// closing is read before the new connections are taken, so that
		// every connection accepted before shutdown is among them.
		closing := l.s.closing.Load()
		l.takeAdded()
		if closing {
			l.stop()
			return
		}
		ready := append(l.ready[:0], l.next...)
		clear(l.next)
		l.next = l.next[:0]
		for _, ev := range l.events[:max(n, 0)] {
			id := int64(uint32(ev.Fd)) | int64(uint32(ev.Pad))<<32
			if id == 0 {
				var b [8]byte
				_, _ = unix.Read(l.wakefd, b[:])
				continue
			}
			if c := l.conns[id]; c != nil && !c.lp.queued {
				c.lp.queued = true
				ready = append(ready, c)
			}
		}
		l.round(ready)
		clear(ready)
		l.ready = ready[:0]
		if now := time.Now(); now.Sub(tick) >= loopTick {
			l.sweep(now)
			tick = now
		}
	}
}

func (l *loop) takeAdded() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.added {
		l.conns[c.id] = c
	}
	clear(l.added)
	l.added = l.added[:0]
}

// round serves the connections that have something to do: reads, runs
// and answers, then sends the replies. Connections with no SET in the
// batch are answered before its commit, so that reads do not wait for it.
func (l *loop) round(ready []*conn) {
	now := time.Now()
	for _, c := range ready {
		c.lp.queued = false
		l.take(c, now)
	}
	if len(l.batch) == 0 {
		for _, c := range ready {
			l.answer(c, nil, 0)
		}
		return
	}
	for _, c := range ready {
		if len(c.lp.sets) == 0 {
			l.answer(c, nil, 0)
		}
	}
	_, errs := l.s.store.PutBatch(l.s.ctx, l.batch)
	took := time.Since(now)
	for _, c := range ready {
		if len(c.lp.sets) > 0 {
			l.answer(c, errs, took)
		}
	}
	clear(l.batch)
	l.batch = l.batch[:0]
	clear(l.keys)
	l.bytes = 0
}

// answer gives c the replies of its SETs (errs: the batch's outcomes,
// took: its time) and of a framing error, then ends c's round.
func (l *loop) answer(c *conn, errs []error, took time.Duration) {
	for _, o := range c.lp.sets {
		err := o.err
		if o.batch >= 0 {
			err = errs[o.batch]
		}
		c.answerSet(err, took)
	}
	clear(c.lp.sets)
	c.lp.sets = c.lp.sets[:0]
	if c.lp.perr != nil {
		c.protocolError(c.lp.perr)
		c.lp.perr, c.lp.close = nil, true
	}
	l.finishRound(c)
}

// take reads from c once, if it has no complete request buffered, and
// takes its requests: GETs and PINGs run at once, plain SETs join the
// batch; anything else, a GET after a SET of this round, and a SET that
// the batch cannot take (its key is already in it, or it is full) is held
// for later.
func (l *loop) take(c *conn, now time.Time) {
	lp := &c.lp
	s := l.s
	read := false
	for {
		args, err := c.next()
		if err == nil && args == nil {
			// The read buffer may only move while no value of this
			// connection sits in the batch.
			if read || len(lp.sets) > 0 {
				return
			}
			read = true
			err = c.rd.fill()
			switch {
			case err == nil:
				lp.active = now
				continue
			case errors.Is(err, errWouldBlock):
				return
			case isProtocol(err):
			default:
				if !errors.Is(err, io.EOF) {
					s.cfg.Logger.Debug("resp: connection ends", "remote", c.nc.RemoteAddr().String(), "err", err)
				}
				lp.close = true
				return
			}
		}
		if err != nil {
			lp.perr = err
			return
		}
		cmd := s.lookup(args[0])
		switch {
		case cmd == s.setCmd && c.plainSet(args):
			w, err := c.setWrite(args)
			if err != nil {
				lp.sets = append(lp.sets, setOutcome{batch: -1, err: err})
				break
			}
			_, dup := l.keys[w.Key]
			if dup || len(l.batch) >= loopMaxBatch || len(l.batch) > 0 && l.bytes+len(w.Value) > loopMaxBatchBytes {
				c.hold(args)
				lp.more = true
				return
			}
			l.keys[w.Key] = struct{}{}
			l.bytes += len(w.Value)
			lp.sets = append(lp.sets, setOutcome{batch: len(l.batch)})
			l.batch = append(l.batch, w)
		case len(lp.sets) == 0 && (cmd == nil || cmd.inline):
			c.execCmd(cmd, args, now)
			if c.quit {
				lp.close = true
				return
			}
		default: // after this round's SETs, or not the loop's to run
			c.hold(args)
			if len(lp.sets) == 0 {
				lp.handoff = true
			} else {
				lp.more = true
			}
			return
		}
		if len(c.wr.buf) >= s.cfg.WriteBufferBytes {
			lp.more = true
			return
		}
	}
}

// finishRound sends c's replies, then ends it, hands it off or lines it
// up for the next round as its round decided.
func (l *loop) finishRound(c *conn) {
	lp := &c.lp
	sent, err := l.send(c)
	switch {
	case err != nil:
		l.s.cfg.Logger.Debug("resp: connection ends", "remote", c.nc.RemoteAddr().String(), "err", err)
		l.close(c)
	case lp.close && sent:
		l.close(c)
	case lp.close:
		l.handoff(c, true)
	case !sent || lp.handoff:
		l.handoff(c, false)
	case lp.more:
		lp.more, lp.queued = false, true
		l.next = append(l.next, c)
	}
}

// send writes c's replies as far as the socket takes them; sent is false
// when some are left.
func (l *loop) send(c *conn) (sent bool, err error) {
	b := c.wr.buf
	n := 0
	for n < len(b) {
		k, errno := sockio.Write(c.lp.fd, b[n:])
		switch {
		case errno == 0 && k > 0:
			n += k
		case errno == syscall.EINTR:
		case errno == syscall.EAGAIN:
			c.wr.buf = b[:copy(b, b[n:])]
			return false, nil
		case errno == 0:
			return false, os.NewSyscallError("write", syscall.EIO)
		default:
			return false, os.NewSyscallError("write", errno)
		}
	}
	c.wr.buf = b[:0]
	if size := l.s.cfg.WriteBufferBytes + 512; cap(b) > 4*size {
		c.wr.buf = make([]byte, 0, size) // a large reply's buffer goes
	}
	return true, nil
}

// sweep ends the connections idle past IdleTimeout, or stalled in the
// middle of a request past StallTimeout, as the goroutine path's read
// deadlines do.
func (l *loop) sweep(now time.Time) {
	cfg := l.s.cfg
	for _, c := range l.conns {
		if c.lp.queued {
			continue
		}
		quiet := now.Sub(c.lp.active)
		if c.rd.partial() && quiet > cfg.StallTimeout || !c.rd.partial() && cfg.IdleTimeout > 0 && quiet > cfg.IdleTimeout {
			l.close(c)
		}
	}
}

// stop hands the connections with requests or replies under way to
// goroutines, which finish them as shutdown asks, and ends the rest.
func (l *loop) stop() {
	for _, c := range l.conns {
		if c.held != nil || c.rd.buffered() || len(c.wr.buf) > 0 {
			l.handoff(c, false)
		} else {
			l.close(c)
		}
	}
}

// forget stops watching c.
func (l *loop) forget(c *conn) {
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.lp.fd, nil)
	delete(l.conns, c.id)
	l.s.looped.Add(-1)
}

func (l *loop) close(c *conn) {
	l.forget(c)
	unix.Close(c.lp.fd)
	l.s.finish(c)
}

// handoff gives c to a goroutine of its own for the rest of its life: one
// that serves it (conn.serve), or, when last, one that only sends the
// replies left and closes it.
func (l *loop) handoff(c *conn, last bool) {
	l.forget(c)
	nc, err := fdConn(c.lp.fd)
	if err != nil {
		l.s.cfg.Logger.Warn("resp: a connection could not leave the event loop; closing it", "err", err)
		l.s.finish(c)
		return
	}
	l.s.mu.Lock() // Shutdown reads c.nc under it
	c.attach(nc)
	l.s.mu.Unlock()
	go func() {
		if last {
			_ = c.wr.flush()
			nc.Close()
		} else {
			c.serve()
		}
		l.s.finish(c)
	}()
}

// fdConn makes a net.Conn of a socket descriptor, which it takes over
// (closed, even on failure).
func fdConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "resp")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	return sockio.Wrap(nc), nil
}
