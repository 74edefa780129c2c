// Package wal is the write-ahead log of Disperse: numbered records in
// segment files, committed in groups, replayed at start-up, cut back to the
// last whole record after a crash and dropped once a snapshot covers them.
// It knows bytes and sequence numbers, nothing about keys.
//
// # Files
//
// A log is a directory of segment files named %016x.wal after the sequence
// number of their first record (0000000000000001.wal, 00000000000004d3.wal,
// ...). Records are written back to back from offset 0. Every segment is
// preallocated to Options.SegmentBytes (64 MiB by default) when it is made,
// so that an fdatasync after an append flushes data only: the file size and
// block map do not change. Bytes past the last record read as zeros, and a
// zero length field is the end of the data. A record that does not fit the
// rest of a segment starts a new one; a record larger than a whole segment
// gets a segment of its own, grown past SegmentBytes.
//
// The next segment is made in the background (the file pipeline) under a
// temporary name, N.tmp, preallocated and fsynced, so that a rollover only
// renames it and fsyncs the directory. Open removes stray .tmp files.
//
// Preallocation writes zeros rather than calling fallocate(2). On ext4,
// fallocate leaves unwritten extents, and the first write into each block
// must convert its extent: a metadata change that makes every fdatasync
// commit the journal. After zeros are written the blocks are ordinary data,
// and a group commit of a few KiB costs one data flush, with no journal
// commit to queue behind. Measured with BenchmarkPreallocFsync on the
// development machine (ext4 on a virtio disk, 2 vCPUs): an 8 KiB write plus
// fdatasync took 0.3 ms in a zero-filled file against 0.45-0.7 ms after
// fallocate when the machine was quiet, and 0.53-0.60 ms against 1.5-4.5 ms
// when other processes were busy with the disk; with 128-byte writes the
// two were within noise of each other. The price is writing each segment
// twice, once in the background. A log that does not fsync every commit
// (SyncEverySecond, SyncNever) has no commit to speed up: its segments are
// reserved with fallocate, where the file system has it, and written once.
//
// # Record framing
//
// Every record starts at a multiple of 8 bytes. All integers are
// little-endian.
//
//	offset  size  field
//	0       8     length field: bits 0-55 payload length n,
//	              bits 56-58 padding count p = (8 - n%8) % 8,
//	              bits 59-62 zero, bit 63 always 1
//	8       8     sequence number
//	16      4     CRC-32C (Castagnoli) of bytes 0-15 followed by the payload
//	20      4     zero (reserved)
//	24      n     payload
//	24+n    p     zero padding
//
// The length field is one aligned 8-byte word, so a crash cannot leave half
// of it written within a sector, and bit 63 makes it non-zero even for an
// empty payload: a zero word can only be the end of the data. The CRC covers
// the sequence number and the length as well as the payload, so a record
// found at the wrong place or with a damaged length does not pass.
//
// Worked example: sequence number 1, payload "hello" (5 bytes, 3 bytes of
// padding, 32 bytes in all):
//
//	05 00 00 00 00 00 00 83   length 5; top byte 0x80 | padding 3
//	01 00 00 00 00 00 00 00   sequence number 1
//	54 c7 3e 7e 00 00 00 00   CRC-32C 0x7e3ec754, reserved zero
//	68 65 6c 6c 6f 00 00 00   "hello", 3 bytes of padding
//
// # Invariants
//
//   - Sequence numbers start at 1 and are dense: each segment's first record
//     has the number in its name, each following record the next one, and
//     each segment starts where the one before it ended. Open checks all of
//     this; a gap is corruption.
//   - A record is acknowledged only after it is written and, in SyncAlways
//     mode, fdatasynced. One writer goroutine commits every append queued at
//     that moment with one write(2) and one fdatasync (group commit).
//   - A segment is fsynced before the next one is made, in every sync mode,
//     so only the last segment can end in a torn record.
//   - A batch whose write or fsync fails is cut back (the file is truncated
//     to where the batch began and preallocated again), its appends fail
//     with ErrDiskFull or ErrIO and the sequence counter does not move, so
//     the next append reuses the numbers. If the cut back itself fails, the
//     log refuses appends with ErrIO until it is reopened.
//   - In SyncEverySecond mode an fsync failure cannot be reported to the
//     appends it covers, which have returned; the log then refuses appends
//     until reopened, since the kernel may have dropped the pages.
//   - At Open, a record in the last segment that is cut short or fails its
//     checks, with nothing but zeros (or the end of the file) after it, is a
//     torn tail: it is cut off, logged, and reported in RecoveryInfo. Any
//     other bad record, and non-zero bytes after the end of the data, fail
//     Open with an error wrapping ErrCorrupt that names the file and the
//     offset of the record. Open does not guess: a crash that persisted
//     later pages of a batch without an earlier one is reported, not
//     repaired.
//   - Release removes only whole segments whose last record is covered, and
//     never the segment being written, oldest first, then fsyncs the
//     directory.
//
// # Group commit
//
// Append queues its payload and waits. The writer goroutine takes every
// queued append, frames them all into one buffer, writes it with one
// write(2) and, in SyncAlways mode, one fdatasync, then wakes every caller
// of the batch; it yields once before taking the next batch so that the
// callers just woken can queue again. Appends that arrive during an fsync
// therefore share the next one.
//
// The throughput of SyncAlways is the batch size over the fsync time, and
// the batch is at most the number of concurrent appenders: with 64
// appenders and an fsync of 1 ms that is at most 64,000 records/s, however
// fast the same appends run without fsync. BenchmarkAppendParallel and
// BenchmarkSerialFsync measure it; on the 2-vCPU development VM, with
// fsyncs of 1.5-3 ms on a shared disk, SyncAlways committed about 47
// records per fsync and 15,000-27,000 records/s, against 500-700 records/s
// for one appender and 0.7-1.1 million records/s for SyncNever.
//
// # Use
//
//	l, err := wal.Open(dir, &wal.Options{Sync: wal.SyncAlways})
//	if err != nil {
//		return err // errors.Is(err, wal.ErrCorrupt): a damaged log
//	}
//	defer l.Close()
//	err = l.Replay(snapshotSeq, func(seq uint64, p []byte) error {
//		return apply(p) // p is only valid during the call
//	})
//	seq, err := l.Append(record) // durable when it returns
//	...
//	_ = l.Release(newSnapshotSeq) // after the snapshot is committed
//
// FaultFS wraps the operating system's file system and fails writes,
// fsyncs or truncations on demand, for tests of this package and of those
// built on it.
package wal
