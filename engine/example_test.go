package engine_test

import (
	"fmt"
	"log"
	"os"

	"github.com/disperse/disperse/engine"
)

func ExampleEngine_Apply() {
	dir, err := os.MkdirTemp("", "engine-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	e, err := engine.Open(engine.Config{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	v1 := engine.Version{Time: 1 << 16, Node: 1}
	v2 := engine.Version{Time: 2 << 16, Node: 1}
	won, _ := e.Apply(engine.Entry{Key: "greeting", Value: []byte("hello"), Version: v2})
	fmt.Println("first write stored:", won)
	won, _ = e.Apply(engine.Entry{Key: "greeting", Value: []byte("stale"), Version: v1})
	fmt.Println("older write stored:", won)
	ent, ok := e.Get("greeting")
	fmt.Println(string(ent.Value), ok)
	// Output:
	// first write stored: true
	// older write stored: false
	// hello true
}
