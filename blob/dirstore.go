package blob

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/disperse/disperse/internal/fsutil"
)

// DirStore is the ShardStore of a node: one file per shard in one
// directory (--data-dir/blobs), in the format of doc.go.
type DirStore struct {
	dir string
	mu  sync.Mutex // serializes in-place block rewrites
	// writeback starts the writeback of a range of a shard file being
	// written (fsutil.StartWriteback; a seam for tests).
	writeback func(f *os.File, off, n int64)
}

// NewDirStore opens (creating it if needed) the shard directory dir.
func NewDirStore(dir string) (*DirStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("blob: shard directory: %w", err)
	}
	return &DirStore{dir: dir, writeback: fsutil.StartWriteback}, nil
}

// Dir is the directory holding the shard files.
func (d *DirStore) Dir() string { return d.dir }

// Path is the file name of a committed shard. Ids longer than 100
// characters are replaced by "~" and a hash (the header keeps the id).
func (d *DirStore) Path(ref ShardRef) string {
	id := ref.ID
	if len(id) > 100 {
		sum := sha256.Sum256([]byte(id))
		id = "~" + hex.EncodeToString(sum[:16])
	}
	return filepath.Join(d.dir, fmt.Sprintf("%s.%016x.%d.shard", id, ref.Gen, ref.Index))
}

// Create starts a new shard under a temporary name.
func (d *DirStore) Create(ref ShardRef, blockSize int) (ShardWriter, error) {
	if blockSize < 1 || blockSize > maxBlockSize {
		return nil, fmt.Errorf("%w: block size %d", ErrBadParams, blockSize)
	}
	final := d.Path(ref)
	f, err := os.CreateTemp(d.dir, filepath.Base(final)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("blob: create shard %s: %w", final, diskError(err))
	}
	w := &fileShardWriter{d: d, f: f, final: final, blockSize: blockSize}
	w.out = writebackFile{f: f, start: d.writeback}
	w.bw = bufio.NewWriterSize(&w.out, 64<<10)
	if _, err := w.bw.Write(encodeFileHeader(fileHeader{Ref: ref, BlockSize: blockSize})); err != nil {
		w.Abort()
		return nil, fmt.Errorf("blob: write shard header %s: %w", final, diskError(err))
	}
	return w, nil
}

type fileShardWriter struct {
	d         *DirStore
	f         *os.File
	out       writebackFile
	bw        *bufio.Writer
	final     string
	blockSize int
	n         uint64 // blocks written
	short     bool   // a short (last) block was written
	hdr       [blockHeaderLen]byte
}

// writebackBytes is how much of a shard file is written before the kernel
// is asked to start writing it back. Without it the page cache holds a
// whole shard (tens of MiB) until the commit's fsync, which then waits for
// all of it while the stream sits idle; with it the disk writes the shard
// as it arrives and the fsync waits for the last few MiB.
const writebackBytes = 8 << 20

// writebackFile writes to a shard file and starts the writeback of every
// writebackBytes written.
type writebackFile struct {
	f            *os.File
	start        func(f *os.File, off, n int64)
	off, started int64
}

func (o *writebackFile) Write(p []byte) (int, error) {
	n, err := o.f.Write(p)
	o.off += int64(n)
	if o.off-o.started >= writebackBytes {
		o.start(o.f, o.started, o.off-o.started)
		o.started = o.off
	}
	return n, err
}

func (w *fileShardWriter) WriteBlock(p []byte) error {
	if len(p) > w.blockSize || w.short {
		return fmt.Errorf("%w: block %d of %d bytes in shard of %d-byte blocks", ErrBadParams, w.n, len(p), w.blockSize)
	}
	w.short = len(p) < w.blockSize
	putBlockHeader(w.hdr[:], w.n, p)
	if _, err := w.bw.Write(w.hdr[:]); err != nil {
		return fmt.Errorf("blob: write %s: %w", w.f.Name(), diskError(err))
	}
	if _, err := w.bw.Write(p); err != nil {
		return fmt.Errorf("blob: write %s: %w", w.f.Name(), diskError(err))
	}
	w.n++
	return nil
}

func (w *fileShardWriter) Commit() error {
	err := w.bw.Flush()
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(w.f.Name(), w.final)
	}
	if err == nil {
		err = fsutil.SyncDir(w.d.dir)
	}
	if err != nil {
		_ = os.Remove(w.f.Name())
		return fmt.Errorf("blob: commit shard %s: %w", w.final, diskError(err))
	}
	return nil
}

func (w *fileShardWriter) Abort() {
	_ = w.f.Close()
	_ = os.Remove(w.f.Name())
}

// shardFile is an open shard file with its decoded header.
type shardFile struct {
	f       *os.File
	hdr     fileHeader
	hdrLen  int64
	size    int64
	nBlocks int
}

func (d *DirStore) openFile(ref ShardRef, flag int) (*shardFile, error) {
	path := d.Path(ref)
	f, err := os.OpenFile(path, flag, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: shard %s", ErrNoShard, path)
	}
	if err != nil {
		return nil, fmt.Errorf("blob: open shard %s: %w", path, err)
	}
	sf := &shardFile{f: f}
	h, n, err := decodeFileHeader(io.NewSectionReader(f, 0, 1<<20))
	if err == nil && h.Ref != ref {
		err = fmt.Errorf("%w: file header names %+v", ErrCorrupt, h.Ref)
	}
	var st os.FileInfo
	if err == nil {
		st, err = f.Stat()
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("blob: shard %s: %w", path, err)
	}
	sf.hdr, sf.hdrLen, sf.size = h, int64(n), st.Size()
	frame := int64(blockHeaderLen + h.BlockSize)
	sf.nBlocks = int((sf.size - sf.hdrLen + frame - 1) / frame)
	return sf, nil
}

func (sf *shardFile) offset(b int) int64 {
	return min(sf.size, sf.hdrLen+int64(b)*int64(blockHeaderLen+sf.hdr.BlockSize))
}

// OpenBlocks streams the framed blocks [from, to) as stored.
func (d *DirStore) OpenBlocks(ref ShardRef, from, to int) (io.ReadCloser, error) {
	sf, err := d.openFile(ref, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	if to < 0 || to > sf.nBlocks {
		to = sf.nBlocks
	}
	if from < 0 || from > to {
		_ = sf.f.Close()
		return nil, fmt.Errorf("%w: blocks [%d, %d) of shard %s with %d", ErrBadParams, from, to, d.Path(ref), sf.nBlocks)
	}
	start, end := sf.offset(from), sf.offset(to)
	return blockRange{io.NewSectionReader(sf.f, start, end-start), sf.f}, nil
}

// blockRange reads blocks of an open shard file; Size is its length.
type blockRange struct {
	*io.SectionReader
	f *os.File
}

func (b blockRange) Close() error { return b.f.Close() }

// ReadBlock reads and verifies block b of a shard. A block failing its
// checksum is an ErrCorrupt error naming the shard file and the block.
func (d *DirStore) ReadBlock(ref ShardRef, b int) ([]byte, error) {
	sf, err := d.openFile(ref, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer sf.f.Close()
	if b < 0 || b >= sf.nBlocks {
		return nil, fmt.Errorf("%w: block %d of shard %s with %d blocks", ErrBadParams, b, d.Path(ref), sf.nBlocks)
	}
	start, end := sf.offset(b), sf.offset(b+1)
	br := blockReader{r: io.NewSectionReader(sf.f, start, end-start), name: d.Path(ref), next: uint64(b)}
	p, err := br.read(int(end - start - blockHeaderLen))
	if err != nil {
		return nil, err
	}
	return bytes.Clone(p), nil
}

// RewriteBlock replaces block b in place and fsyncs. The block being
// replaced is one that failed its checksum: a torn rewrite leaves it failing
// its checksum again, never silently wrong.
func (d *DirStore) RewriteBlock(ref ShardRef, b int, p []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	sf, err := d.openFile(ref, os.O_RDWR)
	if err != nil {
		return err
	}
	defer sf.f.Close()
	if b < 0 || b >= sf.nBlocks {
		return fmt.Errorf("%w: block %d of shard %s with %d blocks", ErrBadParams, b, d.Path(ref), sf.nBlocks)
	}
	if want := sf.offset(b+1) - sf.offset(b) - blockHeaderLen; int64(len(p)) != want {
		return fmt.Errorf("%w: block %d of %d bytes, want %d", ErrBadParams, b, len(p), want)
	}
	frame := make([]byte, blockHeaderLen+len(p))
	putBlockHeader(frame, uint64(b), p)
	copy(frame[blockHeaderLen:], p)
	if _, err := sf.f.WriteAt(frame, sf.offset(b)); err != nil {
		return fmt.Errorf("blob: rewrite block %d of %s: %w", b, d.Path(ref), diskError(err))
	}
	if err := sf.f.Sync(); err != nil {
		return fmt.Errorf("blob: rewrite block %d of %s: %w", b, d.Path(ref), diskError(err))
	}
	return nil
}

// Remove deletes a committed shard; an absent one is no error.
func (d *DirStore) Remove(ref ShardRef) error {
	err := os.Remove(d.Path(ref))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob: remove shard: %w", err)
	}
	return nil
}

// Stat describes a committed shard.
func (d *DirStore) Stat(ref ShardRef) (ShardInfo, error) {
	st, err := os.Stat(d.Path(ref))
	if errors.Is(err, fs.ErrNotExist) {
		return ShardInfo{}, fmt.Errorf("%w: shard %s", ErrNoShard, d.Path(ref))
	}
	if err != nil {
		return ShardInfo{}, fmt.Errorf("blob: stat shard: %w", err)
	}
	return ShardInfo{Ref: ref, ModTime: st.ModTime(), Size: st.Size()}, nil
}

// List lists the committed shards and the temporary files (Temp). The ref
// comes from the file name, or from the file's header when the name holds
// a hash of a long id (or cannot be parsed); it is zero when neither can
// be read.
func (d *DirStore) List() ([]ShardInfo, error) {
	ents, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, fmt.Errorf("blob: list shards: %w", err)
	}
	var out []ShardInfo
	for _, e := range ents {
		name := e.Name()
		temp := strings.HasSuffix(name, ".tmp")
		if !temp && !strings.HasSuffix(name, ".shard") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		si := ShardInfo{ModTime: info.ModTime(), Temp: temp, Size: info.Size()}
		if ref, ok := parseShardName(name); ok {
			si.Ref = ref
		} else if f, err := os.Open(filepath.Join(d.dir, name)); err == nil {
			if h, _, err := decodeFileHeader(f); err == nil {
				si.Ref = h.Ref
			}
			_ = f.Close()
		}
		out = append(out, si)
	}
	return out, nil
}

// parseShardName reads the ref from a shard file name,
// "{id}.{generation}.{index}.shard" with an optional ".{random}.tmp" after
// it; ok is false for a hashed long id or a name it cannot read.
func parseShardName(name string) (ShardRef, bool) {
	if rest, ok := strings.CutSuffix(name, ".tmp"); ok {
		i := strings.LastIndexByte(rest, '.')
		if i < 0 {
			return ShardRef{}, false
		}
		name = rest[:i]
	}
	rest, ok := strings.CutSuffix(name, ".shard")
	if !ok {
		return ShardRef{}, false
	}
	i := strings.LastIndexByte(rest, '.')
	if i < 0 {
		return ShardRef{}, false
	}
	idx, err := strconv.Atoi(rest[i+1:])
	rest = rest[:i]
	j := strings.LastIndexByte(rest, '.')
	if err != nil || j < 0 || len(rest)-j-1 != 16 || idx < 0 || idx > 255 {
		return ShardRef{}, false
	}
	gen, err := strconv.ParseUint(rest[j+1:], 16, 64)
	id := rest[:j]
	if err != nil || strings.HasPrefix(id, "~") || validateID(id) != nil {
		return ShardRef{}, false
	}
	return ShardRef{ID: id, Gen: gen, Index: idx}, true
}

// RemoveStale deletes temporary files not written to since before: the
// remains of uploads that were cut off.
func (d *DirStore) RemoveStale(before time.Time) (int, error) {
	ents, err := os.ReadDir(d.dir)
	if err != nil {
		return 0, fmt.Errorf("blob: list shards: %w", err)
	}
	n := 0
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		if info, err := e.Info(); err == nil && info.ModTime().Before(before) {
			if os.Remove(filepath.Join(d.dir, e.Name())) == nil {
				n++
			}
		}
	}
	return n, nil
}
