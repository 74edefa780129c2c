package cluster

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/disperse/disperse/engine"
)

// Handler serves the sync routes (SyncPathPrefix) to peers.
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+pathTree, n.serveTree)
	mux.HandleFunc("POST "+pathLeaves, n.serveLeaves)
	mux.HandleFunc("POST "+pathPull, n.servePull)
	mux.HandleFunc("POST "+pathPush, n.servePush)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := n.VerifyPeer(r); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if n.cfg.Faults.Cut(r.Header.Get(headerFrom), n.cfg.Name) {
			http.Error(w, "link cut by fault injection", http.StatusServiceUnavailable)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// readRequest reads a bounded request body.
func readRequest(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, false
	}
	return b, true
}

func (n *Node) setSyncedHeader(w http.ResponseWriter) {
	if t := n.id.lastSynced(); !t.IsZero() {
		w.Header().Set(headerSynced, strconv.FormatInt(t.UnixMilli(), 10))
	}
}

func (n *Node) serveTree(w http.ResponseWriter, r *http.Request) {
	b, ok := readRequest(w, r)
	if !ok {
		return
	}
	from, level, nodes, err := decodeIndices(b)
	if err != nil || level >= treeLevels || len(nodes) > 1<<(fanoutBits*level) {
		n.reject(from, "bad_message", fmt.Sprintf("tree request: %v", err))
		http.Error(w, "bad tree request", http.StatusBadRequest)
		return
	}
	t := buildTree(n.store.LeafDigests())
	var hashes []uint64
	if len(nodes) == 0 {
		hashes = t[level]
	} else {
		hashes = t.children(level, nodes)
	}
	out := make([]byte, 0, 8*len(hashes))
	for _, h := range hashes {
		out = binary.BigEndian.AppendUint64(out, h)
	}
	n.setSyncedHeader(w)
	w.Write(out)
}

func (n *Node) serveLeaves(w http.ResponseWriter, r *http.Request) {
	b, ok := readRequest(w, r)
	if !ok {
		return
	}
	from, level, leaves, err := decodeIndices(b)
	if err != nil || level != treeLevels || len(leaves) > leavesPerRound {
		n.reject(from, "bad_message", fmt.Sprintf("leaves request: %v", err))
		http.Error(w, "bad leaves request", http.StatusBadRequest)
		return
	}
	offer := n.offerFilter()
	out := make([][]slotRef, len(leaves))
	for i, leaf := range leaves {
		for _, e := range n.store.LeafEntries(leaf) {
			if offer(&e) {
				out[i] = append(out[i], slotRef{keyHash(e.Key), e.Version})
			}
		}
	}
	n.setSyncedHeader(w)
	w.Write(encodeLeaves(out))
}

func (n *Node) servePull(w http.ResponseWriter, r *http.Request) {
	b, ok := readRequest(w, r)
	if !ok {
		return
	}
	from, want, err := decodeWant(b)
	if err != nil {
		n.reject(from, "bad_message", fmt.Sprintf("pull request: %v", err))
		http.Error(w, "bad pull request", http.StatusBadRequest)
		return
	}
	offer := n.offerFilter()
	n.setSyncedHeader(w)
	fw := newFrameWriter(w, n.cfg.BatchBytes)
	for leaf, hashes := range want {
		set := make(map[uint64]bool, len(hashes))
		for _, h := range hashes {
			set[h] = true
		}
		for _, e := range n.store.LeafEntries(leaf) {
			if set[keyHash(e.Key)] && offer(&e) && !e.Evicted {
				if err := fw.add(&e); err != nil {
					return // the peer went away
				}
			}
		}
	}
	fw.flush()
}

func (n *Node) servePush(w http.ResponseWriter, r *http.Request) {
	from := r.Header.Get(headerFrom)
	if len(from) > maxNameBytes {
		from = from[:maxNameBytes]
	}
	err := readFrames(r.Body, n.frameLimit(), func(ents []engine.Entry) error {
		n.applyRemote(header{from: from}, ents, true)
		return nil
	})
	if err != nil {
		n.reject(from, "bad_message", fmt.Sprintf("push: %v", err))
		http.Error(w, "bad push", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// offerFilter says which entries this node offers to a peer: all of them
// while it is fresh; none older than the tombstone horizon while it is
// stale (see doc.go, "Tombstones").
func (n *Node) offerFilter() func(*engine.Entry) bool {
	if n.fresh() {
		return func(*engine.Entry) bool { return true }
	}
	horizon := n.horizon()
	return func(e *engine.Entry) bool { return e.Version.Time >= horizon }
}
