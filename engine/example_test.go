package engine_test

import (
	"fmt"
	"log"
	"os"
	"time"

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

// An expired value leaves a marker: Get no longer sees the key, but Head
// still reports the version, and an older copy of the key (from a peer
// that missed the newer write) cannot come back.
func ExampleEngine_Head() {
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

	old := engine.Version{Time: 1 << 16, Node: 1}
	expired := engine.Version{Time: 2 << 16, Node: 1}
	_, _ = e.Apply(engine.Entry{Key: "session", Value: []byte("new"), Version: expired,
		ExpiresAt: time.Now().Add(-time.Second).UnixNano()})
	_, visible := e.Get("session")
	fmt.Println("visible:", visible)
	v, held := e.Head("session")
	fmt.Println("head:", v == expired, held)
	won, _ := e.Apply(engine.Entry{Key: "session", Value: []byte("old"), Version: old})
	fmt.Println("older copy stored:", won)
	// Output:
	// visible: false
	// head: true true
	// older copy stored: false
}
