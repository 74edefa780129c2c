package resp

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/disperse/disperse/cluster"
)

func TestDelExistsType(t *testing.T) {
	n := startNode(t, nil)
	r := n.client(t)
	r.MSet(ctx, "a", "1", "b", "2", "c", "3")
	if got, _ := r.Exists(ctx, "a", "b", "a", "nope").Result(); got != 3 {
		t.Errorf("EXISTS a b a nope: %d, want 3 (a key named twice counts twice)", got)
	}
	if got, _ := r.Type(ctx, "a").Result(); got != "string" {
		t.Errorf("TYPE: %q", got)
	}
	if got, _ := r.Type(ctx, "nope").Result(); got != "none" {
		t.Errorf("TYPE of an absent key: %q", got)
	}
	if got, _ := r.Del(ctx, "a", "b", "nope").Result(); got != 2 {
		t.Errorf("DEL a b nope: %d", got)
	}
	if got, _ := r.Unlink(ctx, "c", "c").Result(); got != 1 {
		t.Errorf("UNLINK c c: %d", got)
	}
	if got, _ := r.Exists(ctx, "a", "b", "c").Result(); got != 0 {
		t.Errorf("after DEL: EXISTS %d", got)
	}
}

func TestExpireFamily(t *testing.T) {
	n := startNode(t, nil)
	r := n.client(t)
	r.Set(ctx, "k", "v", 0)
	if ttl, _ := r.TTL(ctx, "k").Result(); ttl != -1 {
		t.Errorf("TTL without expiry: %v", ttl)
	}
	if ttl, _ := r.TTL(ctx, "nope").Result(); ttl != -2 {
		t.Errorf("TTL of an absent key: %v", ttl)
	}
	if v, _ := r.Do(ctx, "EXPIRETIME", "k").Int(); v != -1 {
		t.Errorf("EXPIRETIME without expiry: %d", v)
	}
	if v, _ := r.Do(ctx, "PEXPIRETIME", "nope").Int(); v != -2 {
		t.Errorf("PEXPIRETIME of an absent key: %d", v)
	}
	if ok, _ := r.Expire(ctx, "nope", time.Minute).Result(); ok {
		t.Error("EXPIRE of an absent key: 1")
	}
	expire := func(args ...any) int {
		t.Helper()
		v, err := r.Do(ctx, args...).Int()
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return v
	}
	// The documented NX/XX/GT/LT cases.
	if expire("EXPIRE", "k", 100, "XX") != 0 {
		t.Error("EXPIRE XX without an expiry: 1")
	}
	if expire("EXPIRE", "k", 100, "GT") != 0 {
		t.Error("EXPIRE GT without an expiry (infinite): 1")
	}
	if expire("EXPIRE", "k", 100, "NX") != 1 {
		t.Error("EXPIRE NX without an expiry: 0")
	}
	if expire("EXPIRE", "k", 200, "NX") != 0 {
		t.Error("EXPIRE NX with an expiry: 1")
	}
	if expire("EXPIRE", "k", 50, "GT") != 0 {
		t.Error("EXPIRE GT with a smaller time: 1")
	}
	if expire("EXPIRE", "k", 300, "GT") != 1 {
		t.Error("EXPIRE GT with a larger time: 0")
	}
	if expire("EXPIRE", "k", 400, "LT") != 0 {
		t.Error("EXPIRE LT with a larger time: 1")
	}
	if expire("EXPIRE", "k", 200, "LT", "XX") != 1 {
		t.Error("EXPIRE LT XX with a smaller time: 0")
	}
	if ttl, _ := r.TTL(ctx, "k").Result(); ttl != 200*time.Second {
		t.Errorf("TTL after EXPIRE 200: %v", ttl)
	}
	r.Set(ctx, "l", "v", 0)
	if expire("EXPIRE", "l", 100, "LT") != 1 {
		t.Error("EXPIRE LT without an expiry: 0")
	}
	if expire("PEXPIRE", "k", 5600) != 1 {
		t.Error("PEXPIRE: 0")
	}
	if ttl, _ := r.TTL(ctx, "k").Result(); ttl != 6*time.Second {
		t.Errorf("TTL after PEXPIRE 5600: %v, want 6s (rounded)", ttl)
	}
	at := time.Now().Add(time.Hour).Unix()
	if expire("EXPIREAT", "k", at) != 1 {
		t.Error("EXPIREAT: 0")
	}
	if v := expire("EXPIRETIME", "k"); int64(v) != at {
		t.Errorf("EXPIRETIME: %d, want %d", v, at)
	}
	if expire("PEXPIREAT", "k", at*1000+123) != 1 {
		t.Error("PEXPIREAT: 0")
	}
	if v := expire("PEXPIRETIME", "k"); int64(v) != at*1000+123 {
		t.Errorf("PEXPIRETIME: %d", v)
	}
	if ok, _ := r.Persist(ctx, "k").Result(); !ok {
		t.Error("PERSIST with an expiry: 0")
	}
	if ok, _ := r.Persist(ctx, "k").Result(); ok {
		t.Error("PERSIST without an expiry: 1")
	}
	if ok, _ := r.Persist(ctx, "nope").Result(); ok {
		t.Error("PERSIST of an absent key: 1")
	}
	// A time in the past deletes the key, and counts as set.
	if expire("EXPIRE", "k", -1) != 1 {
		t.Error("EXPIRE -1: 0")
	}
	if n, _ := r.Exists(ctx, "k").Result(); n != 0 {
		t.Error("EXPIRE -1 did not delete the key")
	}
	r.Set(ctx, "k", "v", 0)
	if expire("EXPIREAT", "k", 1) != 1 || r.Exists(ctx, "k").Val() != 0 {
		t.Error("EXPIREAT 1 did not delete the key")
	}
	// A short one runs out.
	r.Set(ctx, "k", "v", 0)
	expire("PEXPIRE", "k", 30)
	waitFor(t, 5*time.Second, "the key to expire", func() bool { return r.Exists(ctx, "k").Val() == 0 })

	r.Set(ctx, "k", "v", 0)
	for _, tc := range []struct {
		args []any
		err  string
	}{
		{[]any{"EXPIRE", "k", 10, "NX", "XX"}, "ERR NX and XX, GT or LT options at the same time are not compatible"},
		{[]any{"EXPIRE", "k", 10, "GT", "LT"}, "ERR GT and LT options at the same time are not compatible"},
		{[]any{"EXPIRE", "k", 10, "YY"}, "ERR Unsupported option YY"},
		{[]any{"EXPIRE", "k", "ten"}, "ERR value is not an integer or out of range"},
		{[]any{"EXPIRE", "k", "9223372036854775807"}, "ERR invalid expire time in 'expire' command"},
		{[]any{"PEXPIRE", "k", "9223372036854775807"}, "ERR invalid expire time in 'pexpire' command"},
		{[]any{"EXPIRE", "k"}, "ERR wrong number of arguments for 'expire' command"},
	} {
		wantErr(t, fmtArgs(tc.args), r.Do(ctx, tc.args...).Err(), tc.err)
	}
}

func TestScanKeysRandomKey(t *testing.T) {
	n := startNode(t, nil)
	r := n.client(t)
	if _, err := r.RandomKey(ctx).Result(); err == nil {
		t.Error("RANDOMKEY of an empty node: not nil")
	}
	var all []string
	for i := range 250 {
		k := fmt.Sprintf("user:%03d", i)
		if i%5 == 0 {
			k = fmt.Sprintf("item:%03d", i)
		}
		all = append(all, k)
		r.Set(ctx, k, "v", 0)
	}
	slices.Sort(all)
	// An internal key is never listed.
	if _, err := n.node.Put(ctx, cluster.Write{Key: "\x00blob/x", Value: []byte("m")}); err != nil {
		t.Fatal(err)
	}

	// A full SCAN sees every key once; COUNT bounds a page.
	var seen []string
	var cursor uint64
	pages := 0
	for {
		keys, next, err := r.Scan(ctx, cursor, "", 20).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) > 20 {
			t.Fatalf("SCAN COUNT 20 gave %d keys", len(keys))
		}
		seen = append(seen, keys...)
		pages++
		if cursor = next; cursor == 0 {
			break
		}
	}
	slices.Sort(seen)
	if !slices.Equal(seen, all) || pages < 12 {
		t.Errorf("SCAN saw %d keys in %d pages, want %d keys", len(seen), pages, len(all))
	}
	// MATCH, with the iterator go-redis offers.
	var items []string
	it := r.Scan(ctx, 0, "item:*", 7).Iterator()
	for it.Next(ctx) {
		items = append(items, it.Val())
	}
	if it.Err() != nil || len(items) != 50 {
		t.Errorf("SCAN MATCH item:*: %d keys, %v", len(items), it.Err())
	}
	var qs []string
	it = r.Scan(ctx, 0, "user:0?[0-2]", 1000).Iterator()
	for it.Next(ctx) {
		qs = append(qs, it.Val())
	}
	if len(qs) != 20 { // user:0x1 and user:0x2 for x in 0..9 (user:0x0 are item keys)
		t.Errorf("SCAN MATCH user:0?[0-2]: %d keys %v", len(qs), qs)
	}
	if keys, _, _ := r.ScanType(ctx, 0, "", 1000, "hash").Result(); len(keys) != 0 {
		t.Errorf("SCAN TYPE hash: %v", keys)
	}
	if keys, _, _ := r.ScanType(ctx, 0, "", 1000, "string").Result(); len(keys) != 250 {
		t.Errorf("SCAN TYPE string: %d keys", len(keys))
	}
	wantErr(t, "SCAN x", r.Do(ctx, "SCAN", "x").Err(), "ERR invalid cursor")
	wantErr(t, "SCAN unknown cursor", r.Do(ctx, "SCAN", "12345").Err(), "ERR invalid cursor")
	wantErr(t, "SCAN COUNT 0", r.Do(ctx, "SCAN", "0", "COUNT", "0").Err(), "ERR syntax error")
	wantErr(t, "SCAN BOGUS", r.Do(ctx, "SCAN", "0", "BOGUS", "1").Err(), "ERR syntax error")

	// KEYS.
	keys, _ := r.Keys(ctx, "*").Result()
	slices.Sort(keys)
	if !slices.Equal(keys, all) {
		t.Errorf("KEYS *: %d keys", len(keys))
	}
	if keys, _ := r.Keys(ctx, "item:1*").Result(); len(keys) != 20 {
		t.Errorf("KEYS item:1*: %v", keys)
	}
	if keys, _ := r.Keys(ctx, "*\x00*").Result(); len(keys) != 0 {
		t.Errorf("KEYS found an internal key: %q", keys)
	}
	// RANDOMKEY gives existing keys, and not always the same one.
	got := map[string]bool{}
	for range 40 {
		k, err := r.RandomKey(ctx).Result()
		if err != nil || !slices.Contains(all, k) {
			t.Fatalf("RANDOMKEY: %q %v", k, err)
		}
		got[k] = true
	}
	if len(got) < 10 {
		t.Errorf("RANDOMKEY gave only %d different keys in 40 calls", len(got))
	}
	if v, _ := r.DBSize(ctx).Result(); v < 250 {
		t.Errorf("DBSIZE: %d", v)
	}
}

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true}, {"h?llo", "hello", true}, {"h?llo", "hllo", false}, {"h*llo", "heeeello", true},
		{"h[ae]llo", "hallo", true}, {"h[ae]llo", "hillo", false}, {"h[^e]llo", "hallo", true},
		{"h[^e]llo", "hello", false}, {"h[a-b]llo", "hbllo", true}, {"h[a-b]llo", "hcllo", false},
		{`h\*llo`, "h*llo", true}, {`h\*llo`, "hello", false}, {"a*b*c", "aXXbYYc", true}, {"a*b*c", "aXXbYY", false},
		{strings.Repeat("*a", 100) + "b", strings.Repeat("a", 200), false},
	} {
		if got := globMatch([]byte(tc.pattern), []byte(tc.s)); got != tc.want {
			t.Errorf("%q ~ %q: %v", tc.pattern, tc.s, got)
		}
	}
}
