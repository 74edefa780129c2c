package cluster

import (
	"errors"
	"math/rand/v2"
	"time"
)

// joinTargets are cfg.Join and the remembered peers, this node excluded.
func (n *Node) joinTargets() []string {
	seen := map[string]bool{}
	var out []string
	for _, a := range append(append([]string{}, n.cfg.Join...), n.id.remembered()...) {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// joinLoop joins the targets at start and, whenever the node has no live
// peer, again: every target is tried (left members included), with
// backoff from 200ms to 5s. A seed node's restart therefore never splits
// the cluster: it finds its peers whether or not it was given --join.
func (n *Node) joinLoop(initial []string) {
	defer n.wg.Done()
	if !n.waitStarted() {
		return
	}
	wait, warned := 200*time.Millisecond, false
	targets := initial
	for {
		if len(n.mem.live()) == 0 {
			targets = n.joinTargets()
		} else {
			targets, wait, warned = nil, 200*time.Millisecond, false
		}
		self := n.GossipAddr()
		targets = slicesDelete(targets, self)
		if len(targets) > 0 {
			got, err := n.ml.Join(targets)
			switch {
			case errors.Is(err, ErrNameTaken) || n.FatalErr() != nil:
				return
			case got > 0:
				n.log.Info("joined cluster", "contacted", got)
				wait, warned = 200*time.Millisecond, false
			case !warned && keyTrouble(err):
				n.log.Warn("peers refused this node's gossip: they use another cluster key, or none (check --cluster-key on every node); retrying",
					"peers", targets, "err", oneLine(err))
				warned = true
			case !warned:
				n.log.Warn("no peer answered; retrying in the background", "peers", targets, "err", oneLine(err))
				warned = true
			default:
				n.log.Debug("join failed", "peers", targets, "err", oneLine(err))
			}
		}
		select {
		case <-n.closed:
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// rejoinDead tries to join one member held as dead: memberlist stops
// talking to a dead node, so without it two sides of a healed partition
// would stay apart.
func (n *Node) rejoinDead() {
	dead := n.mem.deadAddrs()
	if len(dead) == 0 {
		return
	}
	addr := dead[rand.IntN(len(dead))]
	if _, err := n.ml.Join([]string{addr}); err != nil {
		n.log.Debug("reconnect to dead member failed", "addr", addr, "err", oneLine(err))
	}
}
