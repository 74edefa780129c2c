package sockio

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pair returns a server side accepted through Listen and the client side
// dialled to it, both closed at the end of the test.
func pair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Listen(raw)
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	if _, ok := server.(*Conn); !ok && supported {
		t.Fatalf("Listen accepted a %T, want a *sockio.Conn", server)
	}
	return server, client
}

// TestLargeWriteReachesASlowReader writes more than the socket buffers hold
// while the peer reads in small pieces: the write must wait for room
// (EAGAIN) and go out in pieces of maxRawWrite at most, every byte in order.
func TestLargeWriteReachesASlowReader(t *testing.T) {
	server, client := pair(t)
	want := make([]byte, 8<<20+13)
	for i := range want {
		want[i] = byte(rand.IntN(256))
	}
	got := make(chan []byte, 1)
	go func() {
		var buf bytes.Buffer
		p := make([]byte, 7001) // small reads: the writer keeps finding the buffer full
		for buf.Len() < len(want) {
			n, err := client.Read(p)
			buf.Write(p[:n])
			if err != nil {
				break
			}
		}
		got <- buf.Bytes()
	}()
	n, err := server.Write(want)
	if err != nil || n != len(want) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(want))
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("the reader got %d bytes that differ from the %d written", len(b), len(want))
	}
}

// TestReadSeesWhatArrivesInPieces reads a stream sent in pieces of every
// size, including pieces that arrive while Read waits for readiness.
func TestReadSeesWhatArrivesInPieces(t *testing.T) {
	server, client := pair(t)
	var want bytes.Buffer
	go func() {
		for i := 1; i <= 300; i++ {
			client.Write(bytes.Repeat([]byte{byte(i)}, i))
			if i%50 == 0 {
				time.Sleep(2 * time.Millisecond)
			}
		}
		client.Close()
	}()
	for i := 1; i <= 300; i++ {
		want.Write(bytes.Repeat([]byte{byte(i)}, i))
	}
	got, err := io.ReadAll(server)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("read %d bytes that differ from the %d sent", len(got), want.Len())
	}
	if n, err := server.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("Read after the end = %d, %v; want 0, io.EOF", n, err)
	}
	if n, err := server.Read(nil); n != 0 || err != nil {
		t.Fatalf("Read of nothing = %d, %v; want 0, nil", n, err)
	}
}

// TestDeadlinesAndCloseStayWithThePoller: a read past its deadline fails
// as a net.TCPConn's does, and Close from another goroutine ends a Read.
func TestDeadlinesAndCloseStayWithThePoller(t *testing.T) {
	server, _ := pair(t)
	server.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := server.Read(make([]byte, 10))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Read past the deadline: %v; want a timeout wrapping os.ErrDeadlineExceeded", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("Read past the deadline: %T %v; want a *net.OpError of op read", err, err)
	}
	server.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := server.Read(make([]byte, 10))
		done <- err
	}()
	server.Close() // whether the Read waits already or starts after it
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read ended by Close: %v; want net.ErrClosed", err)
	}
}

// TestWriteToAGonePeerFails: writing to a peer that reset the connection
// fails with the system's error, not silently.
func TestWriteToAGonePeerFails(t *testing.T) {
	server, client := pair(t)
	client.(*net.TCPConn).SetLinger(0) // close with a reset
	client.Close()
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for err == nil && time.Now().Before(deadline) {
		_, err = server.Write(make([]byte, 64<<10))
	}
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("Write to a reset peer: %v; want ECONNRESET or EPIPE", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "write" || oe.Addr == nil {
		t.Fatalf("Write to a reset peer: %T %v; want a *net.OpError of op write with the peer's address", err, err)
	}
}

// TestReadFromAResetPeerFails: a Read on a connection the peer reset
// returns the system's error and a count of zero. A negative count (the -1
// of a failed read(2)) makes bufio, and with it net/http, panic.
func TestReadFromAResetPeerFails(t *testing.T) {
	server, client := pair(t)
	if _, err := client.Write([]byte("unread")); err != nil {
		t.Fatal(err)
	}
	client.(*net.TCPConn).SetLinger(0)
	client.Close() // unread data on the peer's side: a reset, not an end
	buf := make([]byte, 64)
	var n int
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for err == nil && time.Now().Before(deadline) {
		n, err = server.Read(buf)
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Read from a reset peer: %d, %v; want ECONNRESET", n, err)
	}
	if n != 0 {
		t.Fatalf("Read from a reset peer returned %d bytes with its error; want 0", n)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("Read from a reset peer: %T %v; want a *net.OpError of op read", err, err)
	}
}

// TestReadAndWriteAtOnce runs a Read and a Write on one Conn together, as
// an HTTP server does (its background read of the next request while the
// handler writes). Under -race a state shared between the two fails it.
func TestReadAndWriteAtOnce(t *testing.T) {
	server, client := pair(t)
	const rounds, size = 200, 3000
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { // the client echoes nothing; it sends and drains
		defer wg.Done()
		for i := 0; i < rounds; i++ {
			client.Write(bytes.Repeat([]byte{'c'}, size))
		}
	}()
	var fromClient, fromServer int
	drain := func(c net.Conn, got *int) {
		defer wg.Done()
		p := make([]byte, 4096)
		for *got < rounds*size {
			n, err := c.Read(p)
			if err != nil {
				t.Errorf("Read: %v", err)
				return
			}
			*got += n
		}
	}
	go drain(server, &fromClient)
	go drain(client, &fromServer)
	for i := 0; i < rounds; i++ {
		if _, err := server.Write(bytes.Repeat([]byte{'s'}, size)); err != nil {
			t.Fatalf("server Write: %v", err)
		}
	}
	wg.Wait()
	if fromClient != rounds*size || fromServer != rounds*size {
		t.Fatalf("server read %d and client read %d bytes; want %d each", fromClient, fromServer, rounds*size)
	}
}

// TestWrapLeavesOtherConnsAlone: a connection that is not a TCP socket is
// returned as it is.
func TestWrapLeavesOtherConnsAlone(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := Wrap(a); got != a {
		t.Fatalf("Wrap(net.Pipe end) = %T, want the conn itself", got)
	}
}

// TestReadAndWriteAllocateNothing: the callbacks are bound once, so a Read
// or a Write on the hot path costs no allocation.
func TestReadAndWriteAllocateNothing(t *testing.T) {
	server, client := pair(t)
	if !supported {
		t.Skip("no raw system calls here")
	}
	msg, p := []byte("+OK\r\n"), make([]byte, 64)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := server.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(client, p[:len(msg)]); err != nil {
			t.Fatal(err)
		}
		if _, err := client.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := server.Read(p); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations a round trip, want 0", allocs)
	}
}
