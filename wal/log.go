package wal

import (
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
)

// Log is a write-ahead log: numbered records in segment files under one
// directory. It is safe for concurrent use.
type Log struct {
	dir      string
	opts     Options // resolved: every field set
	fs       FS
	log      *slog.Logger
	tab      *crc32.Table
	pipe     *filePipeline
	recovery RecoveryInfo
	reqPool  sync.Pool // of *request

	mu     sync.Mutex // guards the fields below
	queue  []*request // appends waiting for the writer
	closed bool
	broken error // set when a cut back failed: appends fail until reopened

	notify chan struct{} // wakes the writer; capacity 1
	done   chan struct{} // closed when the writer has stopped
	err    error         // the writer's error at Close; read after done

	releaseMu sync.Mutex // serialises Release
	segMu     sync.Mutex // guards segs and lastSeq updates
	segs      []segment  // on disk, oldest first; the last one is written
	lastSeq   atomic.Uint64

	w writer // owned by the writer goroutine
}

// request is one Append waiting for the writer.
type request struct {
	payload []byte
	seq     uint64
	err     error
	done    chan struct{} // capacity 1
}

// Open opens (creating if needed) the log in dir, checks every segment,
// cuts a torn tail off the last one and positions for appending.
// A damaged record in the middle of the log is an error wrapping ErrCorrupt
// that names the file and offset.
func Open(dir string, opts *Options) (*Log, error) {
	o, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	l := &Log{
		dir:    dir,
		opts:   o,
		fs:     o.FS,
		log:    o.Logger,
		tab:    crc32.MakeTable(crc32.Castagnoli),
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	l.reqPool.New = func() any { return &request{done: make(chan struct{}, 1)} }
	if err := l.fs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: create %s: %w", ErrIO, dir, err)
	}
	segs, err := listSegments(l.fs, dir)
	if err != nil {
		return nil, err
	}
	// Zeros only where every commit fsyncs (see doc.go).
	l.pipe = newFilePipeline(l.fs, dir, o.SegmentBytes, o.Sync == SyncAlways)
	if len(segs) == 0 {
		err = l.create()
	} else {
		err = l.recover(segs)
	}
	if err != nil {
		l.pipe.close()
		return nil, err
	}
	go l.run()
	return l, nil
}

// create starts an empty log with segment 1.
func (l *Log) create() error {
	l.w = writer{nextSeq: 1}
	if err := l.rollover(); err != nil {
		return err
	}
	l.recovery = RecoveryInfo{Segments: 1}
	return nil
}

// recover scans the segments found on disk and opens the last for writing.
func (l *Log) recover(segs []segment) error {
	info := RecoveryInfo{Segments: len(segs)}
	for i := range segs {
		if i > 0 && segs[i].firstSeq != segs[i-1].lastSeq()+1 {
			return corruptAt(segs[i].path, 0, fmt.Errorf("%w: segment starts at %d, want %d",
				errSequence, segs[i].firstSeq, segs[i-1].lastSeq()+1))
		}
		last := i == len(segs)-1
		cut, f, size, err := l.scanFile(&segs[i], last)
		if err != nil {
			return err
		}
		if cut > 0 {
			info.TornBytes, info.TornFile = cut, segs[i].path
		}
		info.Records += segs[i].records
		if last {
			if err := l.openActive(f, size, segs[i]); err != nil {
				_ = f.Close()
				return err
			}
		}
	}
	l.segs = segs
	if info.Records > 0 {
		info.FirstSeq, info.LastSeq = segs[0].firstSeq, l.w.nextSeq-1
	}
	l.recovery = info
	l.lastSeq.Store(l.w.nextSeq - 1)
	return nil
}

// scanFile opens seg and scans it. The last segment is returned open for
// writing, with its size; any other is closed.
func (l *Log) scanFile(seg *segment, last bool) (int64, File, int64, error) {
	flag := os.O_RDONLY
	if last {
		flag = os.O_RDWR
	}
	f, err := l.fs.OpenFile(seg.path, flag, 0)
	if err != nil {
		return 0, nil, 0, ioError("open", seg.path, 0, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return 0, nil, 0, ioError("stat", seg.path, 0, err)
	}
	cut, err := l.scanSegment(f, fi.Size(), seg, last)
	if err != nil || !last {
		_ = f.Close()
		return cut, nil, 0, err
	}
	return cut, f, fi.Size(), nil
}

// openActive makes f, holding seg, the segment appends go to. A segment
// shorter than SegmentBytes is preallocated up to it.
func (l *Log) openActive(f File, size int64, seg segment) error {
	capacity := max(size, l.opts.SegmentBytes)
	if size < capacity {
		if err := l.pipe.allocate(f, size, capacity); err != nil {
			return ioError("preallocate", seg.path, size, err)
		}
		if err := f.Sync(); err != nil {
			return ioError("fsync", seg.path, size, err)
		}
	}
	if _, err := f.Seek(seg.end, io.SeekStart); err != nil {
		return ioError("seek", seg.path, seg.end, err)
	}
	l.w = writer{f: f, path: seg.path, off: seg.end, capacity: capacity, nextSeq: seg.lastSeq() + 1}
	return nil
}

// Append writes payload as the next record and returns its sequence number
// once it is committed as the sync mode says. Sequence numbers start at 1 and
// have no gaps among committed records. On a write or fsync error the whole
// batch the record was part of is cut back off the file, every append in it
// gets an error wrapping ErrDiskFull or ErrIO, and later appends try again.
// payload is not retained after Append returns.
func (l *Log) Append(payload []byte) (uint64, error) {
	r := l.reqPool.Get().(*request)
	r.payload = payload
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		return 0, ErrClosed
	case l.broken != nil:
		err := l.broken
		l.mu.Unlock()
		return 0, err
	}
	l.queue = append(l.queue, r)
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default:
	}
	<-r.done
	seq, err := r.seq, r.err
	*r = request{done: r.done}
	l.reqPool.Put(r)
	return seq, err
}

// LastSeq is the sequence number of the last committed record (0 if none).
func (l *Log) LastSeq() uint64 { return l.lastSeq.Load() }

// Size is the number of record bytes in the segments still on disk.
func (l *Log) Size() int64 {
	l.segMu.Lock()
	defer l.segMu.Unlock()
	var n int64
	for _, s := range l.segs {
		n += s.end
	}
	return n
}

// Recovery says what Open found.
func (l *Log) Recovery() RecoveryInfo { return l.recovery }

// Close flushes, fsyncs and closes the log. Appends after Close fail with
// ErrClosed. A second Close returns ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closed = true
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default:
	}
	<-l.done
	l.pipe.close()
	return l.err
}

// isClosed reports whether Close has been called.
func (l *Log) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// setBroken makes every later append fail with err until the log is reopened.
func (l *Log) setBroken(err error) {
	l.mu.Lock()
	if l.broken == nil {
		l.broken = fmt.Errorf("%w: log refuses appends until reopened: %w", ErrIO, err)
	}
	l.mu.Unlock()
	l.log.Error("wal: appends stopped", "err", err)
}
