package blob

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Manifest describes one stored blob. Its JSON form is the one of API.md.
type Manifest struct {
	ID          string    `json:"id"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"` // hex
	Data        int       `json:"data"`   // k
	Parity      int       `json:"parity"` // m
	StripeBytes int64     `json:"stripe_bytes"`
	ContentType string    `json:"content_type"`
	CreatedAt   time.Time `json:"created_at"`
	Shards      []Shard   `json:"shards"`
	// Tolerates is how many node losses the blob survives given where its
	// shards are.
	Tolerates int `json:"tolerates"`
	// Generation names the upload; shard files carry it, so a replaced
	// blob's old shards are told apart from the new ones. It stays the
	// same when a repair moves shards; the catalog record's Version is
	// what changes with every manifest change.
	Generation uint64 `json:"generation"`
	// Health is the blob's state now (HealthHealthy, HealthDegraded,
	// HealthUnreadable); set only by Store.Manifest.
	Health string `json:"health,omitempty"`
}

// Shard is where shard Index of every stripe lives.
type Shard struct {
	Index int    `json:"index"`
	Node  string `json:"node"`
	// Health is the shard's state as its holder reports it now: HealthOK,
	// HealthMissing, HealthCorrupt, HealthDown or HealthUnknown; set only
	// by Store.Manifest.
	Health string `json:"health,omitempty"`
}

// Shard health values.
const (
	// HealthOK: the holder is live and has the shard, and its last check
	// found every block sound.
	HealthOK = "ok"
	// HealthMissing: the holder is live and has no file for the shard.
	HealthMissing = "missing"
	// HealthCorrupt: the holder has the shard but blocks of it failed
	// their checksum and are not rewritten yet.
	HealthCorrupt = "corrupt"
	// HealthDown: the holder is not a live member.
	HealthDown = "down"
	// HealthUnknown: the holder is live but did not answer.
	HealthUnknown = "unknown"
)

// Blob health values: healthy when every shard is ok, degraded when some
// are not but at least k are, unreadable when fewer than k are.
const (
	HealthHealthy    = "healthy"
	HealthDegraded   = "degraded"
	HealthUnreadable = "unreadable"
)

// BlockBytes is the bytes each shard holds per full stripe.
func (m *Manifest) BlockBytes() int { return int(m.StripeBytes) / m.Data }

// Stripes is the number of stripes (the last one may be partial).
func (m *Manifest) Stripes() int {
	return int((m.Size + m.StripeBytes - 1) / m.StripeBytes)
}

// blockLen is the length of block b of every shard: the full block size
// but for the last stripe, whose ceil(rest/k) bytes per shard hold the rest
// of the blob zero-padded.
func (m *Manifest) blockLen(b int) int {
	rest := m.Size - int64(b)*m.StripeBytes
	if rest >= m.StripeBytes {
		return m.BlockBytes()
	}
	return int((rest + int64(m.Data) - 1) / int64(m.Data))
}

// stripeLen is the bytes of blob data in stripe b.
func (m *Manifest) stripeLen(b int) int {
	return int(min(m.StripeBytes, m.Size-int64(b)*m.StripeBytes))
}

func (m *Manifest) ref(index int) ShardRef {
	return ShardRef{ID: m.ID, Gen: m.Generation, Index: index}
}

func (m *Manifest) holders() []string {
	out := make([]string, len(m.Shards))
	for i, s := range m.Shards {
		out[i] = s.Node
	}
	return out
}

// clone returns a copy of m that shares nothing with it.
func (m *Manifest) clone() Manifest {
	c := *m
	c.Shards = slices.Clone(m.Shards)
	return c
}

func encodeManifest(m *Manifest) []byte {
	c := *m
	c.Health = ""
	c.Shards = make([]Shard, len(m.Shards))
	for i, s := range m.Shards {
		c.Shards[i] = Shard{Index: s.Index, Node: s.Node}
	}
	b, _ := json.Marshal(&c) // plain fields only: cannot fail
	return b
}

func decodeManifest(id string, b []byte) (Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%w: manifest of %q: %v", ErrCorrupt, id, err)
	}
	if err := m.check(id); err != nil {
		return m, fmt.Errorf("%w: manifest of %q: %v", ErrCorrupt, id, err)
	}
	return m, nil
}

// check validates a manifest from the catalog or a peer like a client's
// input: every size the store allocates by is bounded.
func (m *Manifest) check(id string) error {
	switch {
	case m.ID != id:
		return fmt.Errorf("names blob %q", m.ID)
	case m.Data < 1 || m.Parity < 0 || m.Data+m.Parity > 256:
		return fmt.Errorf("%d data and %d parity shards", m.Data, m.Parity)
	case len(m.Shards) != m.Data+m.Parity:
		return fmt.Errorf("%d shards listed, want %d", len(m.Shards), m.Data+m.Parity)
	case m.StripeBytes < int64(m.Data) || m.StripeBytes%int64(m.Data) != 0 || m.StripeBytes/int64(m.Data) > maxBlockSize:
		return fmt.Errorf("stripe of %d bytes over %d data shards", m.StripeBytes, m.Data)
	case m.Size < 0:
		return fmt.Errorf("size %d", m.Size)
	}
	for i, sh := range m.Shards {
		if sh.Index != i || sh.Node == "" {
			return fmt.Errorf("shard %d listed as %+v", i, sh)
		}
	}
	return nil
}

// Record is what a node knows of one blob id: its manifest, or that it
// was deleted, with the version of the catalog record that says so. Nodes
// send each other records to make a new manifest or a deletion visible
// everywhere before the catalog's replication brings it.
type Record struct {
	Version  Version   `json:"version"`
	Deleted  bool      `json:"deleted,omitempty"`
	Manifest *Manifest `json:"manifest,omitempty"`
}

// newer reports whether r is newer than o.
func (r Record) newer(o Record) bool { return r.Version.Compare(o.Version) > 0 }

// check validates a record received for blob id.
func (r Record) check(id string) error {
	switch {
	case r.Version.IsZero():
		return fmt.Errorf("%w: record of %q without a version", ErrBadParams, id)
	case r.Deleted != (r.Manifest == nil):
		return fmt.Errorf("%w: record of %q must hold a manifest or a deletion", ErrBadParams, id)
	case r.Manifest != nil:
		if err := r.Manifest.check(id); err != nil {
			return fmt.Errorf("%w: manifest of %q: %v", ErrBadParams, id, err)
		}
	}
	return nil
}
