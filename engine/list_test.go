package engine

import (
	"fmt"
	"slices"
	"testing"
)

func TestList(t *testing.T) {
	e := openTest(t, testConfig(t.TempDir()))
	var want []string
	for i := 0; i < 600; i++ { // more than one chunk of the ordered index
		k := fmt.Sprintf("user/%04d", i)
		mustApply(t, e, put(k, "v", ver(1, 0, 1)))
		if i%10 == 3 {
			mustApply(t, e, del(k, ver(2, 0, 1)))
			continue
		}
		want = append(want, k)
	}
	mustApply(t, e, put("zeta", "v", ver(1, 0, 1)), put("alpha", "v", ver(1, 0, 1)))
	mustApply(t, e, put("\x00manifest/a", "m", ver(1, 0, 1)), put("\x00manifest/b", "m", ver(1, 0, 1)))
	local := put("user/local", "v", ver(1, 0, 1))
	local.Local = true
	mustApply(t, e, local)

	// Page through the prefix.
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		keys, next := e.List("user/", after, 100)
		got = append(got, keys...)
		if next == "" {
			break
		}
		if next != keys[len(keys)-1] || pages > 10 {
			t.Fatalf("next %q after %q", next, keys[len(keys)-1])
		}
		after = next
	}
	want = append(want, "user/local")
	if !slices.Equal(got, want) {
		t.Fatalf("paged list has %d keys, want %d", len(got), len(want))
	}
	all, next := e.List("", "", 1000)
	if next != "" || len(all) != len(want)+2 || all[0] != "alpha" || all[len(all)-1] != "zeta" {
		t.Fatalf("List all: %d keys first %q last %q next %q", len(all), all[0], all[len(all)-1], next)
	}
	if !slices.IsSorted(all) {
		t.Fatal("keys not in byte order")
	}
	internal, _ := e.List("\x00", "", 10)
	if !slices.Equal(internal, []string{"\x00manifest/a", "\x00manifest/b"}) {
		t.Fatalf("internal keys %q", internal)
	}
	if keys, next := e.List("user/", "user/0597", 2); !slices.Equal(keys, []string{"user/0598", "user/0599"}) || next != "user/0599" {
		t.Fatalf("List after: %q next %q", keys, next)
	}
	if keys, next := e.List("user/", "user/0599", 2); !slices.Equal(keys, []string{"user/local"}) || next != "" {
		t.Fatalf("List last page: %q next %q", keys, next)
	}
	if keys, _ := e.List("nothing", "", 10); len(keys) != 0 {
		t.Fatalf("List of an absent prefix: %q", keys)
	}
}
