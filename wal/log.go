package wal

// Log is a write-ahead log: numbered records in segment files under one
// directory. It is safe for concurrent use.
type Log struct {
}

// Open opens (creating if needed) the log in dir, checks every segment,
// cuts a torn tail off the last one and positions for appending.
// A damaged record in the middle of the log is an error wrapping ErrCorrupt
// that names the file and offset.
func Open(dir string, opts *Options) (*Log, error) {
	panic("wal: not implemented")
}

// Append writes payload as the next record and returns its sequence number
// once it is committed as the sync mode says. Sequence numbers start at 1 and
// have no gaps among committed records. On a write or fsync error the whole
// batch the record was part of is cut back off the file, every append in it
// gets an error wrapping ErrDiskFull or ErrIO, and later appends try again.
// payload is not retained after Append returns.
func (l *Log) Append(payload []byte) (uint64, error) {
	panic("wal: not implemented")
}

// Replay calls fn for every record with a sequence number greater than
// after, in order. An error from fn stops the replay and is returned.
func (l *Log) Replay(after uint64, fn func(seq uint64, payload []byte) error) error {
	panic("wal: not implemented")
}

// LastSeq is the sequence number of the last committed record (0 if none).
func (l *Log) LastSeq() uint64 {
	panic("wal: not implemented")
}

// Release removes every segment whose records all have sequence numbers
// at most upTo (a snapshot covers them). The segment being written is kept.
func (l *Log) Release(upTo uint64) error {
	panic("wal: not implemented")
}

// Size is the number of record bytes in the segments still on disk.
func (l *Log) Size() int64 {
	panic("wal: not implemented")
}

// Recovery says what Open found.
func (l *Log) Recovery() RecoveryInfo {
	panic("wal: not implemented")
}

// Close flushes, fsyncs and closes the log. Appends after Close fail with
// ErrClosed.
func (l *Log) Close() error {
	panic("wal: not implemented")
}
