package wal_test

import (
	"fmt"
	"os"

	"github.com/disperse/disperse/wal"
)

func ExampleLog() {
	dir, err := os.MkdirTemp("", "wal-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	l, err := wal.Open(dir, &wal.Options{SegmentBytes: 1 << 20})
	if err != nil {
		panic(err)
	}
	for _, p := range []string{"set a=1", "set b=2", "del a"} {
		if _, err := l.Append([]byte(p)); err != nil {
			panic(err)
		}
	}
	if err := l.Close(); err != nil {
		panic(err)
	}

	// After a restart: replay what a snapshot at sequence number 1 lacks.
	l, err = wal.Open(dir, &wal.Options{SegmentBytes: 1 << 20})
	if err != nil {
		panic(err)
	}
	defer l.Close()
	err = l.Replay(1, func(seq uint64, p []byte) error {
		fmt.Printf("%d %s\n", seq, p)
		return nil
	})
	fmt.Println(err, l.LastSeq())
	// Output:
	// 2 set b=2
	// 3 del a
	// <nil> 3
}
