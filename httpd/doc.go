// Package httpd is the HTTP face of a Disperse node: the gin routes and
// middleware that implement the contract of API.md. It parses and checks
// requests, calls the node through small interfaces (Cache, Members,
// Blobs) and turns results and errors into answers. It holds no storage
// logic of its own.
//
// # Routes
//
//	PUT    /cache/{key}        store a value (JSON form or raw body)
//	GET    /cache/{key}        the value, its Content-Type, ETag, X-Expires-At
//	HEAD   /cache/{key}        the same headers with Content-Length, no body
//	DELETE /cache/{key}        204, also when the key was absent
//	GET    /cache?prefix=&limit=&after=   {"keys": [...], "next": "K" or ""}
//	GET    /cluster/members    [{"name","addr","gossip_port","http_addr","state"}]
//	GET    /healthz            200 while the process runs
//	GET    /readyz             200 once Config.Ready reports true, else 503; with its reason
//	GET    /metrics            Prometheus text format of Config.Gatherer
//	/blob/...                  only when Config.Blobs is set (blob.go)
//
// {key} is the rest of the path after /cache/, URL-decoded, so it may
// contain '/'. It is 1..MaxKeyBytes bytes of UTF-8 and holds no NUL byte
// (keys that start with NUL are the node's own and never listed; keys that
// are not UTF-8, stored before they were refused, are skipped by listings,
// whose cursor is always a key they gave, so a listing always goes on).
// Values are answered with X-Content-Type-Options: nosniff.
//
// # Conditional requests
//
// If-Match and If-None-Match ("*" or one entity tag: a key's version, a
// blob's quoted sha256) make PUT and DELETE conditional: the condition is
// checked together with the write on this node (the cache's Precondition,
// the blob manifest's compare-and-set), 412 precondition_failed when it
// fails. On GET and HEAD an If-Match naming another tag is 412, an
// If-None-Match naming the current one 304.
//
// # Writing a value
//
// With Content-Type application/json the body is the original Disperse
// form, {"value": "text", "duration": "9000000000000"}: value is a JSON
// string (required, may be empty) stored as text/plain; charset=utf-8;
// duration is nanoseconds as a digit string or JSON integer, or a Go
// duration with a unit ("90s", "1h30m"); absent, null or 0 means no expiry.
// Unknown fields are ignored. With any other Content-Type the body is the
// value byte for byte, the Content-Type is kept (none is served as
// application/octet-stream), and ?ttl= gives the expiry in the same syntax.
// The expiry is stored as an absolute time, now (Config.Now) plus the
// duration. X-Is-Sync: true makes the write or delete node-local.
//
// Bodies are read through a limit: a value over MaxValueBytes is refused
// with 413 before or while it is read, never after reading it whole.
//
// # Errors
//
// Handlers return errors; writeError is the one place that answers them,
// always as {"error": "human sentence", "code": "snake_case"}:
//
//	*Error (request errors)       its own status and code: 400 bad_request,
//	                              404 not_found, 413 too_large, ...
//	wal.ErrDiskFull               507 disk_full
//	anything else from storage    503 unavailable (wal.ErrIO, engine.ErrClosed,
//	                              a cancelled request, ...); logged with its cause
//	unknown route                 404 not_found
//	known route, other method     405 method_not_allowed, with Allow
//	a panic in a handler          500 internal; logged with its stack
//
// The detail of a server-side failure goes to the log, not to the client.
//
// # Clients and limits
//
// guard (guard.go) runs before every handler. With Config.Tokens, a request
// needs "Authorization: Bearer TOKEN" of a large enough scope: read for
// GET and HEAD (listings included), write for PUT and DELETE, admin for
// /cluster/* and /metrics (unless MetricsPublic). /healthz and /readyz are
// open; /internal/* belongs to the node-to-node middleware. A missing or
// unknown token is 401 unauthorized with WWW-Authenticate: Bearer; too
// small a scope is 403 forbidden. Tokens are kept as SHA-256 digests and
// compared in constant time (auth.go); a secret is never logged.
//
// With Config.RateLimit, each client (a token's name, else the peer's IP
// address, an IPv6 address by its /64) has a token bucket; past it a
// request is 429 rate_limited with Retry-After, before any 401 or 403.
// The table of buckets is bounded (ratelimit.go).
//
// A request body is read under an idle timeout (body.go): every read moves
// the connection's read deadline, so a body that stops for
// BodyIdleTimeout is cut, however long a steady one takes. Buffers grow as
// bytes arrive, never from a declared Content-Length, and take their bytes
// from one budget over all requests (MaxBodyMemory; past it 503 with
// Retry-After).
//
// Listen (listener.go) wraps the API's listener: at most MaxConns
// connections, the next answered 503 with Retry-After and closed; and TLS
// (LoadTLS, tls.go: TLS 1.2 or later, HTTP/1.1, client certificates when a
// client CA is given).
//
// # Metrics
//
// disperse_http_requests_total{route,method,status} and
// disperse_http_request_duration_seconds{route,method}, where route is the
// gin route template ("/cache/*key"; for a 405, the template the path
// matches under other methods), or "unmatched" for 404, and method is one
// of the standard methods or OTHER, so a client cannot grow the label sets. The label handles are made when the router is built.
// disperse_http_rejected_total{code} counts the guard's 401, 403 and 429;
// disperse_http_body_timeouts_total the bodies cut;
// disperse_http_connections_open and disperse_http_connections_refused_total
// the connection limit.
//
// # Invariants
//
//   - Nothing is stored unless the whole request was valid: every check
//     runs before Cache.Put or Cache.Delete.
//   - GET of a key never encodes JSON; it costs a map lookup in the cache,
//     a few header values and about two allocations.
//   - No package-level mutable state: several Servers, each with its own
//     registry, run in one process. gin is put in release mode, a
//     process-wide gin setting, so it prints nothing.
//
// # Usage
//
//	srv, err := httpd.New(httpd.Config{
//		Cache:      node, // *cluster.Node
//		Members:    node,
//		Registerer: reg,  // *prometheus.Registry, also served on /metrics
//		Ready:      node.Readiness,
//		Logger:     logger,
//	})
//	if err != nil {
//		return err
//	}
//	hs := &http.Server{Addr: addr, Handler: srv.Handler()}
//	go hs.ListenAndServe()
package httpd
