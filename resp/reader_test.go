package resp

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// chunkReader hands out its data n bytes per Read.
type chunkReader struct {
	data []byte
	n    int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	k := min(r.n, len(p), len(r.data))
	copy(p, r.data[:k])
	r.data = r.data[k:]
	return k, nil
}

// readAll frames every command of data, read chunk bytes at a time, and
// returns them joined by spaces, with the error that stopped it (nil at a
// clean end).
func readAll(data []byte, chunk, maxBulk, maxBytes int) ([]string, *reader, error) {
	rd := newReader(&chunkReader{data: data, n: chunk}, 64, maxBulk, maxBytes)
	var out []string
	for {
		args, err := rd.next()
		if err != nil {
			return out, rd, err
		}
		if args == nil {
			if err := rd.fill(); err != nil {
				if errors.Is(err, io.EOF) {
					return out, rd, nil
				}
				return out, rd, err
			}
			continue
		}
		parts := make([]string, len(args))
		for i, a := range args {
			parts[i] = string(a)
		}
		out = append(out, strings.Join(parts, " "))
	}
}

func TestReaderFramesEveryWay(t *testing.T) {
	big := strings.Repeat("v", 300)
	input := "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$300\r\n" + big + "\r\n" +
		"*1\r\n$4\r\nPING\r\n" +
		"*0\r\n*-1\r\n" + // skipped
		"*2\r\n$3\r\nGET\r\n$0\r\n\r\n" +
		"PING inline\r\n" +
		"\r\n" + // skipped
		"set \"a b\" 'c\\'d' \"\\x41\\n\"\n" +
		"*2\r\n$4\r\nECHO\r\n$2\r\n\r\n\r\n" // a bulk string holding CRLF
	want := []string{"SET k " + big, "PING", "GET ", "PING inline", "set a b c'd A\n", "ECHO \r\n"}
	for _, chunk := range []int{1, 2, 3, 7, 64, 1 << 20} {
		got, _, err := readAll([]byte(input), chunk, 1<<20, 8<<20)
		if err != nil {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("chunk %d:\n got %q\nwant %q", chunk, got, want)
		}
	}
}

// TestReaderProtocolErrors: what Redis refuses is refused with Redis's
// text, and after the commands before it were framed.
func TestReaderProtocolErrors(t *testing.T) {
	for _, tc := range []struct{ in, err string }{
		{"*x\r\n", "Protocol error: invalid multibulk length"},
		{"*1048577\r\n", "Protocol error: invalid multibulk length"},
		{"*-2\r\n", "Protocol error: invalid multibulk length"},
		{"*1\r\n+PING\r\n", "Protocol error: expected '$', got '+'"},
		{"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"},
		{"*1\r\n$1025\r\n", "Protocol error: invalid bulk length"},
		{"*1\r\n$4\nPING\r\n", "Protocol error: invalid bulk length"},
		{"*1\r\n$99999999999999999999\r\n", "Protocol error: invalid bulk length"},
		{"*2\r\n$1000\r\n" + strings.Repeat("a", 1000) + "\r\n$1000\r\n", "Protocol error: the command is larger than the 2000 bytes allowed"},
		{"*1" + strings.Repeat("1", 70000), "Protocol error: invalid multibulk length"},
		{"*1\r\n$" + strings.Repeat("1", 70000), "Protocol error: invalid bulk length"},
		{"*1\r\n$1" + strings.Repeat(" ", 70000), "Protocol error: invalid bulk length"},
		{strings.Repeat("a", 70000), "Protocol error: too big inline request"},
		{"set \"a\n", "Protocol error: unbalanced quotes in request"},
		{"set \"a\"b\n", "Protocol error: unbalanced quotes in request"},
	} {
		for _, chunk := range []int{1, 1 << 20} {
			got, _, err := readAll([]byte("PING\r\n"+tc.in), chunk, 1024, 2000)
			if err == nil || err.Error() != tc.err || !isProtocol(err) {
				t.Errorf("%.40q (chunk %d): error %v, want %q", tc.in, chunk, err, tc.err)
			}
			if len(got) != 1 || got[0] != "PING" {
				t.Errorf("%.40q: framed %q before the error, want the PING", tc.in, got)
			}
		}
	}
}

// TestReaderGrowsWithData: a declared length allocates nothing; the buffer
// grows with the bytes that came, and shrinks back after a large request.
func TestReaderGrowsWithData(t *testing.T) {
	pr, pw := io.Pipe()
	rd := newReader(pr, 64, 1<<20, 8<<20)
	go pw.Write([]byte("*2\r\n$4\r\nECHO\r\n$1000000\r\nabc"))
	if err := rd.fill(); err != nil {
		t.Fatal(err)
	}
	if args, err := rd.next(); args != nil || err != nil {
		t.Fatalf("next: %q %v", args, err)
	}
	if len(rd.buf) > 128 {
		t.Fatalf("buffer of %d bytes for 30 received: it grew with the declared length", len(rd.buf))
	}
	go func() {
		pw.Write(bytes.Repeat([]byte("x"), 1000000-3))
		pw.Write([]byte("\r\n*1\r\n$4\r\nPING\r\n"))
	}()
	var args [][]byte
	for args == nil {
		if err := rd.fill(); err != nil {
			t.Fatal(err)
		}
		var err error
		if args, err = rd.next(); err != nil {
			t.Fatal(err)
		}
	}
	if len(args) != 2 || len(args[1]) != 1000000 || len(rd.buf) > 4<<20 {
		t.Fatalf("got %d args, value %d bytes, buffer %d bytes", len(args), len(args[len(args)-1]), len(rd.buf))
	}
	for {
		if args, _ = rd.next(); args != nil {
			break
		}
		if err := rd.fill(); err != nil {
			t.Fatal(err)
		}
	}
	if string(args[0]) != "PING" {
		t.Fatalf("then %q", args)
	}
	go pw.Write([]byte("PING\r\n"))
	if err := rd.fill(); err != nil {
		t.Fatal(err)
	}
	if len(rd.buf) != 64 {
		t.Errorf("buffer of %d bytes after the large request, want it back to 64", len(rd.buf))
	}
}

// FuzzReader: any bytes, cut into reads anywhere, frame the same commands
// as when they come at once, without a panic, and the buffer stays within
// its bound.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
		"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
		"PING\r\nset \"a b\" 'c'\n",
		"*0\r\n*-1\r\n\r\n",
		"*1\r\n$-1\r\n",
		"*2\r\n$3\r\nGET\r\n$100000\r\n",
		"*99999999\r\n",
		"set \"\\x4",
		"*1\r\n$3\r\nab",
		"\"unbalanced",
	} {
		f.Add([]byte(s), uint8(1))
		f.Add([]byte(s), uint8(5))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		const maxBulk, maxBytes = 512, 4096
		whole, _, errWhole := readAll(bytes.Clone(data), 1<<20, maxBulk, maxBytes)
		parts, rd, errParts := readAll(bytes.Clone(data), int(chunk)%17+1, maxBulk, maxBytes)
		if strings.Join(whole, "\x00|") != strings.Join(parts, "\x00|") {
			t.Fatalf("at once %q, in reads %q", whole, parts)
		}
		if (errWhole == nil) != (errParts == nil) {
			t.Fatalf("at once: %v, in reads: %v", errWhole, errParts)
		}
		if errWhole != nil && !isProtocol(errWhole) {
			t.Fatalf("not a protocol error: %v", errWhole)
		}
		if len(rd.buf) > maxBytes+maxInline {
			t.Fatalf("buffer grew to %d bytes", len(rd.buf))
		}
	})
}
