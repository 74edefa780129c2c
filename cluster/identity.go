package cluster

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Files in Config.Dir.
const (
	idFile    = "node-id"    // the node id, 16 hex digits; written once
	stateFile = "state.json" // seen peers and the last sync, rewritten whole
)

// maxRemembered bounds the peers a node remembers.
const maxRemembered = 64

// identity is what a node keeps across restarts in Config.Dir: its id, the
// gossip addresses of the peers it has seen, and when it was last known to
// be in sync with the cluster. Without a Dir nothing is kept and the id is
// new at every start.
type identity struct {
	dir string
	id  uint64

	mu     sync.Mutex
	peers  []string  // gossip host:port, most recently seen first
	synced time.Time // zero: never
	saved  persisted // what the file holds
}

// persisted is the layout of stateFile.
type persisted struct {
	Peers  []string `json:"peers"`
	Synced int64    `json:"synced_unix_ms,omitempty"`
}

// loadIdentity reads dir's identity, creating the id on first use.
func loadIdentity(dir string) (*identity, error) {
	id := &identity{dir: dir}
	if dir == "" {
		id.id = newNodeID()
		return id, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, idFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		id.id = newNodeID()
		if err := writeFileAtomic(dir, idFile, []byte(fmt.Sprintf("%016x\n", id.id))); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("cluster: read node id: %w", err)
	default:
		v, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 16, 64)
		if perr != nil || v == 0 {
			return nil, fmt.Errorf("%w: %s does not hold a node id", ErrConfig, filepath.Join(dir, idFile))
		}
		id.id = v
	}
	b, err = os.ReadFile(filepath.Join(dir, stateFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("cluster: read %s: %w", stateFile, err)
	default:
		var p persisted
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrConfig, filepath.Join(dir, stateFile), err)
		}
		id.saved = p
		id.peers = p.Peers
		if len(id.peers) > maxRemembered {
			id.peers = id.peers[:maxRemembered]
		}
		if p.Synced > 0 {
			id.synced = time.UnixMilli(p.Synced)
		}
	}
	return id, nil
}

// newNodeID is a random non-zero id.
func newNodeID() uint64 {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:]) // never fails (crypto/rand)
		if v := binary.BigEndian.Uint64(b[:]); v != 0 {
			return v
		}
	}
}

// remembered returns the peers' gossip addresses, most recent first.
func (id *identity) remembered() []string {
	id.mu.Lock()
	defer id.mu.Unlock()
	return slices.Clone(id.peers)
}

// lastSynced is when the node was last known to be in sync (zero: never).
func (id *identity) lastSynced() time.Time {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.synced
}

// seen records a peer's gossip address.
func (id *identity) seen(addr string) {
	id.mu.Lock()
	defer id.mu.Unlock()
	if len(id.peers) > 0 && id.peers[0] == addr {
		return
	}
	id.peers = slices.DeleteFunc(id.peers, func(a string) bool { return a == addr })
	id.peers = slices.Insert(id.peers, 0, addr)
	if len(id.peers) > maxRemembered {
		id.peers = id.peers[:maxRemembered]
	}
}

// markSynced records that the node was in sync at t.
func (id *identity) markSynced(t time.Time) {
	id.mu.Lock()
	defer id.mu.Unlock()
	if t.After(id.synced) {
		id.synced = t
	}
}

// save writes the state file if the peers changed or the watermark moved
// by more than slack.
func (id *identity) save(slack time.Duration) error {
	id.mu.Lock()
	p := persisted{Peers: slices.Clone(id.peers)}
	if !id.synced.IsZero() {
		p.Synced = id.synced.UnixMilli()
	}
	same := slices.Equal(p.Peers, id.saved.Peers) && time.Duration(p.Synced-id.saved.Synced)*time.Millisecond <= slack
	id.mu.Unlock()
	if id.dir == "" || same {
		return nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("cluster: encode %s: %w", stateFile, err)
	}
	if err := writeFileAtomic(id.dir, stateFile, b); err != nil {
		return err
	}
	id.mu.Lock()
	id.saved = p
	id.mu.Unlock()
	return nil
}

// writeFileAtomic writes dir/name through a temporary file, fsyncs it,
// renames it into place and fsyncs the directory.
func writeFileAtomic(dir, name string, b []byte) error {
	f, err := os.CreateTemp(dir, name+".tmp-*")
	if err != nil {
		return fmt.Errorf("cluster: write %s: %w", name, err)
	}
	tmp := f.Name()
	_, werr := f.Write(b)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cluster: write %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cluster: write %s: %w", name, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("cluster: sync %s: %w", dir, err)
	}
	serr = d.Sync()
	cerr = d.Close()
	if err := errors.Join(serr, cerr); err != nil {
		return fmt.Errorf("cluster: sync %s: %w", dir, err)
	}
	return nil
}
