package cluster

import (
	"fmt"
	"testing"

	"github.com/disperse/disperse/engine"
)

func TestPeerQueueBoundAndBatches(t *testing.T) {
	p := &peer{max: 100, wake: make(chan struct{}, 1)}
	e := engine.Entry{Key: "k", Value: make([]byte, 1000)}
	for i := range 100 {
		e.Key = fmt.Sprintf("k-%03d", i)
		if !p.push(e) {
			t.Fatalf("push %d refused below the bound", i)
		}
	}
	if p.push(e) {
		t.Fatal("push accepted beyond the bound")
	}
	one := entrySize(&e)
	batch, _ := p.take(10 * one)
	if len(batch) != 10 || batch[0].Key != "k-000" || batch[9].Key != "k-009" {
		t.Fatalf("first batch: %d entries from %q", len(batch), batch[0].Key)
	}
	if p.depth() != 90 || p.bytes() != 90*one {
		t.Fatalf("after a batch: depth %d bytes %d, want 90 and %d", p.depth(), p.bytes(), 90*one)
	}
	if !p.push(e) {
		t.Fatal("push refused after the queue drained below the bound")
	}
	batch, _ = p.take(1 << 30)
	if len(batch) != 91 || batch[0].Key != "k-010" || p.depth() != 0 || p.bytes() != 0 {
		t.Fatalf("draining take: %d entries from %q, depth %d, bytes %d", len(batch), batch[0].Key, p.depth(), p.bytes())
	}
	big := engine.Entry{Key: "big", Value: make([]byte, 1<<20)}
	p.push(big)
	if batch, _ = p.take(1024); len(batch) != 1 {
		t.Fatalf("an entry larger than a batch must still go alone, got %d", len(batch))
	}
}
