// Package cluster makes a set of Disperse nodes one cache: membership and
// failure detection with hashicorp/memberlist, a hybrid logical clock that
// stamps every write, fan-out of writes to every live peer, and
// anti-entropy that repairs whatever the fan-out missed.
//
// # Versions
//
// A Node stamps each write with engine.Version{Time, Node}. Time is a
// hybrid logical clock reading: Unix milliseconds << 16 | a 16-bit counter
// (Clock). Node is NodeID(name), the FNV-1a 64-bit hash of the node name,
// and breaks ties. Readings from one Clock strictly increase; a node moves
// its clock past every version it receives (Clock.Observe) before applying
// it, so a write made after seeing another is always newer (there is no
// bound on how far ahead a peer's clock may pull this one: keep clocks
// synchronised). Every node
// applies every entry through engine.Apply/ApplyBatch, which keeps the
// newest version of a key (last writer wins): receiving an entry twice, or
// out of order, changes nothing.
//
// # Messages
//
// All data travels as memberlist user messages sent with SendReliable (one
// TCP stream each); nothing piggybacks on UDP gossip. The first byte is the
// type:
//
//	1 batch    written on the sender (fan-out)
//	2 repair   entries of differing buckets (anti-entropy)
//	3 request  "send me your entries of these buckets"
//
// batch and repair share one body, integers as Go varints (uvarint unless
// noted) and versions big-endian:
//
//	count
//	count × { flags (1 byte, bit 0 = tombstone)
//	          len(key) key  len(value) value  len(content type) content type
//	          expires at (varint, Unix ns, 0 = never)
//	          version time (8 bytes)  version node (8 bytes) }
//
// request: len(name) name (the asking node, so the answer can be sent) then
// count and count bucket numbers. A message that does not decode is logged
// and dropped (ErrMessage); entries are never half-applied.
//
// # Fan-out
//
// Put and Delete apply the entry locally (durable per the engine's sync
// mode) and then, unless Local, append it to a bounded queue per live peer
// (Config.ReplicationQueue entries). A full queue drops the entry for that
// peer and counts it; anti-entropy repairs it. One sender goroutine per
// peer waits BatchDelay for a small queue to grow, then drains it in
// batches of up to BatchBytes; the client's answer never waits for peers. A
// failed send is counted and left to anti-entropy. Peers that die or leave
// lose their queue. A receiver applies a batch with one engine.ApplyBatch.
//
// Node-local writes (Write.Local, X-Is-Sync) are applied with the Local
// flag and never queued; the engine keeps them apart and out of Digests, so
// anti-entropy neither sends nor counts them, and a newer cluster write of
// the key wins over them.
//
// # Anti-entropy
//
// memberlist's push/pull (every AntiEntropyInterval with one random peer,
// and on join) carries each side's Delegate.LocalState:
//
//	state version (1 byte, = 1)  len(name) name  1024 × bucket digest (8 bytes)
//
// that is engine.Digests(): one hash per key-hash bucket over the
// replicated entries, tombstones included — about 8 KiB whatever the
// number of keys. Both sides of a push/pull receive the other's state, and
// each (MergeRemoteState) lists the buckets whose digests differ. When none
// differ nothing more is sent. Otherwise the node sends the peer its
// entries of those buckets as repair batches and a request for the same
// buckets; the peer answers a request with repair batches. A bucket already
// sent to the same peer within the last min(AntiEntropyInterval/2, 2s) is
// skipped, so the push and the answer to the other side's request do not
// both travel. One exchange sends at most AntiEntropyMaxBytes to one peer,
// from a random starting bucket; a later round finds what is left. Each
// entry wins or loses by version on arrival, so after a partition heals
// every node converges to the same entries, the newest version of each key
// winning.
//
// memberlist stops probing a node it declared dead, so every
// AntiEntropyInterval a node tries to join one member it holds as dead
// (for up to ReconnectTimeout): two sides of a healed partition find each
// other again. Nodes that left are not retried.
//
// # Tombstones
//
// A delete is a tombstone entry; the engine collects it TombstoneTTL after
// its version's wall time. Once collected, an old copy of the value
// arriving from a node that missed the delete (a partition, a node down for
// longer than the TTL) would look new. The rule: a received entry whose
// version's wall time is older than now - TombstoneTTL is dropped unless
// the receiver holds a visible value for its key (then ordinary
// last-writer-wins applies). A collected tombstone therefore never lets an
// old value come back. The price: a node that lacks a key does not accept
// copies of it older than the TTL, so a node absent for longer than
// TombstoneTTL (or new) gets only the entries written within the TTL, and
// the node holding such an old value keeps it and keeps offering it (the
// bucket stays different; each exchange is bounded by AntiEntropyMaxBytes).
// Set TombstoneTTL, on the engine and here alike, longer than any outage a
// node should come back from.
//
// # Membership
//
// Node metadata (Delegate.NodeMeta) is a small JSON object with the HTTP
// address and, while leaving, a leaving flag. Members reports every node
// heard of: alive; suspect; left (it announced its leave before going);
// dead (declared failed). memberlist v0.7 does not tell delegates about
// suspicion, so the transport shows each gossip packet, sent or received,
// to the node, which reads memberlist's suspect and alive messages (type
// bytes 3 and 4, inside compound (7) and checksummed (12) packets): a
// suspicion of the current incarnation makes a member suspect, an alive
// message with a newer incarnation (the refutation) makes it alive again. A
// suspicion older than memberlist's longest suspicion timeout no longer
// counts.
//
// # Faults
//
// Config.Faults (Faults) wraps memberlist's NetTransport: tests cut the
// links between groups of nodes (Partition) and restore them (Heal). A cut
// drops packets both ways and fails stream dials, so gossip, push/pull and
// replication stop alike.
//
// # Throughput
//
// One SendReliable of a 190 KB batch (1,500 entries) takes about 2.7 ms on
// loopback, some 550k entries/s per peer, far above what the writers of one
// node produce, and the cluster code (queue, encoding, sending, decoding)
// stays under 10% of the CPU of a replicated run. What costs throughput is
// the peers' log commits: each batch is one commit (and with fsync=always
// one fsync) on every peer, so a sender lingers BatchDelay (10ms) to let
// batches grow. Replication therefore stays on memberlist; there is no
// separate HTTP stream. BENCHMARKS.md has the figures (BenchmarkPutReplicated
// against BenchmarkPutSingleNode, lag p50/p99, BenchmarkAntiEntropyRound,
// BenchmarkCatchUp).
//
// # Usage
//
//	eng, err := engine.Open(engine.Config{Dir: dir})
//	...
//	cfg := cluster.DefaultConfig()
//	cfg.Name = "node-1"
//	cfg.HTTPAddr = "10.0.0.1:8000"
//	cfg.Join = []string{"10.0.0.2:7946"}
//	node, err := cluster.New(cfg, eng)
//	...
//	defer eng.Close()
//	defer node.Close()
//	e, err := node.Put(ctx, cluster.Write{Key: "k", Value: []byte("v")})
package cluster
