package httpd

import (
	"sync"
	"sync/atomic"
)

// maxCachedContentTypes bounds the content types whose header value is
// shared between answers; further ones are allocated per answer.
const maxCachedContentTypes = 64

// contentTypes hands out the Content-Type header value of a stored value.
// A few types cover most values, so each gets one []string that every
// answer shares (net/http only reads header values), saving an allocation
// per GET. Reads take no lock: the map is replaced whole on insert.
type contentTypes struct {
	m  atomic.Pointer[map[string][]string]
	mu sync.Mutex // serialises inserts
}

// header returns the header value of ct ("" is application/octet-stream).
// The slice must not be modified.
func (t *contentTypes) header(ct string) []string {
	if ct == "" {
		ct = contentTypeDefault
	}
	if m := t.m.Load(); m != nil {
		if v, ok := (*m)[ct]; ok {
			return v
		}
	}
	v := []string{ct}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.m.Load()
	if old != nil && len(*old) >= maxCachedContentTypes {
		return v
	}
	m := make(map[string][]string, 1+lenOf(old))
	if old != nil {
		for k, x := range *old {
			m[k] = x
		}
	}
	m[ct] = v[:1:1]
	t.m.Store(&m)
	return v
}

func lenOf(m *map[string][]string) int {
	if m == nil {
		return 0
	}
	return len(*m)
}
