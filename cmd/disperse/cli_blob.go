package main

import (
	"bufio"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/disperse/disperse/client"
	"github.com/schollz/progressbar/v3"
)

// blobCmd groups the blob commands.
type blobCmd struct {
	Put  blobPutCmd  `cmd:"" help:"Upload a blob from FILE or standard input."`
	Get  blobGetCmd  `cmd:"" help:"Download a blob to standard output or -o FILE."`
	Del  blobDelCmd  `cmd:"" help:"Delete a blob (also when it is absent)."`
	Ls   blobLsCmd   `cmd:"" help:"List blobs, in id order."`
	Stat blobStatCmd `cmd:"" help:"Print a blob's manifest: its coding, and where each shard is and how it is."`
}

// Limits of the erasure code (API.md: 1 <= k, 0 <= m, k+m <= 256).
const maxShards = 256

// blobPutCmd is `disperse blob put ID [FILE|-]`.
type blobPutCmd struct {
	ID          string `arg:"" help:"Blob id: 1 to 256 of A-Z a-z 0-9 . _ -"`
	File        string `arg:"" optional:"" help:"File to upload; - or nothing reads standard input."`
	Data        *int   `help:"Data shards k, at least 1 (default: the node's)." placeholder:"K"`
	Parity      *int   `help:"Parity shards m, 0 or more, with k+m at most 256 (default: the node's)." placeholder:"M"`
	ContentType string `help:"Content type kept with the blob (default: from FILE's extension, else application/octet-stream)." placeholder:"TYPE"`
}

// Validate checks the coding before anything is read or sent.
func (c *blobPutCmd) Validate() error {
	if c.Data != nil && *c.Data < 1 {
		return fmt.Errorf("--data must be at least 1, not %d", *c.Data)
	}
	if c.Parity != nil && *c.Parity < 0 {
		return fmt.Errorf("--parity must be 0 or more, not %d", *c.Parity)
	}
	if c.Data != nil && c.Parity != nil && *c.Data+*c.Parity > maxShards {
		return fmt.Errorf("--data plus --parity must be at most %d, not %d", maxShards, *c.Data+*c.Parity)
	}
	if c.Data != nil && *c.Data > maxShards {
		return fmt.Errorf("--data must be at most %d, not %d", maxShards, *c.Data)
	}
	return nil
}

func (c *blobPutCmd) Run(e *env) error {
	opt := &client.BlobPutOptions{ContentType: c.ContentType}
	if c.Data != nil {
		opt.Data = *c.Data
	}
	if c.Parity != nil {
		opt.Parity = *c.Parity
		if opt.Parity == 0 {
			opt.Parity = client.NoParity
		}
	}
	var src io.Reader = e.stdin
	size := int64(-1)
	if c.File != "" && c.File != "-" {
		f, err := os.Open(c.File)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if st.Mode().IsRegular() {
			size = st.Size()
		}
		src = f
		if opt.ContentType == "" {
			opt.ContentType = mime.TypeByExtension(filepath.Ext(c.File))
		}
	}
	if opt.ContentType == "" {
		opt.ContentType = "application/octet-stream"
	}
	if src == e.stdin && isTerminal(e.stdin) {
		fmt.Fprintln(e.stderr, "reading the blob from the terminal; end it with Ctrl-D")
	}
	if size > 0 {
		opt.Size = size
	}
	cl, ctx, cancel, err := e.session()
	if err != nil {
		return err
	}
	defer cancel()
	bar := newBar(e, size, "uploading "+c.ID)
	if bar != nil {
		src = bar.reader(src)
	}
	m, err := cl.PutBlob(ctx, c.ID, src, opt)
	bar.done(err == nil)
	if err != nil {
		return blobError(c.ID, err)
	}
	if e.g.JSON {
		return writeJSON(e.stdout, m)
	}
	_, err = fmt.Fprintf(e.stdout, "%s: %d bytes, %d+%d shards, survives %d node losses, sha256 %s\n",
		m.ID, m.Size, m.Data, m.Parity, m.Tolerates, m.SHA256)
	return err
}

// blobError names the blob in a request's error.
func blobError(id string, err error) error {
	return fmt.Errorf("blob %q: %w", id, err)
}

// blobGetCmd is `disperse blob get ID [-o FILE]`.
type blobGetCmd struct {
	ID     string `arg:"" help:"Blob id."`
	Output string `short:"o" help:"Write the blob to FILE (through a temporary FILE.partial-* renamed when complete) instead of standard output." placeholder:"FILE"`
	Force  bool   `help:"Write a binary blob to a terminal anyway."`
}

func (c *blobGetCmd) Run(e *env) error {
	toFile := c.Output != "" && c.Output != "-"
	if e.g.JSON && !toFile {
		return usageErrorf("--json needs -o FILE: the blob's bytes would share standard output with the JSON")
	}
	cl, ctx, cancel, err := e.session()
	if err != nil {
		return err
	}
	defer cancel()
	r, err := cl.GetBlob(ctx, c.ID)
	if err != nil {
		return blobError(c.ID, err)
	}
	defer r.Close()
	if !toFile {
		// Peek at the first bytes to tell text from binary.
		br := bufio.NewReaderSize(r, 4096)
		head, _ := br.Peek(512)
		if isTerminal(e.stdout) && !c.Force && c.Output == "" && !isText(r.ContentType, head) {
			return usageErrorf("blob %q is %d bytes of %s, not text: not written to a terminal (use -o FILE or --force)", c.ID, r.Size, r.ContentType)
		}
		if _, err := io.Copy(e.stdout, br); err != nil {
			return blobError(c.ID, err)
		}
		return nil
	}
	bar := newBar(e, r.Size, "downloading "+c.ID)
	var src io.Reader = r
	if bar != nil {
		src = bar.reader(r)
	}
	err = writeFileAtomic(c.Output, src, 0o644)
	bar.done(err == nil)
	if err != nil {
		return blobError(c.ID, err)
	}
	if e.g.JSON {
		return writeJSON(e.stdout, map[string]any{"id": c.ID, "size": r.Size, "sha256": r.SHA256, "content_type": r.ContentType, "file": c.Output})
	}
	return nil
}

// blobDelCmd is `disperse blob del ID`.
type blobDelCmd struct {
	ID string `arg:"" help:"Blob id."`
}

func (c *blobDelCmd) Run(e *env) error {
	cl, ctx, cancel, err := e.session()
	if err != nil {
		return err
	}
	defer cancel()
	if err := cl.DeleteBlob(ctx, c.ID); err != nil {
		return blobError(c.ID, err)
	}
	if e.g.JSON {
		return writeJSON(e.stdout, map[string]any{"id": c.ID, "deleted": true})
	}
	return nil
}

// blobLsCmd is `disperse blob ls [PREFIX]`.
type blobLsCmd struct {
	Prefix string `arg:"" optional:"" help:"List only blobs whose id starts with PREFIX."`
	Limit  int    `help:"List at most N blobs (0: all, fetched page by page)." placeholder:"N"`
}

func (c *blobLsCmd) Run(e *env) error {
	if c.Limit < 0 {
		return usageErrorf("--limit must not be negative")
	}
	cl, ctx, cancel, err := e.session()
	if err != nil {
		return err
	}
	defer cancel()
	out := newListWriter(e.stdout, e.g.JSON, "blobs")
	var tw *tabwriter.Writer
	if !e.g.JSON {
		tw = tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		out.w = tw
	}
	n := 0
	next := ""
	for m, err := range cl.Blobs(ctx, c.Prefix) {
		if err != nil {
			out.abort()
			if tw != nil {
				tw.Flush()
			}
			return err
		}
		if c.Limit > 0 && n == c.Limit {
			next = m.ID // there is more
			break
		}
		if tw != nil && n == 0 {
			fmt.Fprintln(tw, "ID\tSIZE\tK+M\tCREATED\tTYPE")
		}
		line := fmt.Sprintf("%s\t%d\t%d+%d\t%s\t%s", m.ID, m.Size, m.Data, m.Parity, m.CreatedAt.UTC().Format(time.RFC3339), m.ContentType)
		if err := out.item(line, m); err != nil {
			return err
		}
		n++
	}
	if tw != nil {
		return tw.Flush()
	}
	return out.close(next)
}

// blobStatCmd is `disperse blob stat ID`.
type blobStatCmd struct {
	ID string `arg:"" help:"Blob id."`
}

func (c *blobStatCmd) Run(e *env) error {
	cl, ctx, cancel, err := e.session()
	if err != nil {
		return err
	}
	defer cancel()
	m, err := cl.StatBlob(ctx, c.ID)
	if err != nil {
		return blobError(c.ID, err)
	}
	if e.g.JSON {
		return writeJSON(e.stdout, m)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "id:\t%s\n", m.ID)
	fmt.Fprintf(tw, "size:\t%d\n", m.Size)
	fmt.Fprintf(tw, "sha256:\t%s\n", m.SHA256)
	fmt.Fprintf(tw, "content type:\t%s\n", m.ContentType)
	fmt.Fprintf(tw, "created:\t%s\n", m.CreatedAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(tw, "coding:\t%d data + %d parity shards, stripes of %d bytes\n", m.Data, m.Parity, m.StripeBytes)
	fmt.Fprintf(tw, "survives:\t%d node losses\n", m.Tolerates)
	if m.Health != "" {
		fmt.Fprintf(tw, "health:\t%s\n", m.Health)
	}
	for _, s := range m.Shards {
		health := ""
		if s.Health != "" {
			health = " (" + s.Health + ")"
		}
		fmt.Fprintf(tw, "shard %d:\t%s%s\n", s.Index, s.Node, health)
	}
	return tw.Flush()
}

// bar is a progress bar on a terminal's stderr; nil (whose methods do
// nothing) when stderr is not a terminal.
type bar struct {
	pb *progressbar.ProgressBar
	w  io.Writer
}

// newBar shows a bar of size bytes (-1: unknown) when stderr is a terminal.
func newBar(e *env, size int64, what string) *bar {
	if e.g.JSON || !isTerminal(e.stderr) {
		return nil
	}
	return &bar{w: e.stderr, pb: progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(e.stderr),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionSetWidth(20),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSpinnerType(14),
	)}
}

// reader counts the bytes read from r on the bar. It can be rewound when
// r can (the client rewinds a file to retry an upload), and the bar with it.
func (b *bar) reader(r io.Reader) io.Reader {
	if s, ok := r.(io.ReadSeeker); ok {
		return &barSeeker{ReadSeeker: s, pb: b.pb}
	}
	rd := progressbar.NewReader(r, b.pb)
	return &rd
}

type barSeeker struct {
	io.ReadSeeker
	pb *progressbar.ProgressBar
}

func (b *barSeeker) Read(p []byte) (int, error) {
	n, err := b.ReadSeeker.Read(p)
	_ = b.pb.Add(n)
	return n, err
}

func (b *barSeeker) Seek(off int64, whence int) (int64, error) {
	pos, err := b.ReadSeeker.Seek(off, whence)
	if err == nil {
		_ = b.pb.Set64(pos)
	}
	return pos, err
}

// done ends the bar: cleared after a success, left as it stood otherwise.
func (b *bar) done(ok bool) {
	if b == nil {
		return
	}
	if ok {
		_ = b.pb.Finish()
		_ = b.pb.Clear()
		return
	}
	_ = b.pb.Exit()
	fmt.Fprintln(b.w)
}
