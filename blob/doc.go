// Package blob is Disperse's erasure-coded blob store: large values cut
// into stripes, each stripe into k data shards and m Reed-Solomon parity
// shards (github.com/klauspost/reedsolomon), the shards spread over
// distinct nodes, so that any k of the k+m shards give the blob back.
//
// The package sees the cluster through three small interfaces: Members
// (who is live, and their HTTP addresses), Catalog (the replicated records
// holding manifests, written by compare-and-set) and ShardClient (another
// node's shards and records). It never imports cluster or httpd.
//
// # Striping and coding
//
// A blob with k data shards uses blocks of S = ceil(StripeBytes/k) bytes
// (1 MiB by default) and stripes of k*S bytes (the manifest's
// stripe_bytes). Put reads the body one stripe at a time, hashes it
// (sha256), cuts it into k blocks, computes m parity blocks and sends block
// i to the holder of shard i. Only two stripes are in memory, one being
// sent while the next is read, whatever the blob's size. The last stripe
// is short: its r bytes become k blocks of ceil(r/k) bytes, zero-padded;
// the manifest's size tells where the data ends. So block b of every shard
// of a blob has the same length, and a shard of a blob of n bytes holds
// ceil(n/(k*S)) blocks.
//
// # Shard files
//
// A node keeps each shard in a file of its own under --data-dir/blobs,
// named "{id}.{generation as 16 hex digits}.{index}.shard" (ids longer than
// 100 characters are replaced by "~" and 32 hex digits of their sha256; the
// header keeps the real id). All integers are little-endian.
//
//	file header:  "DSPSHARD" | version u16 = 1 | index u16 | block size u32 |
//	              generation u64 | id length u16 | id | CRC-32C u32 of all before
//	block:        CRC-32C u32 | length u32 | block number u64 | data[length]
//
// The block CRC covers the 12 header bytes after it and the data, so a
// flipped bit, a block written at the wrong place or a wrong length are all
// found on read. Blocks are fixed-size but for the last, so block b starts
// at header length + b*(16+S) and a range read seeks straight to it.
//
// The checksum is CRC-32C (Castagnoli): the standard library computes it
// with the SSE4.2/ARM CRC instructions at many GB/s, it catches every burst
// of up to 32 bits and all but 2^-32 of other damage, and the wal already
// uses it. It guards against bit rot and torn writes, not against an
// adversary, which is all a shard holder needs; xxhash or HighwayHash
// would have added a dependency for no gain in what is detected.
//
// Worked example: shard 5 of generation 0x2a of blob "a.b", 4-byte blocks,
// holding "abcd" then "ef":
//
//	44535053 48415244  "DSPSHARD"
//	0100 0500 04000000 magic, version 1, index 5, block size 4
//	2a00000000000000   generation 0x2a
//	0300 612e62        id length 3, "a.b"
//	ef3a0562           CRC-32C 0x62053aef of the 29 bytes before
//	f777db5e 04000000 0000000000000000 61626364   block 0: crc, length 4, number 0, "abcd"
//	ff4ee08f 02000000 0100000000000000 6566       block 1: crc, length 2, number 1, "ef"
//
// A shard is written under a temporary name ("….shard.<random>.tmp"),
// fsynced, renamed to its name and the directory fsynced: a shard file
// under its name is always complete. While it is written, each 8 MiB is
// handed to the disk at once (sync_file_range), so that the fsync waits
// for the tail rather than for the whole shard. Repair rewrites one block
// in place and fsyncs; the block it replaces had failed its checksum, so a
// torn rewrite leaves a block that fails again, never one that is silently
// wrong.
//
// # Moving shards between nodes
//
// ShardServer, mounted at /internal/shards/, carries shards as the same
// framed blocks as on disk (and, on a Store's server, blob records; see
// Read-after-write): a PUT streams a shard's blocks and ends with an
// end marker (a block header whose length is 0xFFFFFFFF and whose number is
// the block count) — a body cut short is never committed; a GET streams
// blocks [from, to) straight from the file, and the reader checks every
// checksum, so damage on disk or on the wire is found at the reader. The
// shards of this node itself are read and written directly, not over HTTP.
//
// Two limits keep a hung holder (a stopped process, a network that drops
// packets without a word) from hanging a blob's PUT or GET. Dialing a
// holder fails after Config.ConnectTimeout (5s). A transfer is cut with
// ErrStalled when no byte has moved for Config.TransferIdleTimeout (30s)
// while this node waits on the holder: for its answer headers, for the
// next bytes of a shard being read, or for it to take the next bytes of a
// shard being written. This is not a deadline on the transfer, which lasts
// as long as its shard takes to stream, and the time this node spends
// waiting on its own side (a slow uploader or downloader of the blob) does
// not count. A read treats a cut stream like a lost holder and rebuilds
// from parity; an upload fails and removes its shards everywhere.
//
// A shard PUT is sent with "Expect: 100-continue" and its writer is handed
// out only once the holder answered "100 Continue", having created the
// shard file: a holder that refuses the connection, or does not answer
// within ConnectTimeout, is known to be gone before a byte of the blob is
// streamed, and Put gives its shards to the next node in rendezvous order.
// Memory for a received block grows as its bytes arrive, bounded by the
// block size; a header claiming a large block costs nothing until sent.
//
// # Placement
//
// Shard i goes to the i-th node in rendezvous (highest random weight)
// order of the blob id over the live members: every node computes the same
// order, and a node joining or leaving moves only the shards it would hold.
// With fewer nodes than shards the order wraps around. A node that does
// not answer the PUT is skipped for the next one in the order, those
// holding no shard yet first. The manifest's
// tolerates is the largest t such that losing any t nodes leaves at least
// k shards: every stripe has the same placement, so it is the number of
// largest per-node shard counts that sum to at most m (m when all shards
// are on distinct nodes).
//
// # Manifests
//
// A manifest is the JSON of Manifest, stored in the Catalog under the blob
// id (replicated to every node, so any node serves any blob):
//
//	{"id":"a.b","size":5,"sha256":"…","data":4,"parity":2,"stripe_bytes":4194304,
//	 "content_type":"text/plain","created_at":"…","shards":[{"index":0,"node":"n3"},…],
//	 "tolerates":2,"generation":42}
//
// Every upload has a fresh random generation, carried by its shard files;
// it stays when a repair moves shards. The catalog record's Version (the
// replicated entry's version) changes with every manifest change, and every
// change is a compare-and-set on the version read: a PUT retries on a
// newer record (it does not depend on what it replaces, so it always
// wins), a repair that finds the record changed gives up and removes the
// shards it wrote, a DELETE retries.
//
// # Read-after-write
//
// The catalog reaches the other nodes asynchronously, so a PUT or DELETE
// does not answer before every other live node has the new Record (the
// manifest, or the deletion, with its catalog version): once its
// compare-and-set is done, the writer sends it to every live node
// (PUT /internal/shards/{id}) and waits for them, up to ManifestTimeout.
// A node keeps such a record in an overlay until its own catalog holds a
// version at least as new (or a minute passed), and serves the newer of
// catalog and overlay. A node that knows nothing of an id (it joined
// after the PUT, or the announcement failed) asks the first nodes of the
// id's rendezvous order, where the PUT put the shards, before it answers
// that there is no such blob (GET /internal/shards/{id}). The old shards of
// a replaced blob are removed once every live node took the new manifest;
// otherwise their holders remove them CleanupGrace after they stopped
// being named. A node that missed an announcement while it was up (its
// record route failed then) still holds the old manifest; when a read of
// it finds the holders without those shards (removed by the DELETE, or by
// cleanup after a replacement), it asks the same nodes for the record and
// answers not found, or reads the new manifest (ErrStale), instead of
// unavailable. The record travels after the catalog write rather than in
// the shards' commit because the version a compare-and-set needs exists
// only once that write is done, and a deletion has no shard to travel in.
//
// # Invariants
//
//   - A manifest names only shards that are committed on their holders,
//     but for those whose holder stopped answering during the upload: the
//     upload goes on without them while at most m are lost, tolerates
//     counts only the committed ones, and the repair pass rebuilds the
//     others (on the holder when it returns, elsewhere after
//     RebuildAfter). It is written after every other holder has committed;
//     a failed or cancelled upload removes its shards everywhere and
//     writes nothing.
//   - A PUT to an existing id replaces the manifest only when the new blob
//     is complete; the old generation's shards are removed afterwards.
//   - A read checks, before its first byte, that k shards of the stripes
//     it needs can be opened, and answers ErrUnavailable otherwise (never
//     ErrNotFound: a holder's missing file is ErrNoShard). It reads data
//     shards and only turns to parity when a shard is missing or a block
//     fails its checksum; such a block is rewritten from the rebuilt data
//     in the background. A read of the whole blob hashes it as it goes and
//     fails with ErrChecksum before handing out the last stripe when the
//     sha256 differs from the manifest's.
//   - A shard file that no manifest names (blob deleted or replaced while
//     its holder was away, shard moved elsewhere) is removed by its own
//     node once it has been unnamed for CleanupGrace and is older than
//     that; temporary files once older than CleanupGrace.
//   - Healing, by the repair pass every RebuildAfter/4 (within 1s..1m):
//     each node rebuilds, in place, the shards manifests place on it that
//     it has no file for; the blob's leader (the first live node in its
//     rendezvous order) rebuilds shards whose holder has been absent for
//     RebuildAfter onto live nodes holding no shard of the blob, and moves
//     shards off nodes holding several onto live nodes holding none (a
//     blob written while nodes were down spreads when they return).
//   - The scrubber reads every shard of its node every ScrubInterval, at
//     most ScrubRate bytes per second, verifying every block: a missing,
//     cut or unreadable shard is rebuilt whole from the others, a block
//     failing its checksum rewritten. Until then the holder reports the
//     shard missing or corrupt, and Store.Manifest shows it, the blob's
//     health (healthy, degraded, unreadable) and what it tolerates now.
//   - ENOSPC anywhere in a PUT (a holder's shard, the manifest) is
//     ErrDiskFull and leaves nothing: temporary files are removed on abort,
//     committed shards by the writer.
//
// # Usage
//
//	st, err := blob.New(blob.Config{Dir: filepath.Join(dataDir, "blobs"),
//		Members: members, Catalog: catalog})
//	mux.Handle(blob.ShardPathPrefix, st.ShardHandler())
//	man, err := st.Put(ctx, "photo.jpg", body, blob.PutOptions{ContentType: "image/jpeg"})
//	man, rc, err := st.Open(ctx, "photo.jpg", 0, -1) // on any node
//	defer rc.Close()
//	io.Copy(w, rc)
package blob
