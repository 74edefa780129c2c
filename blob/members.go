package blob

// Peer is one live node as the blob store sees it.
type Peer struct {
	// Name is the node's unique name, as recorded in manifests.
	Name string
	// HTTPAddr is the host:port of the node's HTTP server, where its
	// ShardServer is mounted at ShardPathPrefix, or https://host:port when
	// it serves TLS (Config.PeerTLS then applies).
	HTTPAddr string
}

// Members is the blob store's view of the cluster. The cluster package's
// node satisfies it through a small adapter; tests use InmemMembers.
// Implementations must be safe for concurrent use.
type Members interface {
	// Self is this node's name.
	Self() string
	// Live lists the nodes currently alive, this node included, in any
	// order.
	Live() []Peer
}
