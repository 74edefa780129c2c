// Package client is the Go client of a Disperse node's HTTP API (API.md):
// the cache (/cache), erasure-coded blobs (/blob), the cluster's members
// and readiness. The disperse command's client subcommands use it for
// every request.
//
//	c, err := client.New("http://127.0.0.1:8000", client.WithToken(tok))
//	if err != nil { ... }
//	_, err = c.Put(ctx, "greeting", []byte("hello"), &client.PutOptions{TTL: time.Hour})
//	e, err := c.Get(ctx, "greeting")
//	if errors.Is(err, client.ErrNotFound) { ... }
//
//	m, err := c.PutBlob(ctx, "photo.jpg", f, &client.BlobPutOptions{Data: 4, Parity: 2})
//	r, err := c.GetBlob(ctx, "photo.jpg") // an io.ReadCloser that resumes
//
// # Errors
//
// An error answer is an *Error with the HTTP status, the node's code and
// its message ({"error": "...", "code": "..."}); errors.Is matches it
// against ErrNotFound, ErrUnauthorized, ErrForbidden, ErrPreconditionFailed,
// ErrTooLarge, ErrRateLimited, ErrUnavailable, ErrDiskFull, ErrMemoryFull
// and the other sentinels by that code. A body that is not the node's JSON
// (a proxy's page) still gives an *Error, its code taken from the status.
//
// # Timeouts
//
// Every call takes a context, which bounds the whole call. The client's
// timeout (WithTimeout, default 30s) bounds instead each stretch in which
// the call waits on the network and no byte moves: connecting and the TLS
// handshake, sending the request, waiting for the answer, and each read of
// a body. A transfer that keeps moving is never cut, however long it
// takes; a node that goes silent is left after the timeout. Time spent
// waiting on the caller (its upload source, or between its reads of a
// download) does not count. A cache value or JSON answer is read into
// memory only up to WithMaxAnswerBytes (default 64 MiB); a longer one is
// ErrAnswerTooLarge. Blob downloads stream.
//
// # Retries
//
// A failed attempt is tried again, up to WithRetries times (default 3),
// after a backoff that doubles from 100ms to at most 5s with jitter, or
// after the answer's Retry-After when that is longer, when:
//
//   - the node answered 429 or 503 (nothing was applied), or 502 or 504
//     (a proxy in between), or the connection failed or stalled; and
//   - the request is idempotent: GET, HEAD, DELETE and unconditional cache
//     PUTs (the same value again is the same result). A conditional PUT or
//     DELETE (If-Match, If-None-Match) is retried only after 429, 503 or a
//     failure to connect, which prove it was not applied; and
//   - the body can be sent again: cache values are in memory; a blob
//     upload from an io.Seeker is rewound; one from any other reader is
//     retried only when the failed attempt read none of it.
//
// Other 4xx answers are never retried. A wait that would end after the
// context's deadline is not started.
//
// # Blob downloads
//
// GetBlob returns a BlobReader. When the connection breaks or stalls in the
// middle of the body, the reader asks for the rest with Range: bytes=N-
// (and If-Match: the blob's ETag, its sha256) and checks that the answer
// has the same ETag and starts at byte N; a blob replaced in between is
// ErrBlobChanged and never spliced onto the old bytes. The bytes delivered
// are hashed and checked against the sha256 at the end (ErrChecksum).
package client
