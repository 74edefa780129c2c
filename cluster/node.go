package cluster

import (
	"context"

	"github.com/disperse/disperse/engine"
)

// Write is a client's write of one key, before the node stamps its version.
type Write struct {
	Key         string
	Value       []byte
	ContentType string
	// ExpiresAt is the absolute expiry in Unix nanoseconds; 0 means never.
	ExpiresAt int64
	// Local: apply on this node only (X-Is-Sync); never sent to peers.
	Local bool
}

// Member is one node as membership sees it.
type Member struct {
	Name       string `json:"name"`
	Addr       string `json:"addr"`
	GossipPort int    `json:"gossip_port"`
	HTTPAddr   string `json:"http_addr"`
	State      string `json:"state"` // alive, suspect, dead, left
}

// Node is one cluster member: it stamps writes with its hybrid logical
// clock, applies them to its engine and spreads them to its peers.
type Node struct {
}

// Put stamps w with a new version, makes it durable on this node and, unless
// w.Local, queues it for every live peer. It returns the entry as stored.
func (n *Node) Put(ctx context.Context, w Write) (engine.Entry, error) {
	panic("cluster: not implemented")
}

// Delete writes a tombstone for key (node-local with local).
func (n *Node) Delete(ctx context.Context, key string, local bool) (engine.Entry, error) {
	panic("cluster: not implemented")
}

// Get returns the visible entry of key.
func (n *Node) Get(key string) (engine.Entry, bool) {
	panic("cluster: not implemented")
}

// List lists visible keys as engine.Engine.List does.
func (n *Node) List(prefix, after string, limit int) ([]string, string) {
	panic("cluster: not implemented")
}

// Members lists the cluster's members, this node included.
func (n *Node) Members() []Member {
	panic("cluster: not implemented")
}
