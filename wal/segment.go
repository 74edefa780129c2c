package wal

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const (
	segmentExt = ".wal" // a segment file: %016x.wal, the first sequence number in it
	tmpExt     = ".tmp" // a file being preallocated by the file pipeline
)

// segment is one segment file of the log.
type segment struct {
	path     string
	firstSeq uint64 // sequence number of its first record (from the name)
	end      int64  // offset just past its last record: its record bytes
	records  int64  // records in it
}

// lastSeq is the sequence number of the segment's last record, or
// firstSeq-1 when it has none.
func (s segment) lastSeq() uint64 { return s.firstSeq + uint64(s.records) - 1 }

// segmentName is the file name of the segment whose first record is seq.
func segmentName(seq uint64) string { return fmt.Sprintf("%016x%s", seq, segmentExt) }

// parseSegmentName reads the first sequence number from a segment file name.
func parseSegmentName(name string) (uint64, bool) {
	hex, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(hex) != 16 {
		return 0, false
	}
	seq, err := strconv.ParseUint(hex, 16, 64)
	return seq, err == nil && seq > 0
}

// listSegments returns the log's segments in dir, oldest first, and removes
// files the file pipeline left behind.
func listSegments(fs FS, dir string) ([]segment, error) {
	entries, err := fs.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: read dir %s: %w", ErrIO, dir, err)
	}
	var segs []segment
	for _, e := range entries {
		name := e.Name()
		if isPipelineFile(name) {
			if err := fs.Remove(filepath.Join(dir, name)); err != nil {
				return nil, fmt.Errorf("%w: remove %s: %w", ErrIO, name, err)
			}
			continue
		}
		if seq, ok := parseSegmentName(name); ok && e.Type().IsRegular() {
			segs = append(segs, segment{path: filepath.Join(dir, name), firstSeq: seq})
		}
	}
	slices.SortFunc(segs, func(a, b segment) int {
		switch {
		case a.firstSeq < b.firstSeq:
			return -1
		case a.firstSeq > b.firstSeq:
			return 1
		}
		return 0
	})
	return segs, nil
}

// isPipelineFile reports whether name is a file the file pipeline makes:
// decimal digits and tmpExt.
func isPipelineFile(name string) bool {
	digits, ok := strings.CutSuffix(name, tmpExt)
	if !ok || digits == "" {
		return false
	}
	_, err := strconv.ParseUint(digits, 10, 64)
	return err == nil
}
