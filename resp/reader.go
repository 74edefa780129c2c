package resp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Limits of the request framing that do not depend on the configuration;
// they are Redis's own.
const (
	// maxMultibulk is the most elements a request array may declare.
	maxMultibulk = 1024 * 1024
	// maxInline bounds an inline request line and a header line.
	maxInline = 64 << 10
	// argCost is what each argument is charged against
	// Config.MaxCommandBytes beside its bytes: its slice header and offsets.
	argCost = 32
)

// protocolError is a request the reader cannot frame. The connection
// answers it as "-ERR Protocol error: ..." and is closed, as Redis does.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return "Protocol error: " + e.msg }

func protoErr(format string, a ...any) error {
	return &protocolError{msg: fmt.Sprintf(format, a...)}
}

// span is one argument's place in the buffer, relative to the start of its
// command, so it stays valid when the buffer is compacted or grown.
type span struct{ off, n int }

// reader frames requests out of a byte stream: RESP arrays of bulk strings
// (what every client sends) and inline commands (what a person types into
// telnet). It parses incrementally: a command that arrives over many reads
// is never parsed twice, and its buffer grows only with the bytes that
// actually arrived, never with a length the client declared.
//
// The arguments next returns alias the buffer: they are valid until the
// next call to next or fill.
type reader struct {
	src      io.Reader
	buf      []byte
	r, w     int // unread bytes are buf[r:w]
	initial  int // size of a fresh buffer
	maxBulk  int
	maxBytes int

	// State of the command being parsed; start is its first byte in buf.
	start   int
	pos     int // next byte to parse, relative to start
	want    int // elements the array declared; 0: no array header yet
	bulk    int // declared length of the bulk being read; -1: before its header
	charged int // bytes charged to the command so far
	spans   []span
	args    [][]byte
}

// newReader reads from src with a buffer of initial bytes that grows up to
// maxBytes for one command; a bulk string longer than maxBulk is refused.
func newReader(src io.Reader, initial, maxBulk, maxBytes int) *reader {
	return &reader{src: src, buf: make([]byte, initial), initial: initial,
		maxBulk: maxBulk, maxBytes: maxBytes, bulk: -1}
}

// buffered reports whether unparsed bytes are waiting in the buffer.
func (rd *reader) buffered() bool { return rd.w > rd.r }

// partial reports whether a command has begun but is not complete.
func (rd *reader) partial() bool { return rd.w > rd.r || rd.want > 0 }

// next returns the next complete command in the buffer, or nil when more
// bytes are needed. An empty command (an empty line, "*0") is skipped.
func (rd *reader) next() ([][]byte, error) {
	for rd.r < rd.w {
		if rd.want == 0 {
			if rd.buf[rd.r] != '*' {
				args, ok, err := rd.inline()
				if err != nil || !ok {
					return nil, err
				}
				if len(args) == 0 {
					continue
				}
				return args, nil
			}
			rd.start, rd.pos, rd.charged = rd.r, 0, 0
			n, ok, err := rd.header('*')
			if err != nil || !ok {
				return nil, err
			}
			if n > maxMultibulk || n < -1 {
				return nil, protoErr("invalid multibulk length")
			}
			rd.r = rd.start + rd.pos
			if n <= 0 {
				continue
			}
			rd.want = n
			rd.spans = rd.spans[:0]
		}
		ok, err := rd.elements()
		if err != nil || !ok {
			return nil, err
		}
		return rd.finish(), nil
	}
	return nil, nil
}

// header parses a "*N\r\n" or "$N\r\n" line at start+pos. ok is false when
// the line is not complete yet.
func (rd *reader) header(kind byte) (n int, ok bool, err error) {
	line := rd.buf[rd.start+rd.pos : rd.w]
	if line[0] != kind {
		return 0, false, protoErr("expected '%c', got '%c'", kind, line[0])
	}
	i, neg := 1, false
	if len(line) > 1 && line[1] == '-' {
		i, neg = 2, true
	}
	digits := i
	for ; i < len(line) && line[i] >= '0' && line[i] <= '9'; i++ {
		n = n*10 + int(line[i]-'0')
	}
	switch {
	case i-digits > 18:
		return 0, false, badLength(kind)
	case i+1 >= len(line): // the line goes on, or its "\n" is still to come
		if len(line) > maxInline {
			if kind == '*' {
				return 0, false, protoErr("too big mbulk count string")
			}
			return 0, false, protoErr("too big bulk count string")
		}
		return 0, false, nil
	case i == digits || line[i] != '\r' || line[i+1] != '\n':
		return 0, false, badLength(kind)
	}
	if neg {
		n = -n
	}
	rd.pos += i + 2
	return n, true, nil
}

func badLength(kind byte) error {
	if kind == '*' {
		return protoErr("invalid multibulk length")
	}
	return protoErr("invalid bulk length")
}

// elements reads the bulk strings of the current array; ok is false when
// more bytes are needed.
func (rd *reader) elements() (bool, error) {
	for len(rd.spans) < rd.want {
		if rd.bulk < 0 {
			if rd.start+rd.pos >= rd.w {
				return false, nil
			}
			n, ok, err := rd.header('$')
			if err != nil || !ok {
				return false, err
			}
			if n < 0 || n > rd.maxBulk {
				return false, protoErr("invalid bulk length")
			}
			rd.bulk = n
			if err := rd.charge(n + argCost); err != nil {
				return false, err
			}
		}
		if rd.w-(rd.start+rd.pos) < rd.bulk+2 {
			return false, nil
		}
		rd.spans = append(rd.spans, span{rd.pos, rd.bulk})
		rd.pos += rd.bulk + 2 // the CRLF is skipped unread, as Redis does
		rd.bulk = -1
	}
	return true, nil
}

// charge counts n more bytes against the command's budget.
func (rd *reader) charge(n int) error {
	rd.charged += n
	if rd.charged > rd.maxBytes {
		return protoErr("the command is larger than the %d bytes allowed", rd.maxBytes)
	}
	return nil
}

// finish turns the spans of a complete array into arguments and resets the
// parse state.
func (rd *reader) finish() [][]byte {
	rd.args = rd.args[:0]
	for _, s := range rd.spans {
		off := rd.start + s.off
		rd.args = append(rd.args, rd.buf[off:off+s.n:off+s.n])
	}
	rd.r = rd.start + rd.pos
	rd.want, rd.pos, rd.bulk = 0, 0, -1
	return rd.args
}

// inline parses one inline command line at r: arguments separated by
// blanks, with Redis's double and single quotes.
func (rd *reader) inline() ([][]byte, bool, error) {
	line := rd.buf[rd.r:rd.w]
	i := bytes.IndexByte(line, '\n')
	if i < 0 {
		if len(line) > maxInline {
			return nil, false, protoErr("too big inline request")
		}
		return nil, false, nil
	}
	rd.r += i + 1
	line = line[:i]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	args, err := splitArgs(line, rd.args[:0])
	if err != nil {
		return nil, false, err
	}
	rd.args = args
	return args, true, nil
}

// splitArgs splits an inline line like Redis's sdssplitargs. Quoted
// arguments are unescaped in place (they only ever shrink).
func splitArgs(line []byte, args [][]byte) ([][]byte, error) {
	i := 0
	for {
		for i < len(line) && isBlank(line[i]) {
			i++
		}
		if i == len(line) {
			return args, nil
		}
		switch line[i] {
		case '"', '\'':
			arg, n, err := unquote(line[i:])
			if err != nil {
				return nil, err
			}
			args = append(args, arg)
			i += n
		default:
			j := i
			for j < len(line) && !isBlank(line[j]) {
				j++
			}
			args = append(args, line[i:j:j])
			i = j
		}
	}
}

func isBlank(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
}

var errUnbalanced = protoErr("unbalanced quotes in request")

// unquote reads a quoted argument at the start of b, writing the unescaped
// bytes over b itself, and returns it and how many bytes of b it took. The
// closing quote must be followed by a blank or the end of the line.
func unquote(b []byte) ([]byte, int, error) {
	q, out := b[0], 0
	for i := 1; i < len(b); i++ {
		c := b[i]
		switch {
		case c == q:
			if i+1 < len(b) && !isBlank(b[i+1]) {
				return nil, 0, errUnbalanced
			}
			return b[:out:out], i + 1, nil
		case c == '\\' && i+1 < len(b):
			i++
			c = b[i]
			if q == '"' {
				switch c {
				case 'n':
					c = '\n'
				case 'r':
					c = '\r'
				case 't':
					c = '\t'
				case 'b':
					c = '\b'
				case 'a':
					c = '\a'
				case 'x':
					if i+2 < len(b) && isHex(b[i+1]) && isHex(b[i+2]) {
						c = unhex(b[i+1])<<4 | unhex(b[i+2])
						i += 2
					}
				}
			} else if c != '\'' {
				b[out] = '\\'
				out++
			}
		}
		b[out] = c
		out++
	}
	return nil, 0, errUnbalanced
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// fill reads more bytes from src. The unparsed bytes are moved to the front
// first; the buffer doubles, up to what one command may take, only when it
// is full of one unfinished command. A buffer that grew is given back once
// it is empty.
func (rd *reader) fill() error {
	if rd.r == rd.w && rd.want == 0 && len(rd.buf) > rd.initial {
		rd.buf = make([]byte, rd.initial) // drop a grown buffer
		rd.r, rd.w = 0, 0
	}
	begin := rd.r
	if rd.want > 0 {
		begin = rd.start
	}
	if begin > 0 && (rd.w == len(rd.buf) || begin >= len(rd.buf)/2) {
		n := copy(rd.buf, rd.buf[begin:rd.w])
		rd.r -= begin
		rd.start -= begin
		rd.w = n
		if rd.start < 0 {
			rd.start = 0
		}
	}
	if rd.w == len(rd.buf) {
		limit := rd.maxBytes + maxInline
		if len(rd.buf) >= limit {
			return protoErr("the command is larger than the %d bytes allowed", rd.maxBytes)
		}
		nb := make([]byte, min(2*len(rd.buf), limit))
		copy(nb, rd.buf[:rd.w])
		rd.buf = nb
	}
	n, err := rd.src.Read(rd.buf[rd.w:])
	rd.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// isProtocol reports whether err is a framing error of the client's.
func isProtocol(err error) bool {
	var pe *protocolError
	return errors.As(err, &pe)
}
