// Package cluster makes a set of Disperse nodes one cache: membership and
// failure detection with hashicorp/memberlist, a bounded hybrid logical
// clock that stamps every write, fan-out of writes to every live peer, and
// a sync protocol that brings a node that (re)joins up to date at once and
// repairs whatever the fan-out missed.
//
// # Parts
//
// A Node is made of parts with one job and one lock each:
//
//   - membership (membership.go): memberlist's events, each member's
//     metadata and state, the peers remembered on disk, the name check;
//   - replicator (replicate.go): a bounded queue and a sender per live peer;
//   - syncer (sync.go, tree.go): hash-tree comparison and exchange with a
//     peer, readiness, the periodic loop;
//   - Clock (hlc.go): versions;
//   - identity (identity.go): what outlives a restart in Config.Dir.
//
// Node (node.go) holds the write path and the lifecycle, and reaches the
// storage engine only through the Store interface.
//
// # Identity
//
// Config.Dir holds node-id (16 hex digits, random, written once) and
// state.json (the gossip addresses of up to 64 peers seen, most recent
// first, and when the node was last in sync), both written through a
// temporary file, fsync and rename. The id, not the name, is the
// tie-break in versions, so a node replaced on an empty disk under the same
// name writes versions of its own.
//
// # Versions
//
// A version is engine.Version{Time, Node}: Time is a clock reading, Unix
// milliseconds << 16 | a 16-bit counter; Node is the node id. Readings
// from one Clock strictly increase. The clock is seeded at start from the
// largest version the store holds, and a local write is stamped above the
// key's newest version in any form (value, tombstone, expiry marker), under
// a per-key stripe lock; if a peer's newer entry lands between stamping and
// applying, the write is stamped again. A 200 or 204 therefore always means
// the write took effect on this node. A version from a peer more than
// MaxClockSkew ahead of this node's wall clock is refused (counted in
// disperse_cluster_peer_rejected_total{reason="clock_skew"}, logged with
// the peer's name at most once a minute) and never moves the clock, so one
// bad clock cannot freeze keys and the clock never wraps. Every batch
// carries the sender's wall clock; a peer off by more than MaxClockSkew is
// named in a log line and disperse_cluster_peer_clock_offset_seconds.
//
// # Fan-out
//
// Put and Delete apply the entry locally (durable per the engine's sync
// mode) and then, unless Local, append it to a bounded queue per live peer
// (Config.ReplicationQueue entries). A full queue drops the entry for that
// peer and counts it, and a batch that fails to send is dropped the same
// way; either marks the peer, and the node syncs with it within a second.
// The replicator also keeps the keys and versions of the node's own writes
// of the last 10 s (at most Config.RecentBytes, 1 MiB by default, about 60
// bytes a write; forgotten once older) and queues those still the newest
// of their key, as the store holds them, for a peer that turns alive
// (outside its lock: writes do not wait for the lookups): two nodes
// see each other turn alive a gossip round or more apart, and a write
// taken in that gap would reach neither the queue nor the peer's sync.
// When the window held more writes than that, the peer is marked and
// synced with within a second instead. One
// sender per peer waits BatchDelay for a small queue to grow, then drains
// it in batches of up to BatchBytes sent with memberlist's SendReliable:
//
//	1 (message type)  len(name) name  sender wall clock (varint, Unix ms)
//	entries in the engine's encoding (engine.AppendEntries)
//
// The entry codec is the engine's, the one the log and the snapshot use.
// A receiver checks every entry (key present, version within the skew),
// forces Local off and applies the batch with one Store.ApplyBatch. A
// batch is the unit a later acknowledgement would name, so writes that
// wait for chosen replicas can be added as an ack message per batch.
//
// # Sync
//
// The store keeps engine.Leaves (65,536) leaf digests, each the XOR of the
// entry hashes of its keys' replicated slots (tombstones and expiry
// markers included, node-local writes not). The hash tree groups 16
// leaves to a parent, four levels up to the root; it is computed from the
// leaf digests when needed (65,536 XORs). A sync is run by one side, the
// initiator, over the peer's HTTP API (Handler, under SyncPathPrefix),
// each request a POST with a binary body:
//
//	tree    level, node indices -> the children's hashes (8 bytes each);
//	        no indices: every hash of the level
//	leaves  leaf indices        -> per leaf: count, count × {key hash
//	        (FNV-1a 64), version time, version node} (24 bytes a key)
//	pull    leaf, key hashes    -> the entries, as frames
//	push    frames of entries   -> 204
//
// Requests start with the sender's name; a frame is a uvarint length and a
// batch in the engine's encoding. The initiator fetches level 2 (256
// hashes), descends only into differing nodes, lists the keys of
// differing leaves (4,096 leaves a request), pulls the keys the peer has
// newer or alone and pushes those it has newer or alone. Traffic grows with
// the number of differing keys: 500 differing keys among 1,000,000 cost
// about 100 KiB of hashes and key lists and move 500 entries.
//
// A node that joins an existing cluster gossips that it is joining until
// its first sync is done (or ReadySyncTimeout passed). It syncs with one
// live peer at a time, peers that are not joining first, until one sync
// completes, then once with each other live peer, which moves only what
// the first lacked; its peers leave the catch-up to it, so what it missed
// crosses once. Between settled nodes a sync starts when a peer turns
// alive, from the side with the smaller name (the sync covers both
// directions), and every AntiEntropyInterval with a random settled live
// peer. Readiness: a node
// that has peers to join (Config.Join or remembered peers) is ready once
// its first sync completed, or after ReadySyncTimeout; a node with none is
// ready at once. A restart therefore never waits for a periodic timer.
//
// # Expiry and tombstones
//
// A delete is a tombstone; an expired value becomes an expiry marker (the
// engine frees its bytes and keeps its version). Both keep beating older
// versions of the key until the engine collects them, TombstoneTTL after
// the delete or the expiry. Nodes never refuse entries by age: a new or
// wiped node takes everything. Instead, a node that was away longer than
// the TTL must not bring back what the cluster deleted and collected
// meanwhile. Each node keeps a watermark, the last time it was in sync
// (a completed sync in which it or the peer was fresh, or running with no
// live peer), on disk and in its gossiped metadata. A node is fresh while
// its watermark is within TombstoneTTL, else stale. A stale node offers no
// entry older than the horizon (now - TombstoneTTL) to anyone, and in a
// sync with a fresh peer it drops its entries older than the horizon that
// the peer does not hold (a tombstone just above each, collected at once,
// so a restart does not bring them back); after that sync it is fresh.
// Entries newer than the horizon are safe to push: a delete of them would
// still have its tombstone. If every live member is stale (the whole
// cluster was down longer than the TTL), the one with the newest watermark
// (ties: the smallest name) counts as fresh after ReadySyncTimeout. This is
// Cassandra's gc-grace rule with the repair made automatic: a partition
// longer than TombstoneTTL, during which both sides keep running and
// syncing among themselves, can still bring a deleted key back.
//
// # Membership
//
// Node metadata (Delegate.NodeMeta) is a small JSON object: the HTTP
// address, the node id, the sync watermark and, while leaving, a leaving
// flag. Members reports every node heard of: alive; suspect (alive for
// memberlist, but this node's own probes of it went unanswered for three
// probe rounds while other members answered, seen through memberlist's
// PingDelegate); left (announced its leave); dead (declared failed).
// Nothing parses memberlist's packets.
//
// Joining: at start a node joins Config.Join and every remembered peer,
// left ones included, and tries again with backoff (200ms to 5s) whenever
// it has no live peer; every AntiEntropyInterval it also tries one member
// it holds as dead (memberlist stops probing those), so the two sides of a
// healed partition find each other. A seed node restarted without --join
// therefore finds its cluster again. A member's name must be unique:
// memberlist's merge delegate checks the peer list at every join, on both
// sides. A joining node that finds its name alive at another address with
// another id stops (Fatal, ErrNameTaken); the members refuse the merge, so
// the cluster is untouched.
//
// # Faults
//
// Config.Faults (Faults) wraps memberlist's NetTransport: tests cut the
// links between groups of nodes (Partition) and restore them (Heal). A cut
// drops packets both ways and fails stream dials, so gossip and
// replication stop alike; tests cut the sync's HTTP the same way through
// Faults.Cut.
//
// # Usage
//
//	eng, err := engine.Open(engine.Config{Dir: dir})
//	...
//	cfg := cluster.DefaultConfig()
//	cfg.Name = "node-1"
//	cfg.Dir = filepath.Join(dir, "cluster")
//	cfg.HTTPAddr = "10.0.0.1:8000" // where node.Handler() is served
//	cfg.Join = []string{"10.0.0.2:7946"}
//	node, err := cluster.New(cfg, eng)
//	...
//	defer eng.Close()
//	defer node.Close()
//	e, err := node.Put(ctx, cluster.Write{Key: "k", Value: []byte("v")})
package cluster
