package cluster

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Node-to-node requests (the sync routes here, the blob store's shard
// routes) carry a signature when the cluster has a key:
//
//	X-Disperse-Node: the sending node's name
//	X-Disperse-Time: the sending node's wall clock, Unix milliseconds
//	X-Disperse-Signature: hex HMAC-SHA256 over
//	    "disperse-peer-v1\n" method "\n" path "?" raw query "\n" time "\n" node
//	    keyed with HMAC-SHA256(cluster key, "disperse peer http")
//
// A receiver accepts a signature made with any key of its keyring and a
// time within MaxClockSkew of its own clock. The body is not signed: the
// signature says who sent the request, and TLS (when the node has a
// certificate) protects what it carries. A captured request can be
// replayed only within the skew window.
const (
	headerPeerNode = "X-Disperse-Node"
	headerPeerTime = "X-Disperse-Time"
	headerPeerSig  = "X-Disperse-Signature"
)

// ErrUnauthenticated: a node-to-node request without a valid signature.
var ErrUnauthenticated = errors.New("cluster: request not signed with the cluster key")

// ParseKeys reads a cluster key setting: comma-separated base64 keys of
// 16, 24 or 32 bytes (AES-128, -192, -256), the first one the primary.
func ParseKeys(s string) ([][]byte, error) {
	var keys [][]byte
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(part)
		if err != nil {
			return nil, fmt.Errorf("a cluster key is not base64: %v", err)
		}
		if l := len(k); l != 16 && l != 24 && l != 32 {
			return nil, fmt.Errorf("a cluster key decodes to %d bytes; it must be 16, 24 or 32 (e.g. head -c 32 /dev/urandom | base64)", l)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no cluster key given")
	}
	return keys, nil
}

// peerAuth signs and checks node-to-node HTTP requests with the cluster's
// keys. With no keys it signs nothing and accepts everything.
type peerAuth struct {
	name string
	skew time.Duration
	now  func() time.Time

	mu      sync.RWMutex
	primary []byte   // derived signing key
	all     [][]byte // derived keys accepted
	ring    *memberlist.Keyring
}

func newPeerAuth(name string, skew time.Duration, now func() time.Time, keys [][]byte) (*peerAuth, error) {
	a := &peerAuth{name: name, skew: skew, now: now}
	if len(keys) == 0 {
		return a, nil
	}
	ring, err := memberlist.NewKeyring(keys, keys[0])
	if err != nil {
		return nil, fmt.Errorf("%w: cluster key: %v", ErrConfig, err)
	}
	a.ring = ring
	a.install(keys)
	return a, nil
}

// deriveKey separates the HTTP signing key from the gossip encryption key.
func deriveKey(k []byte) []byte {
	m := hmac.New(sha256.New, k)
	m.Write([]byte("disperse peer http"))
	return m.Sum(nil)
}

func (a *peerAuth) install(keys [][]byte) {
	all := make([][]byte, len(keys))
	for i, k := range keys {
		all[i] = deriveKey(k)
	}
	a.mu.Lock()
	a.primary, a.all = all[0], all
	a.mu.Unlock()
}

// setKeys replaces the keyring on a running node: the new keys are added,
// the first made primary, the others removed. Rotation without downtime
// is three calls on every node: add the new key as a second key, make it
// the first, drop the old one.
func (a *peerAuth) setKeys(keys [][]byte) error {
	if a.ring == nil {
		return fmt.Errorf("%w: the node started without a cluster key; a key cannot be added to a running node that has none", ErrConfig)
	}
	if len(keys) == 0 {
		return fmt.Errorf("%w: a node with a cluster key cannot drop every key", ErrConfig)
	}
	for _, k := range keys {
		if err := a.ring.AddKey(k); err != nil {
			return fmt.Errorf("%w: cluster key: %v", ErrConfig, err)
		}
	}
	if err := a.ring.UseKey(keys[0]); err != nil {
		return fmt.Errorf("%w: cluster key: %v", ErrConfig, err)
	}
	for _, old := range a.ring.GetKeys() {
		keep := false
		for _, k := range keys {
			keep = keep || hmac.Equal(k, old)
		}
		if !keep {
			if err := a.ring.RemoveKey(old); err != nil {
				return fmt.Errorf("%w: cluster key: %v", ErrConfig, err)
			}
		}
	}
	a.install(keys)
	return nil
}

func (a *peerAuth) enabled() bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.primary != nil
}

func (a *peerAuth) mac(key []byte, r *http.Request, ts, node string) []byte {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "disperse-peer-v1\n%s\n%s?%s\n%s\n%s", r.Method, r.URL.EscapedPath(), r.URL.RawQuery, ts, node)
	return m.Sum(nil)
}

// sign adds this node's signature to r.
func (a *peerAuth) sign(r *http.Request) {
	a.mu.RLock()
	key := a.primary
	a.mu.RUnlock()
	if key == nil {
		return
	}
	ts := strconv.FormatInt(a.now().UnixMilli(), 10)
	r.Header.Set(headerPeerNode, a.name)
	r.Header.Set(headerPeerTime, ts)
	r.Header.Set(headerPeerSig, hex.EncodeToString(a.mac(key, r, ts, a.name)))
}

// verify checks r's signature; nil when the cluster has no key.
func (a *peerAuth) verify(r *http.Request) error {
	a.mu.RLock()
	keys := a.all
	a.mu.RUnlock()
	if keys == nil {
		return nil
	}
	node, ts := r.Header.Get(headerPeerNode), r.Header.Get(headerPeerTime)
	sig, err := hex.DecodeString(r.Header.Get(headerPeerSig))
	if err != nil || node == "" || len(sig) != sha256.Size {
		return fmt.Errorf("%w: no signature", ErrUnauthenticated)
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: bad time", ErrUnauthenticated)
	}
	if d := a.now().Sub(time.UnixMilli(ms)); d > a.skew || -d > a.skew {
		return fmt.Errorf("%w: signed %v away from this node's clock", ErrUnauthenticated, d.Round(time.Millisecond))
	}
	for _, k := range keys {
		if hmac.Equal(sig, a.mac(k, r, ts, node)) {
			return nil
		}
	}
	return fmt.Errorf("%w: the signature matches no key of this node", ErrUnauthenticated)
}

// signingTransport signs every request it carries.
type signingTransport struct {
	auth *peerAuth
	base http.RoundTripper
}

func (t *signingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	t.auth.sign(r)
	return t.base.RoundTrip(r)
}

// PeerTransport returns base (nil: http.DefaultTransport) wrapped so that
// every request it carries is signed with the cluster key: the transport
// for node-to-node requests of other parts of the node (the blob store).
func (n *Node) PeerTransport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &signingTransport{auth: n.auth, base: base}
}

// PeerTLS is the TLS client configuration for peers that serve https
// (Config.PeerTLS), for the other clients of peers (the blob store's).
func (n *Node) PeerTLS() *tls.Config { return n.cfg.PeerTLS }

// VerifyPeer checks that r was signed by a member holding the cluster key
// (always nil when the cluster has none). httpd calls it for every route
// under /internal/.
func (n *Node) VerifyPeer(r *http.Request) error {
	err := n.auth.verify(r)
	if err != nil {
		n.reject(r.Header.Get(headerPeerNode), "unauthenticated", fmt.Sprintf("%s %s from %s: %v", r.Method, r.URL.Path, r.RemoteAddr, err))
	}
	return err
}

// SetClusterKeys replaces the cluster keys of a running node (see
// peerAuth.setKeys): gossip encryption and request signatures alike.
func (n *Node) SetClusterKeys(keys [][]byte) error {
	if err := n.auth.setKeys(keys); err != nil {
		return err
	}
	n.log.Info("cluster keys replaced", "keys", len(keys))
	return nil
}
