package cluster_test

import (
	"context"
	"fmt"
	"os"

	"github.com/disperse/disperse/cluster"
	"github.com/disperse/disperse/engine"
)

func ExampleNode_Put() {
	dir, err := os.MkdirTemp("", "disperse-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	eng, err := engine.Open(engine.Config{Dir: dir})
	if err != nil {
		panic(err)
	}
	defer eng.Close()

	cfg := cluster.DefaultConfig()
	cfg.Name = "node-1"
	cfg.GossipPort = 0 // any free port
	node, err := cluster.New(cfg, eng)
	if err != nil {
		panic(err)
	}
	defer node.Close()

	if _, err := node.Put(context.Background(), cluster.Write{Key: "greeting", Value: []byte("hello")}); err != nil {
		panic(err)
	}
	e, ok := node.Get("greeting")
	fmt.Println(string(e.Value), ok)
	for _, m := range node.Members() {
		fmt.Println(m.Name, m.State)
	}
	// Output:
	// hello true
	// node-1 alive
}
