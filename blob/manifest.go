package blob

import (
	"encoding/json"
	"fmt"
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
	// blob's old shards are told apart from the new ones.
	Generation uint64 `json:"generation"`
}

// Shard is where shard Index of every stripe lives.
type Shard struct {
	Index int    `json:"index"`
	Node  string `json:"node"`
	// Health is "ok" when the holder is live, "down" when it is not; set
	// only by Store.Manifest.
	Health string `json:"health,omitempty"`
}

// Shard health values.
const (
	HealthOK   = "ok"
	HealthDown = "down"
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

func encodeManifest(m *Manifest) []byte {
	c := *m
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
	if m.Data < 1 || m.Parity < 0 || len(m.Shards) != m.Data+m.Parity || m.StripeBytes < int64(m.Data) || m.Size < 0 {
		return m, fmt.Errorf("%w: manifest of %q is inconsistent", ErrCorrupt, id)
	}
	return m, nil
}
