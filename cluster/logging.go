package cluster

import (
	"strings"
	"sync"
	"time"
)

// maxContentTypeBytes bounds a content type received from a peer.
const maxContentTypeBytes = 256

// memberlistLog receives memberlist's log lines: debug lines of the node,
// except that a peer whose gossip this node cannot decrypt (another
// cluster key, or none) is named in one warning a minute.
type memberlistLog struct{ n *Node }

func (w *memberlistLog) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	if keyTroubleText(line) && w.n.rejectLog.allow("gossip-key", w.n.cfg.Now()) {
		w.n.metrics.rejected.WithLabelValues("gossip_key").Inc()
		w.n.log.Warn("gossip from a peer that does not hold this node's cluster key (another key, or none)", "detail", line)
		return len(p), nil
	}
	w.n.log.Debug(line)
	return len(p), nil
}

// keyTrouble reports whether err says the peers' gossip keys differ.
func keyTrouble(err error) bool { return err != nil && keyTroubleText(err.Error()) }

func keyTroubleText(s string) bool {
	s = strings.ToLower(s)
	return strings.Contains(s, "decrypt") || strings.Contains(s, "not encrypted") || strings.Contains(s, "encryption is configured")
}

// rateLimit lets one event per key through per minute.
type rateLimit struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (r *rateLimit) allow(key string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = map[string]time.Time{}
	}
	if t, ok := r.last[key]; ok && now.Sub(t) < time.Minute {
		return false
	}
	if len(r.last) > 1024 {
		clear(r.last)
	}
	r.last[key] = now
	return true
}

// oneLine is err's message on one line ("" for nil).
func oneLine(err error) string {
	if err == nil {
		return ""
	}
	b := []byte(err.Error())
	for i, c := range b {
		if c == '\n' || c == '\r' || c == '\t' {
			b[i] = ' '
		}
	}
	return string(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func slicesDelete(s []string, v string) []string {
	out := s[:0:0]
	for _, x := range s {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}
