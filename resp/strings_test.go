package resp

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

var ctx = context.Background()

// wantErr checks that err is a Redis error reply with exactly msg.
func wantErr(t testing.TB, what string, err error, msg string) {
	t.Helper()
	if err == nil || err.Error() != msg {
		t.Errorf("%s: error %v, want %q", what, err, msg)
	}
}

// wantNil checks that a reply was Redis's null.
func wantNil(t testing.TB, what string, err error) {
	t.Helper()
	if !errors.Is(err, redis.Nil) {
		t.Errorf("%s: %v, want nil reply", what, err)
	}
}

func TestSetAndGet(t *testing.T) {
	n := startNode(t, nil)
	r := n.client(t)
	if v, err := r.Set(ctx, "k", "v1", 0).Result(); err != nil || v != "OK" {
		t.Fatalf("SET: %q %v", v, err)
	}
	if v, _ := r.Get(ctx, "k").Result(); v != "v1" {
		t.Errorf("GET: %q", v)
	}
	_, err := r.Get(ctx, "missing").Result()
	wantNil(t, "GET missing", err)

	// NX and XX.
	if ok, _ := r.SetNX(ctx, "k", "x", 0).Result(); ok {
		t.Error("SET NX of an existing key succeeded")
	}
	if ok, _ := r.SetXX(ctx, "absent", "x", 0).Result(); ok {
		t.Error("SET XX of an absent key succeeded")
	}
	if ok, _ := r.SetXX(ctx, "k", "v2", 0).Result(); !ok {
		t.Error("SET XX of an existing key failed")
	}
	if ok, _ := r.SetNX(ctx, "new", "n", 0).Result(); !ok {
		t.Error("SET NX of an absent key failed")
	}
	// GET option: the old value, or nil.
	if v, err := r.SetArgs(ctx, "k", "v3", redis.SetArgs{Get: true}).Result(); err != nil || v != "v2" {
		t.Errorf("SET GET: %q %v", v, err)
	}
	_, err = r.SetArgs(ctx, "fresh", "f", redis.SetArgs{Get: true}).Result()
	wantNil(t, "SET GET of an absent key", err)
	if v, _ := r.Get(ctx, "fresh").Result(); v != "f" {
		t.Errorf("SET GET did not set: %q", v)
	}
	// NX GET: the old value, nothing set.
	if v, err := r.SetArgs(ctx, "k", "no", redis.SetArgs{Get: true, Mode: "NX"}).Result(); err != nil || v != "v3" {
		t.Errorf("SET NX GET: %q %v", v, err)
	}
	// Expiry options.
	r.Set(ctx, "ex", "v", 100*time.Second)
	if d, _ := r.TTL(ctx, "ex").Result(); d != 100*time.Second {
		t.Errorf("SET EX 100: TTL %v", d)
	}
	r.Set(ctx, "px", "v", 1500*time.Millisecond)
	if d, _ := r.PTTL(ctx, "px").Result(); d <= 1400*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("SET PX 1500: PTTL %v", d)
	}
	at := time.Now().Add(time.Hour).Truncate(time.Second)
	r.SetArgs(ctx, "exat", "v", redis.SetArgs{ExpireAt: at})
	if got, _ := r.ExpireTime(ctx, "exat").Result(); got != time.Duration(at.Unix())*time.Second {
		t.Errorf("SET EXAT: EXPIRETIME %v, want %v", got, at.Unix())
	}
	if err := r.Do(ctx, "SET", "pxat", "v", "PXAT", at.UnixMilli()).Err(); err != nil {
		t.Error(err)
	}
	if got, _ := r.Do(ctx, "PEXPIRETIME", "pxat").Int64(); got != at.UnixMilli() {
		t.Errorf("SET PXAT: PEXPIRETIME %d, want %d", got, at.UnixMilli())
	}
	// KEEPTTL keeps it; a plain SET clears it.
	r.SetArgs(ctx, "ex", "v2", redis.SetArgs{KeepTTL: true})
	if d, _ := r.TTL(ctx, "ex").Result(); d <= 0 {
		t.Errorf("SET KEEPTTL: TTL %v", d)
	}
	r.Set(ctx, "ex", "v3", 0)
	if d, _ := r.TTL(ctx, "ex").Result(); d != -1 {
		t.Errorf("SET without expiry: TTL %v, want -1", d)
	}
	// A short expiry expires.
	r.Set(ctx, "short", "v", 50*time.Millisecond)
	waitFor(t, 5*time.Second, "the key to expire", func() bool { return r.Get(ctx, "short").Err() == redis.Nil })

	// Errors, with Redis's text.
	for _, tc := range []struct {
		args []any
		err  string
	}{
		{[]any{"SET", "k", "v", "NX", "XX"}, "ERR syntax error"},
		{[]any{"SET", "k", "v", "EX", "1", "PX", "1"}, "ERR syntax error"},
		{[]any{"SET", "k", "v", "EX", "1", "KEEPTTL"}, "ERR syntax error"},
		{[]any{"SET", "k", "v", "EX"}, "ERR syntax error"},
		{[]any{"SET", "k", "v", "BOGUS"}, "ERR syntax error"},
		{[]any{"SET", "k", "v", "EX", "0"}, "ERR invalid expire time in 'set' command"},
		{[]any{"SET", "k", "v", "PX", "-5"}, "ERR invalid expire time in 'set' command"},
		{[]any{"SET", "k", "v", "EX", "x"}, "ERR value is not an integer or out of range"},
		{[]any{"SET", "k", "v", "EX", "99999999999999999"}, "ERR invalid expire time in 'set' command"},
		{[]any{"SET", "k"}, "ERR wrong number of arguments for 'set' command"},
		{[]any{"GET"}, "ERR wrong number of arguments for 'get' command"},
		{[]any{"GET", "a", "b"}, "ERR wrong number of arguments for 'get' command"},
		{[]any{"SET", "", "v"}, "ERR empty keys are not allowed"},
		{[]any{"SET", strings.Repeat("k", 1025), "v"}, "ERR the key is 1025 bytes, longer than the 1024 allowed"},
		{[]any{"SET", "a\x00b", "v"}, "ERR keys containing a NUL byte are reserved"},
		{[]any{"SET", "\xff\xfe", "v"}, "ERR keys must be valid UTF-8, as in the REST API"},
		{[]any{"APPEND", "a\xffb", "v"}, "ERR keys must be valid UTF-8, as in the REST API"},
	} {
		wantErr(t, fmtArgs(tc.args), r.Do(ctx, tc.args...).Err(), tc.err)
	}
}

func fmtArgs(args []any) string {
	var b strings.Builder
	for _, a := range args {
		b.WriteString(" ")
		switch v := a.(type) {
		case string:
			b.WriteString(v[:min(len(v), 20)])
		default:
			b.WriteString("?")
		}
	}
	return b.String()
}

func TestSetVariants(t *testing.T) {
	n := startNode(t, nil)
	r := n.client(t)
	if ok, _ := r.Do(ctx, "SETNX", "a", "1").Int(); ok != 1 {
		t.Error("SETNX of an absent key: not 1")
	}
	if ok, _ := r.Do(ctx, "SETNX", "a", "2").Int(); ok != 0 {
		t.Error("SETNX of an existing key: not 0")
	}
	if v, _ := r.Get(ctx, "a").Result(); v != "1" {
		t.Errorf("after SETNX: %q", v)
	}
	if err := r.SetEx(ctx, "e", "v", 10*time.Second).Err(); err != nil {
		t.Error(err)
	}
	if d, _ := r.TTL(ctx, "e").Result(); d != 10*time.Second {
		t.Errorf("SETEX 10: TTL %v", d)
	}
	if err := r.Do(ctx, "PSETEX", "p", "5000", "v").Err(); err != nil {
		t.Error(err)
	}
	if d, _ := r.PTTL(ctx, "p").Result(); d <= 4900*time.Millisecond {
		t.Errorf("PSETEX 5000: PTTL %v", d)
	}
	wantErr(t, "SETEX 0", r.Do(ctx, "SETEX", "e", "0", "v").Err(), "ERR invalid expire time in 'setex' command")
	wantErr(t, "PSETEX -1", r.Do(ctx, "PSETEX", "e", "-1", "v").Err(), "ERR invalid expire time in 'psetex' command")

	// GETSET returns the old value and drops the expiry.
	if v, err := r.GetSet(ctx, "e", "w").Result(); err != nil || v != "v" {
		t.Errorf("GETSET: %q %v", v, err)
	}
	if d, _ := r.TTL(ctx, "e").Result(); d != -1 {
		t.Errorf("after GETSET: TTL %v, want -1", d)
	}
	_, err := r.GetSet(ctx, "none", "x").Result()
	wantNil(t, "GETSET of an absent key", err)

	// GETDEL.
	if v, _ := r.GetDel(ctx, "none").Result(); v != "x" {
		t.Errorf("GETDEL: %q", v)
	}
	_, err = r.GetDel(ctx, "none").Result()
	wantNil(t, "GETDEL again", err)

	// GETEX with each option.
	r.Set(ctx, "g", "gv", 0)
	if v, _ := r.GetEx(ctx, "g", 0).Result(); v != "gv" {
		t.Errorf("GETEX: %q", v)
	}
	if d, _ := r.TTL(ctx, "g").Result(); d != -1 {
		t.Errorf("GETEX without options changed the TTL: %v", d)
	}
	r.Do(ctx, "GETEX", "g", "EX", "100")
	if d, _ := r.TTL(ctx, "g").Result(); d != 100*time.Second {
		t.Errorf("GETEX EX 100: TTL %v", d)
	}
	r.Do(ctx, "GETEX", "g", "PX", "200000")
	if d, _ := r.TTL(ctx, "g").Result(); d != 200*time.Second {
		t.Errorf("GETEX PX 200000: TTL %v", d)
	}
	at := time.Now().Add(time.Hour).Unix()
	r.Do(ctx, "GETEX", "g", "EXAT", at)
	if got, _ := r.Do(ctx, "EXPIRETIME", "g").Int64(); got != at {
		t.Errorf("GETEX EXAT: EXPIRETIME %d, want %d", got, at)
	}
	r.Do(ctx, "GETEX", "g", "PXAT", at*1000+5)
	if got, _ := r.Do(ctx, "PEXPIRETIME", "g").Int64(); got != at*1000+5 {
		t.Errorf("GETEX PXAT: PEXPIRETIME %d", got)
	}
	if v, _ := r.Do(ctx, "GETEX", "g", "PERSIST").Text(); v != "gv" {
		t.Errorf("GETEX PERSIST: %q", v)
	}
	if d, _ := r.TTL(ctx, "g").Result(); d != -1 {
		t.Errorf("GETEX PERSIST: TTL %v", d)
	}
	_, err = r.Do(ctx, "GETEX", "nope", "EX", "10").Result()
	wantNil(t, "GETEX of an absent key", err)
	wantErr(t, "GETEX EX PX", r.Do(ctx, "GETEX", "g", "EX", "1", "PX", "1").Err(), "ERR syntax error")
	wantErr(t, "GETEX EX 0", r.Do(ctx, "GETEX", "g", "EX", "0").Err(), "ERR invalid expire time in 'getex' command")
	wantErr(t, "GETEX FOO", r.Do(ctx, "GETEX", "g", "FOO").Err(), "ERR syntax error")
	if v, _ := r.Do(ctx, "GETEX", "g", "EXAT", "1").Text(); v != "gv" {
		t.Errorf("GETEX EXAT in the past: %q", v)
	}
	if n, _ := r.Exists(ctx, "g").Result(); n != 0 {
		t.Error("GETEX EXAT in the past did not delete the key")
	}
}

func TestMultiKey(t *testing.T) {
	n := startNode(t, nil)
	r := n.client(t)
	if err := r.MSet(ctx, "a", "1", "b", "2").Err(); err != nil {
		t.Fatal(err)
	}
	vals, err := r.MGet(ctx, "a", "nope", "b", "\x00internal").Result()
	if err != nil || len(vals) != 4 || vals[0] != "1" || vals[1] != nil || vals[2] != "2" || vals[3] != nil {
		t.Errorf("MGET: %v %v", vals, err)
	}
	wantErr(t, "MSET odd", r.Do(ctx, "MSET", "a", "1", "b").Err(), "ERR wrong number of arguments for 'mset' command")
	wantErr(t, "MSET with a bad key", r.Do(ctx, "MSET", "x", "1", "", "2").Err(), "ERR empty keys are not allowed")
	if n, _ := r.Exists(ctx, "x").Result(); n != 0 {
		t.Error("MSET with a bad key wrote the good one")
	}
	if ok, _ := r.MSetNX(ctx, "c", "3", "a", "9").Result(); ok {
		t.Error("MSETNX with an existing key succeeded")
	}
	if n, _ := r.Exists(ctx, "c").Result(); n != 0 {
		t.Error("MSETNX that failed left a key")
	}
	if v, _ := r.Get(ctx, "a").Result(); v != "1" {
		t.Errorf("MSETNX that failed changed a: %q", v)
	}
	if ok, _ := r.MSetNX(ctx, "c", "3", "d", "4").Result(); !ok {
		t.Error("MSETNX of absent keys failed")
	}
	if v, _ := r.MGet(ctx, "c", "d").Result(); v[0] != "3" || v[1] != "4" {
		t.Errorf("after MSETNX: %v", v)
	}
}

func TestStringEdits(t *testing.T) {
	n := startNode(t, nil)
	r := n.client(t)
	if l, _ := r.StrLen(ctx, "s").Result(); l != 0 {
		t.Errorf("STRLEN of an absent key: %d", l)
	}
	if l, _ := r.Append(ctx, "s", "Hello").Result(); l != 5 {
		t.Errorf("APPEND to an absent key: %d", l)
	}
	r.Expire(ctx, "s", time.Hour)
	if l, _ := r.Append(ctx, "s", " World").Result(); l != 11 {
		t.Errorf("APPEND: %d", l)
	}
	if d, _ := r.TTL(ctx, "s").Result(); d <= 0 {
		t.Errorf("APPEND dropped the expiry: %v", d)
	}
	if l, _ := r.StrLen(ctx, "s").Result(); l != 11 {
		t.Errorf("STRLEN: %d", l)
	}
	// GETRANGE, as Redis's documentation shows it.
	r.Set(ctx, "mykey", "This is a string", 0)
	for _, tc := range []struct {
		start, end int64
		want       string
	}{{0, 3, "This"}, {-3, -1, "ing"}, {0, -1, "This is a string"}, {10, 100, "string"}, {5, 3, ""}, {-1, -5, ""}, {-100, 2, "Thi"}} {
		if v, _ := r.GetRange(ctx, "mykey", tc.start, tc.end).Result(); v != tc.want {
			t.Errorf("GETRANGE %d %d: %q, want %q", tc.start, tc.end, v, tc.want)
		}
	}
	if v, _ := r.GetRange(ctx, "absent", 0, 10).Result(); v != "" {
		t.Errorf("GETRANGE of an absent key: %q", v)
	}
	// SETRANGE, as documented: overwrite, and zero padding.
	r.Set(ctx, "key1", "Hello World", 0)
	if l, _ := r.SetRange(ctx, "key1", 6, "Redis").Result(); l != 11 {
		t.Errorf("SETRANGE: %d", l)
	}
	if v, _ := r.Get(ctx, "key1").Result(); v != "Hello Redis" {
		t.Errorf("after SETRANGE: %q", v)
	}
	if l, _ := r.SetRange(ctx, "key2", 6, "Redis").Result(); l != 11 {
		t.Errorf("SETRANGE of an absent key: %d", l)
	}
	if v, _ := r.Get(ctx, "key2").Result(); v != "\x00\x00\x00\x00\x00\x00Redis" {
		t.Errorf("SETRANGE padding: %q", v)
	}
	if l, _ := r.SetRange(ctx, "key3", 0, "").Result(); l != 0 {
		t.Errorf("SETRANGE of nothing: %d", l)
	}
	if n, _ := r.Exists(ctx, "key3").Result(); n != 0 {
		t.Error("SETRANGE of nothing created the key")
	}
	wantErr(t, "SETRANGE -1", r.SetRange(ctx, "key1", -1, "x").Err(), "ERR offset is out of range")
	wantErr(t, "SETRANGE past the value limit", r.SetRange(ctx, "key1", 1<<20, "x").Err(), "ERR string exceeds maximum allowed size (proto-max-bulk-len)")
	r.Set(ctx, "big", strings.Repeat("x", 1<<20), 0)
	wantErr(t, "APPEND past the value limit", r.Append(ctx, "big", "x").Err(), "ERR string exceeds maximum allowed size (proto-max-bulk-len)")
}

func TestCounters(t *testing.T) {
	n := startNode(t, nil)
	r := n.client(t)
	if v, _ := r.Incr(ctx, "c").Result(); v != 1 {
		t.Errorf("INCR of an absent key: %d", v)
	}
	if v, _ := r.IncrBy(ctx, "c", 10).Result(); v != 11 {
		t.Errorf("INCRBY: %d", v)
	}
	if v, _ := r.Decr(ctx, "c").Result(); v != 10 {
		t.Errorf("DECR: %d", v)
	}
	if v, _ := r.DecrBy(ctx, "c", 20).Result(); v != -10 {
		t.Errorf("DECRBY: %d", v)
	}
	r.Expire(ctx, "c", time.Hour)
	r.Incr(ctx, "c")
	if d, _ := r.TTL(ctx, "c").Result(); d <= 0 {
		t.Errorf("INCR dropped the expiry: %v", d)
	}
	r.Set(ctx, "s", "abc", 0)
	wantErr(t, "INCR of text", r.Incr(ctx, "s").Err(), "ERR value is not an integer or out of range")
	r.Set(ctx, "z", "007", 0)
	wantErr(t, "INCR of 007", r.Incr(ctx, "z").Err(), "ERR value is not an integer or out of range")
	r.Set(ctx, "m", "9223372036854775807", 0)
	wantErr(t, "INCR at the maximum", r.Incr(ctx, "m").Err(), "ERR increment or decrement would overflow")
	wantErr(t, "INCRBY x", r.Do(ctx, "INCRBY", "c", "x").Err(), "ERR value is not an integer or out of range")
	wantErr(t, "DECRBY min", r.Do(ctx, "DECRBY", "c", "-9223372036854775808").Err(), "ERR decrement would overflow")

	// INCRBYFLOAT, as documented.
	r.Set(ctx, "f", "10.50", 0)
	if v, _ := r.IncrByFloat(ctx, "f", 0.1).Result(); v != 10.6 {
		t.Errorf("INCRBYFLOAT 0.1: %v", v)
	}
	if v, _ := r.Get(ctx, "f").Result(); v != "10.6" {
		t.Errorf("INCRBYFLOAT stored %q", v)
	}
	if v, _ := r.IncrByFloat(ctx, "f", -5).Result(); v != 5.6 {
		t.Errorf("INCRBYFLOAT -5: %v", v)
	}
	r.Set(ctx, "f", "5.0e3", 0)
	if v, _ := r.Do(ctx, "INCRBYFLOAT", "f", "2.0e2").Text(); v != "5200" {
		t.Errorf("INCRBYFLOAT 2.0e2: %q", v)
	}
	wantErr(t, "INCRBYFLOAT of text", r.IncrByFloat(ctx, "s", 1).Err(), "ERR value is not a valid float")
	wantErr(t, "INCRBYFLOAT inf", r.Do(ctx, "INCRBYFLOAT", "f", "inf").Err(), "ERR value is not a valid float")
	r.Set(ctx, "huge", "1.7e308", 0)
	wantErr(t, "INCRBYFLOAT to infinity", r.Do(ctx, "INCRBYFLOAT", "huge", "1.7e308").Err(), "ERR increment would produce NaN or Infinity")
}

// TestIncrAtomic: concurrent INCRs of one key on one node lose nothing.
func TestIncrAtomic(t *testing.T) {
	n := startNode(t, nil)
	r := n.client(t, func(o *redis.Options) { o.PoolSize = 16 })
	const workers, each = 16, 50
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				if err := r.Incr(ctx, "counter").Err(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if v, _ := r.Get(ctx, "counter").Int(); v != workers*each {
		t.Errorf("counter %d after %d INCRs", v, workers*each)
	}
}
