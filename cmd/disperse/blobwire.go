package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/disperse/disperse/blob"
	"github.com/disperse/disperse/cluster"
	"github.com/disperse/disperse/engine"
	"github.com/disperse/disperse/wal"
)

// catalogPrefix is where blob manifests live in the replicated cache. Keys
// that begin with 0x00 are internal: the /cache routes neither list nor
// accept them.
const catalogPrefix = "\x00blob/"

// blobCatalog keeps blob manifests as cache entries of the cluster node, so
// they are durable, replicated to every node and repaired by anti-entropy.
// A manifest's version is its entry's version, and every write is
// conditional on it (cluster.Write.If), checked atomically on this node.
type blobCatalog struct{ n *cluster.Node }

func (c blobCatalog) Put(ctx context.Context, key string, value []byte, prev blob.Version) (blob.Version, error) {
	w := cluster.Write{Key: catalogPrefix + key, Value: value, ContentType: "application/json"}
	if prev.IsZero() {
		w.If.Absent = true
	} else {
		w.If.Match = engineVersion(prev)
	}
	e, err := c.n.Put(ctx, w)
	if err != nil {
		return blob.Version{}, catalogError(err)
	}
	return blobVersion(e.Version), nil
}

// Get returns the manifest entry of key. A deleted key's tombstone version
// is not told: the cluster node shows visible entries only.
func (c blobCatalog) Get(key string) ([]byte, blob.Version, bool) {
	e, ok := c.n.Get(catalogPrefix + key)
	if !ok {
		return nil, blob.Version{}, false
	}
	return e.Value, blobVersion(e.Version), true
}

func (c blobCatalog) Delete(ctx context.Context, key string, prev blob.Version) (blob.Version, error) {
	w := cluster.Write{Key: catalogPrefix + key, Delete: true}
	if !prev.IsZero() {
		w.If.Match = engineVersion(prev)
	}
	e, err := c.n.Put(ctx, w)
	if err != nil {
		return blob.Version{}, catalogError(err)
	}
	return blobVersion(e.Version), nil
}

func (c blobCatalog) List(prefix, after string, limit int) ([]string, string) {
	if after != "" {
		after = catalogPrefix + after
	}
	keys, next := c.n.List(catalogPrefix+prefix, after, limit)
	for i, k := range keys {
		keys[i] = strings.TrimPrefix(k, catalogPrefix)
	}
	return keys, strings.TrimPrefix(next, catalogPrefix)
}

// catalogError gives a failed catalog write the blob store's sentinels: a
// failed precondition is a lost compare-and-set, a full log disk is a
// full disk.
func catalogError(err error) error {
	switch {
	case errors.Is(err, cluster.ErrPrecondition):
		return fmt.Errorf("%w: %w", blob.ErrConflict, err)
	case errors.Is(err, wal.ErrDiskFull):
		return fmt.Errorf("%w: %w", blob.ErrDiskFull, err)
	}
	return err
}

func blobVersion(v engine.Version) blob.Version { return blob.Version{Time: v.Time, Node: v.Node} }

func engineVersion(v blob.Version) engine.Version { return engine.Version{Time: v.Time, Node: v.Node} }

// blobMembers is the blob store's view of the cluster: the live members and
// the HTTP address each serves its shards on.
type blobMembers struct{ n *cluster.Node }

func (m blobMembers) Self() string { return m.n.Name() }

func (m blobMembers) Live() []blob.Peer {
	var live []blob.Peer
	for _, mb := range m.n.Members() {
		if mb.State == "alive" && mb.HTTPAddr != "" {
			live = append(live, blob.Peer{Name: mb.Name, HTTPAddr: mb.HTTPAddr})
		}
	}
	return live
}

// blobConfig is the blob store of a node whose cluster node is n: its
// shard requests to other nodes are signed with the cluster key.
func blobConfig(cfg Config, n *cluster.Node) blob.Config {
	parity := cfg.BlobParityShards
	if parity == 0 {
		parity = blob.NoParity
	}
	bc := blob.Config{
		Dir:                 filepath.Join(cfg.DataDir, "blobs"),
		Members:             blobMembers{n},
		Catalog:             blobCatalog{n},
		DataShards:          cfg.BlobDataShards,
		ParityShards:        parity,
		RebuildAfter:        cfg.BlobRebuildAfter,
		TransferIdleTimeout: cfg.BlobIdleTimeout,
		ScrubInterval:       cfg.BlobScrubInterval,
		ScrubRate:           cfg.BlobScrubRate,
	}
	if n != nil {
		bc.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return n.PeerTransport(rt) }
		bc.PeerTLS = n.PeerTLS()
	}
	return bc
}
