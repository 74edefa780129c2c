package wal

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// preparedFile is an empty, preallocated and fsynced segment file waiting
// under a temporary name, or the error met while making one.
type preparedFile struct {
	f    File
	path string
	err  error
}

// filePipeline prepares the next segment file in the background so that a
// rollover only renames a file that is already allocated.
type filePipeline struct {
	fs    FS
	dir   string
	size  int64
	zeros bool // preallocate by writing zeros, not reserve
	filec chan preparedFile
	want  chan struct{} // a caller of next asks for a fresh attempt
	stop  chan struct{}
	wg    sync.WaitGroup
}

func newFilePipeline(fs FS, dir string, size int64, zeros bool) *filePipeline {
	p := &filePipeline{
		fs:    fs,
		dir:   dir,
		size:  size,
		zeros: zeros,
		filec: make(chan preparedFile),
		want:  make(chan struct{}),
		stop:  make(chan struct{}),
	}
	p.wg.Add(1)
	go p.run()
	return p
}

// next returns the prepared file, waiting for it if needed. An error it
// returns was met after the call began, never one left from earlier.
func (p *filePipeline) next() (File, string, error) {
	var pf preparedFile
	select {
	case pf = <-p.filec:
	case p.want <- struct{}{}:
		pf = <-p.filec
	}
	return pf.f, pf.path, pf.err
}

// close stops the pipeline and removes a file it prepared and nobody took.
func (p *filePipeline) close() {
	close(p.stop)
	p.wg.Wait()
}

// run keeps one prepared file ready. After a failure (a full disk, say) it
// waits for a caller of next and tries again for it, so that nobody gets
// an error from a moment ago.
func (p *filePipeline) run() {
	defer p.wg.Done()
	for count := 0; ; count++ {
		pf := p.prepare(count)
		if pf.err != nil {
			select {
			case <-p.want:
			case <-p.stop:
				return
			}
			count++
			pf = p.prepare(count)
		}
		select {
		case p.filec <- pf:
		case <-p.stop:
			if pf.err == nil {
				_ = pf.f.Close()
				_ = p.fs.Remove(pf.path)
			}
			return
		}
	}
}

// allocate preallocates [from, to) of f the way the log's sync mode wants:
// zeros for a log that fsyncs every commit, a reservation otherwise (see
// doc.go). The active segment grown at open goes through it too.
func (p *filePipeline) allocate(f File, from, to int64) error {
	if p.zeros {
		return preallocate(f, from, to)
	}
	return reserve(f, from, to)
}

// prepare makes one preallocated file. Each gets its own name, so a file
// handed out is never touched by the next one being made.
func (p *filePipeline) prepare(count int) preparedFile {
	path := filepath.Join(p.dir, fmt.Sprintf("%d%s", count, tmpExt))
	f, err := p.fs.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o644)
	if err != nil {
		return preparedFile{err: ioError("create", path, 0, err)}
	}
	fail := func(op string, err error) preparedFile {
		_ = f.Close()
		_ = p.fs.Remove(path)
		return preparedFile{err: ioError(op, path, 0, err)}
	}
	if err := p.allocate(f, 0, p.size); err != nil {
		return fail("preallocate", err)
	}
	if err := f.Sync(); err != nil {
		return fail("fsync", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail("seek", err)
	}
	return preparedFile{f: f, path: path}
}
