package main

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/disperse/disperse/blob"
	"github.com/disperse/disperse/cluster"
)

// catalogPrefix is where blob manifests live in the replicated cache. Keys
// that begin with 0x00 are internal: the /cache routes neither list nor
// accept them.
const catalogPrefix = "\x00blob/"

// blobCatalog keeps blob manifests as cache entries of the cluster node, so
// they are durable, replicated to every node and repaired by anti-entropy.
type blobCatalog struct{ n *cluster.Node }

func (c blobCatalog) Put(ctx context.Context, key string, value []byte) error {
	_, err := c.n.Put(ctx, cluster.Write{Key: catalogPrefix + key, Value: value, ContentType: "application/json"})
	return err
}

func (c blobCatalog) Get(key string) ([]byte, bool) {
	e, ok := c.n.Get(catalogPrefix + key)
	return e.Value, ok
}

func (c blobCatalog) Delete(ctx context.Context, key string) error {
	_, err := c.n.Delete(ctx, catalogPrefix+key, false)
	return err
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

// blobConfig is the blob store of a node whose cluster node is n.
func blobConfig(cfg Config, n *cluster.Node) blob.Config {
	parity := cfg.BlobParityShards
	if parity == 0 {
		parity = blob.NoParity
	}
	return blob.Config{
		Dir:                 filepath.Join(cfg.DataDir, "blobs"),
		Members:             blobMembers{n},
		Catalog:             blobCatalog{n},
		DataShards:          cfg.BlobDataShards,
		ParityShards:        parity,
		RebuildAfter:        cfg.BlobRebuildAfter,
		TransferIdleTimeout: cfg.BlobIdleTimeout,
	}
}
