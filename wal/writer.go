package wal

import (
	"errors"
	"path/filepath"
	"runtime"
	"time"
)

// writer is the state owned by the one goroutine that writes the log.
type writer struct {
	f           File   // the active segment
	path        string // its path
	off         int64  // where the next record goes
	capacity    int64  // its preallocated size
	nextSeq     uint64 // sequence number of the next record
	buf         []byte // the batch being written
	spare       []*request
	dirty       bool // written since the last fsync
	needDirSync bool // the directory entry of f is not yet known durable
}

// run is the writer goroutine: it takes every queued append, commits the
// lot with one write and (SyncAlways) one fsync, and wakes their callers.
func (l *Log) run() {
	defer close(l.done)
	var tick <-chan time.Time
	if l.opts.Sync == SyncEverySecond {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		tick = t.C
	}
	for {
		batch, closed := l.take()
		if len(batch) > 0 {
			l.commit(batch)
			clear(batch)
			l.w.spare = batch[:0]
			select { // a busy writer still fsyncs once a second
			case <-tick:
				l.periodicSync()
			default:
			}
			// Let the appends just woken queue their next records before
			// the next batch is taken: bigger batches, fewer writes and fsyncs.
			runtime.Gosched()
			continue
		}
		if closed {
			l.err = l.finish()
			return
		}
		select {
		case <-l.notify:
		case <-tick:
			l.periodicSync()
		}
	}
}

// take swaps the queue for an empty one.
func (l *Log) take() ([]*request, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	batch := l.queue
	l.queue = l.w.spare
	l.w.spare = nil
	return batch, l.closed
}

// commit writes batch, rolling over to a new segment where the next record
// does not fit the active one.
func (l *Log) commit(batch []*request) {
	for len(batch) > 0 {
		if err := l.brokenErr(); err != nil {
			l.reply(batch, 0, err)
			return
		}
		n := l.fitting(batch)
		if n == 0 {
			if err := l.rollover(); err != nil {
				l.reply(batch, 0, err)
				return
			}
			continue
		}
		l.writeBatch(batch[:n])
		batch = batch[n:]
	}
}

// brokenErr is the error that stops appends, if any.
func (l *Log) brokenErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.broken
}

// fitting is how many requests from the front of batch fit in the active
// segment. An empty segment takes at least one record, growing if needed.
func (l *Log) fitting(batch []*request) int {
	off := l.w.off
	for i, r := range batch {
		off += frameSize(len(r.payload))
		if off > l.w.capacity {
			if i == 0 && l.w.off == 0 {
				return 1
			}
			return i
		}
	}
	return len(batch)
}

// writeBatch commits reqs to the active segment with one write and, in
// SyncAlways mode, one fsync. On failure the bytes are cut back and every
// request gets the error.
func (l *Log) writeBatch(reqs []*request) {
	start, first := l.w.off, l.w.nextSeq
	buf := l.w.buf[:0]
	for i, r := range reqs {
		buf = appendRecord(buf, l.tab, first+uint64(i), r.payload)
	}
	l.w.buf = buf
	if l.w.needDirSync {
		if err := l.fs.SyncDir(l.dir); err != nil {
			l.reply(reqs, 0, ioError("fsync dir", l.dir, 0, err))
			return
		}
		l.w.needDirSync = false
	}
	if _, err := l.w.f.Write(buf); err != nil {
		l.failBatch(reqs, start, ioError("write", l.w.path, start, err))
		return
	}
	if l.opts.Sync == SyncAlways {
		if err := l.sync(); err != nil {
			l.failBatch(reqs, start, ioError("fsync", l.w.path, start, err))
			return
		}
	} else {
		l.w.dirty = true
	}
	l.w.off += int64(len(buf))
	l.w.nextSeq += uint64(len(reqs))
	l.segMu.Lock()
	seg := &l.segs[len(l.segs)-1]
	seg.end = l.w.off
	seg.records += int64(len(reqs))
	l.lastSeq.Store(l.w.nextSeq - 1)
	l.segMu.Unlock()
	l.reply(reqs, first, nil)
}

// failBatch cuts the batch that started at start back off the active
// segment and fails its requests with err. If the cut itself fails, the
// log stops taking appends.
func (l *Log) failBatch(reqs []*request, start int64, err error) {
	if cerr := cutBack(l.w.f, start, l.w.capacity); cerr != nil {
		l.setBroken(ioError("cut back", l.w.path, start, cerr))
	}
	l.log.Warn("wal: batch failed", "file", l.w.path, "offset", start, "records", len(reqs), "err", err)
	l.reply(reqs, 0, err)
}

// reply wakes the callers of reqs: with consecutive sequence numbers from
// first, or with err.
func (l *Log) reply(reqs []*request, first uint64, err error) {
	for i, r := range reqs {
		if err == nil {
			r.seq = first + uint64(i)
		}
		r.err = err
		r.done <- struct{}{}
	}
}

// sync fsyncs the active segment and reports the duration.
func (l *Log) sync() error {
	t := time.Now()
	err := l.w.f.Sync()
	if l.opts.ObserveSync != nil {
		l.opts.ObserveSync(time.Since(t))
	}
	if err == nil {
		l.w.dirty = false
	}
	return err
}

// periodicSync is the SyncEverySecond fsync. Its records were already
// acknowledged, so a failure cannot be handed back: the log stops taking
// appends instead, since the kernel may have dropped the dirty pages.
func (l *Log) periodicSync() {
	if !l.w.dirty {
		return
	}
	if err := l.sync(); err != nil {
		l.setBroken(ioError("fsync", l.w.path, l.w.off, err))
	}
}

// rollover closes the active segment and makes the prepared file the new
// one, named after the next sequence number. The old segment is fsynced
// first in every mode, so that only the last segment can have a torn tail.
func (l *Log) rollover() error {
	if l.w.f != nil && l.w.dirty {
		if err := l.sync(); err != nil {
			err = ioError("fsync", l.w.path, l.w.off, err)
			l.setBroken(err)
			return err
		}
	}
	f, tmp, err := l.pipe.next()
	if err != nil {
		return err
	}
	path := filepath.Join(l.dir, segmentName(l.w.nextSeq))
	if err := l.fs.Rename(tmp, path); err != nil {
		_ = f.Close()
		_ = l.fs.Remove(tmp)
		return ioError("rename", tmp, 0, err)
	}
	if l.w.f != nil {
		if err := l.w.f.Close(); err != nil {
			l.log.Warn("wal: close segment", "file", l.w.path, "err", err)
		}
	}
	l.w.f, l.w.path, l.w.off, l.w.capacity, l.w.dirty = f, path, 0, l.opts.SegmentBytes, false
	l.segMu.Lock()
	l.segs = append(l.segs, segment{path: path, firstSeq: l.w.nextSeq})
	l.segMu.Unlock()
	l.w.needDirSync = true
	if err := l.fs.SyncDir(l.dir); err != nil {
		return ioError("fsync dir", l.dir, 0, err)
	}
	l.w.needDirSync = false
	return nil
}

// finish fsyncs and closes the active segment when the log closes.
func (l *Log) finish() error {
	var errs []error
	if l.w.needDirSync {
		if err := l.fs.SyncDir(l.dir); err != nil {
			errs = append(errs, ioError("fsync dir", l.dir, 0, err))
		}
	}
	if err := l.sync(); err != nil {
		errs = append(errs, ioError("fsync", l.w.path, l.w.off, err))
	}
	if err := l.w.f.Close(); err != nil {
		errs = append(errs, ioError("close", l.w.path, l.w.off, err))
	}
	return errors.Join(errs...)
}
