package blob

import (
	"context"
	"errors"
	"sync"
)

// shardStates asks every holder of m for its shard, in parallel, and
// returns each shard's health (HealthOK, HealthMissing, ...).
func (s *Store) shardStates(ctx context.Context, m *Manifest) []string {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ManifestTimeout)
	defer cancel()
	live := s.liveMap()
	states := make([]string, len(m.Shards))
	var wg sync.WaitGroup
	for i, sh := range m.Shards {
		p, ok := live[sh.Node]
		if !ok {
			states[i] = HealthDown
			continue
		}
		wg.Go(func() {
			var info ShardInfo
			var err error
			if s.isSelf(p) {
				info, err = s.local.Stat(m.ref(i))
				info.Corrupt = s.bad.get(m.ref(i))
			} else {
				info, err = s.client.Stat(ctx, p.HTTPAddr, m.ref(i))
			}
			states[i] = stateOf(info, err)
		})
	}
	wg.Wait()
	return states
}

// stateOf is the health of a shard its holder described as info, or
// failed to with err.
func stateOf(info ShardInfo, err error) string {
	switch {
	case errors.Is(err, ErrNoShard):
		return HealthMissing
	case err != nil:
		return HealthUnknown
	case info.Corrupt > 0:
		return HealthCorrupt
	}
	return HealthOK
}

// blobHealth is the health of blob m whose shards are in the given states,
// and how many node losses it survives now: its sound shards (ok ones)
// are all it can count on.
func blobHealth(m *Manifest, states []string) (health string, survives int) {
	var sound []string
	for i, st := range states {
		if st == HealthOK {
			sound = append(sound, m.Shards[i].Node)
		}
	}
	switch {
	case len(sound) == len(states):
		health = HealthHealthy
	case len(sound) >= m.Data:
		health = HealthDegraded
	default:
		return HealthUnreadable, 0
	}
	return health, tolerates(sound, m.Data)
}

// survey is what the live nodes hold, asked at most once per repair pass
// and only when the pass needs it.
type survey struct {
	s     *Store
	ctx   context.Context
	live  map[string]Peer
	lists map[string]map[ShardRef]ShardInfo // nil: the node did not answer
	asked map[string]bool
}

func (s *Store) newSurvey(ctx context.Context, live map[string]Peer) *survey {
	return &survey{s: s, ctx: ctx, live: live,
		lists: map[string]map[ShardRef]ShardInfo{}, asked: map[string]bool{}}
}

// list returns what node holds, nil when it cannot be had.
func (sv *survey) list(node string) map[ShardRef]ShardInfo {
	if sv.asked[node] {
		return sv.lists[node]
	}
	sv.asked[node] = true
	p := sv.live[node]
	var infos []ShardInfo
	var err error
	if sv.s.isSelf(p) {
		infos, err = sv.s.local.List()
		for i := range infos {
			infos[i].Corrupt = sv.s.bad.get(infos[i].Ref)
		}
	} else {
		ctx, cancel := context.WithTimeout(sv.ctx, sv.s.cfg.ManifestTimeout)
		infos, err = sv.s.client.List(ctx, p.HTTPAddr)
		cancel()
	}
	if err != nil {
		return nil
	}
	byRef := make(map[ShardRef]ShardInfo, len(infos))
	for _, in := range infos {
		if !in.Temp {
			byRef[in.Ref] = in
		}
	}
	sv.lists[node] = byRef
	return byRef
}

// health is the health of blob m as the survey finds its shards.
func (sv *survey) health(m *Manifest) string {
	states := make([]string, len(m.Shards))
	for i, sh := range m.Shards {
		if _, ok := sv.live[sh.Node]; !ok {
			states[i] = HealthDown
			continue
		}
		list := sv.list(sh.Node)
		info, ok := list[m.ref(i)]
		switch {
		case list == nil:
			states[i] = HealthUnknown
		case !ok:
			states[i] = HealthMissing
		default:
			states[i] = stateOf(info, nil)
		}
	}
	h, _ := blobHealth(m, states)
	return h
}
