package resp

import (
	"io"
	"math"
	"strconv"
)

// writer encodes replies into a buffer that goes out when the connection
// has no complete request left to serve, or as soon as it passes flushAt
// bytes, so a deep pipeline or a large value never grows it without bound.
// A bulk string larger than flushAt is written straight from the value.
//
// proto is 2 or 3: the same calls encode a null, a map, a set or a double
// as RESP2 or RESP3 spells it.
type writer struct {
	dst     io.Writer
	buf     []byte
	flushAt int
	proto   int
	err     error // the first write error; later writes are dropped
	// beforeWrite, if set, runs before each write to dst (a deadline).
	beforeWrite func()
}

func newWriter(dst io.Writer, flushAt int) *writer {
	return &writer{dst: dst, buf: make([]byte, 0, flushAt+512), flushAt: flushAt, proto: 2}
}

// flush sends the buffer.
func (w *writer) flush() error {
	if len(w.buf) > 0 && w.err == nil {
		w.write(w.buf)
	}
	w.buf = w.buf[:0]
	return w.err
}

func (w *writer) write(b []byte) {
	if w.err != nil {
		return
	}
	if w.beforeWrite != nil {
		w.beforeWrite()
	}
	_, w.err = w.dst.Write(b)
}

// maybeFlush sends the buffer once it passes flushAt.
func (w *writer) maybeFlush() {
	if len(w.buf) >= w.flushAt {
		w.flush()
	}
}

func (w *writer) line(prefix byte, s string) {
	w.buf = append(w.buf, prefix)
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, '\r', '\n')
	w.maybeFlush()
}

func (w *writer) header(prefix byte, n int64) {
	w.buf = append(w.buf, prefix)
	w.buf = strconv.AppendInt(w.buf, n, 10)
	w.buf = append(w.buf, '\r', '\n')
}

// simple writes a simple string (+OK).
func (w *writer) simple(s string) { w.line('+', s) }

// ok writes +OK.
func (w *writer) ok() { w.buf = append(w.buf, "+OK\r\n"...); w.maybeFlush() }

// errorLine writes an error reply; msg starts with its code (ERR,
// WRONGTYPE, NOAUTH ...). Line breaks in it would break the framing and
// become spaces.
func (w *writer) errorLine(msg string) {
	w.buf = append(w.buf, '-')
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		w.buf = append(w.buf, c)
	}
	w.buf = append(w.buf, '\r', '\n')
	w.maybeFlush()
}

// integer writes :n.
func (w *writer) integer(n int64) { w.header(':', n); w.maybeFlush() }

// bulk writes a bulk string.
func (w *writer) bulk(b []byte) {
	w.header('$', int64(len(b)))
	if len(b) > w.flushAt {
		w.flush()
		w.write(b)
	} else {
		w.buf = append(w.buf, b...)
	}
	w.buf = append(w.buf, '\r', '\n')
	w.maybeFlush()
}

// bulkString writes a bulk string.
func (w *writer) bulkString(s string) {
	w.header('$', int64(len(s)))
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, '\r', '\n')
	w.maybeFlush()
}

// bulkInt writes n as a bulk string.
func (w *writer) bulkInt(n int64) {
	var b [20]byte
	w.bulk(strconv.AppendInt(b[:0], n, 10))
}

// null writes the null of a missing value: $-1 in RESP2, _ in RESP3.
func (w *writer) null() {
	if w.proto == 3 {
		w.buf = append(w.buf, "_\r\n"...)
	} else {
		w.buf = append(w.buf, "$-1\r\n"...)
	}
	w.maybeFlush()
}

// nullArray writes the null of a missing array: *-1 in RESP2, _ in RESP3.
func (w *writer) nullArray() {
	if w.proto == 3 {
		w.buf = append(w.buf, "_\r\n"...)
	} else {
		w.buf = append(w.buf, "*-1\r\n"...)
	}
	w.maybeFlush()
}

// array starts an array of n elements.
func (w *writer) array(n int) { w.header('*', int64(n)) }

// set starts a set of n elements (an array in RESP2).
func (w *writer) set(n int) {
	if w.proto == 3 {
		w.header('~', int64(n))
	} else {
		w.header('*', int64(n))
	}
}

// mapOf starts a map of n pairs (an array of 2n elements in RESP2).
func (w *writer) mapOf(n int) {
	if w.proto == 3 {
		w.header('%', int64(n))
	} else {
		w.header('*', 2*int64(n))
	}
}

// double writes a floating-point reply: a RESP3 double, or in RESP2 a bulk
// string, formatted as Redis does (no exponent, no trailing zeros).
func (w *writer) double(f float64) {
	if w.proto != 3 {
		w.bulk(formatFloat(nil, f))
		return
	}
	w.buf = append(w.buf, ',')
	switch {
	case math.IsInf(f, 1):
		w.buf = append(w.buf, "inf"...)
	case math.IsInf(f, -1):
		w.buf = append(w.buf, "-inf"...)
	case math.IsNaN(f):
		w.buf = append(w.buf, "nan"...)
	default:
		w.buf = formatFloat(w.buf, f)
	}
	w.buf = append(w.buf, '\r', '\n')
	w.maybeFlush()
}

// formatFloat appends f as Redis prints INCRBYFLOAT results: fixed point,
// the shortest digits that read back as f.
func formatFloat(b []byte, f float64) []byte {
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

// verbatim writes text: a RESP3 verbatim string of format "txt", or a bulk
// string in RESP2 (INFO, CLIENT INFO).
func (w *writer) verbatim(s string) {
	if w.proto != 3 {
		w.bulkString(s)
		return
	}
	w.header('=', int64(len(s)+4))
	w.buf = append(w.buf, "txt:"...)
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, '\r', '\n')
	w.maybeFlush()
}

// boolean writes a RESP3 boolean, or in RESP2 the integer 1 or 0.
func (w *writer) boolean(v bool) {
	if w.proto == 3 {
		if v {
			w.buf = append(w.buf, "#t\r\n"...)
		} else {
			w.buf = append(w.buf, "#f\r\n"...)
		}
		w.maybeFlush()
		return
	}
	if v {
		w.integer(1)
	} else {
		w.integer(0)
	}
}
