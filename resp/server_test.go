package resp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/disperse/disperse/cluster"
	"github.com/disperse/disperse/engine"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
)

func TestConnectionCommands(t *testing.T) {
	n := startNode(t, nil)
	r := n.client(t)
	if v, _ := r.Ping(ctx).Result(); v != "PONG" {
		t.Errorf("PING: %q", v)
	}
	if v, _ := r.Do(ctx, "PING", "hi").Text(); v != "hi" {
		t.Errorf("PING hi: %q", v)
	}
	if v, _ := r.Echo(ctx, "hey").Result(); v != "hey" {
		t.Errorf("ECHO: %q", v)
	}
	if err := r.Do(ctx, "SELECT", "0").Err(); err != nil {
		t.Errorf("SELECT 0: %v", err)
	}
	wantErr(t, "SELECT 1", r.Do(ctx, "SELECT", "1").Err(), "ERR DB index is out of range")
	c := r.Conn()
	defer c.Close()
	if err := c.ClientSetName(ctx, "worker-1").Err(); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.ClientGetName(ctx).Result(); v != "worker-1" {
		t.Errorf("CLIENT GETNAME: %q", v)
	}
	id, _ := c.ClientID(ctx).Result()
	info, err := c.Do(ctx, "CLIENT", "INFO").Text()
	if err != nil || !strings.Contains(info, fmt.Sprintf("id=%d ", id)) || !strings.Contains(info, "name=worker-1") {
		t.Errorf("CLIENT INFO: %q %v", info, err)
	}
	if err := c.Do(ctx, "CLIENT", "SETINFO", "LIB-NAME", "mylib").Err(); err != nil {
		t.Errorf("CLIENT SETINFO: %v", err)
	}
	wantErr(t, "CLIENT SETNAME with a space", c.Do(ctx, "CLIENT", "SETNAME", "a b").Err(), "ERR Client names cannot contain spaces, newlines or special characters.")
	wantErr(t, "CLIENT BOGUS", c.Do(ctx, "CLIENT", "BOGUS").Err(), "ERR unknown subcommand 'BOGUS'. Try CLIENT HELP.")
	// RESET: back to RESP2, no name.
	if v, _ := c.Do(ctx, "RESET").Text(); v != "RESET" {
		t.Errorf("RESET: %q", v)
	}
	if _, err := c.ClientGetName(ctx).Result(); !errors.Is(err, redis.Nil) {
		t.Errorf("name after RESET: %v", err)
	}

	// HELLO: the server's map, in RESP2 and RESP3.
	hello, err := c.Do(ctx, "HELLO", "2").Slice()
	if err != nil || len(hello) != 14 || hello[0] != "server" || hello[1] != "redis" || hello[5] != int64(2) {
		t.Errorf("HELLO 2: %v %v", hello, err)
	}
	wantErr(t, "HELLO 4", c.Do(ctx, "HELLO", "4").Err(), "NOPROTO unsupported protocol version")
	wantErr(t, "HELLO x", c.Do(ctx, "HELLO", "x").Err(), "ERR Protocol version is not an integer or out of range")
	if err := c.Do(ctx, "HELLO", "3", "SETNAME", "n3").Err(); err != nil {
		t.Errorf("HELLO 3 SETNAME: %v", err)
	}
	wantErr(t, "AUTH without tokens configured", r.Do(ctx, "AUTH", "x").Err(), msgNoPassword)
}

func TestServerCommands(t *testing.T) {
	n := startNode(t, func(c *Config) { c.Version = "1.2.3"; c.Fsync = "never" })
	r := n.client(t)
	r.Set(ctx, "a", "1", 0)
	info, err := r.Info(ctx).Result()
	for _, want := range []string{"# Server", "redis_version:7.2.0", "disperse_version:1.2.3", "# Clients", "connected_clients:1",
		"# Memory", "used_memory:", "# Persistence", "disperse_fsync:never", "# Stats", "total_commands_processed:",
		"# Replication", "role:master", "disperse_members:1", "member0:name=", "# Keyspace", "db0:keys=1"} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO lacks %q (%v)", want, err)
		}
	}
	if s, _ := r.Info(ctx, "replication").Result(); strings.Contains(s, "# Server") || !strings.Contains(s, "role:master") {
		t.Errorf("INFO replication: %q", s)
	}
	if v, _ := r.DBSize(ctx).Result(); v != 1 {
		t.Errorf("DBSIZE: %d", v)
	}
	if tm, err := r.Time(ctx).Result(); err != nil || time.Since(tm).Abs() > 5*time.Second {
		t.Errorf("TIME: %v %v", tm, err)
	}
	cfg, err := r.ConfigGet(ctx, "*").Result()
	if err != nil || cfg["appendonly"] != "yes" || cfg["appendfsync"] != "no" || cfg["save"] != "" || cfg["databases"] != "1" {
		t.Errorf("CONFIG GET *: %v %v", cfg, err)
	}
	if cfg, _ := r.ConfigGet(ctx, "maxmemory*").Result(); len(cfg) != 2 {
		t.Errorf("CONFIG GET maxmemory*: %v", cfg)
	}
	wantErr(t, "CONFIG SET", r.ConfigSet(ctx, "save", "").Err(), "ERR CONFIG SET is not supported: the node's settings are flags of disperse serve")

	// COMMAND: go-redis reads it whole.
	infos, err := r.Command(ctx).Result()
	if err != nil || infos["set"] == nil || infos["set"].Arity != -3 || infos["get"].FirstKeyPos != 1 {
		t.Errorf("COMMAND: %v", err)
	}
	if c, _ := r.Do(ctx, "COMMAND", "COUNT").Int(); c != len(n.srv.commands) {
		t.Errorf("COMMAND COUNT: %d", c)
	}
	docs, err := r.Do(ctx, "COMMAND", "DOCS", "set").Slice()
	if err != nil || len(docs) != 2 || docs[0] != "set" || !strings.Contains(fmt.Sprint(docs[1]), "KEEPTTL") {
		t.Errorf("COMMAND DOCS set: %v %v", docs, err)
	}

	// FLUSHDB needs nothing more without authentication.
	r.Set(ctx, "b", "2", 0)
	if err := r.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if keys, _ := r.Keys(ctx, "*").Result(); len(keys) != 0 {
		t.Errorf("after FLUSHDB: %v", keys)
	}
	if err := r.FlushAll(ctx).Err(); err != nil {
		t.Error(err)
	}
}

// TestRESP3: with HELLO 3, go-redis reads nulls, maps and doubles in their
// RESP3 forms.
func TestRESP3(t *testing.T) {
	n := startNode(t, nil)
	r := n.client(t, func(o *redis.Options) { o.Protocol = 3 })
	r.Set(ctx, "f", "1.5", 0)
	if v, err := r.IncrByFloat(ctx, "f", 1).Result(); err != nil || v != 2.5 {
		t.Errorf("INCRBYFLOAT: %v %v", v, err)
	}
	if _, err := r.Get(ctx, "nope").Result(); !errors.Is(err, redis.Nil) {
		t.Errorf("GET of an absent key: %v", err)
	}
	vals, err := r.MGet(ctx, "f", "nope").Result()
	if err != nil || vals[0] != "2.5" || vals[1] != nil {
		t.Errorf("MGET: %v %v", vals, err)
	}
	if cfg, err := r.ConfigGet(ctx, "appendonly").Result(); err != nil || cfg["appendonly"] != "yes" {
		t.Errorf("CONFIG GET: %v %v", cfg, err)
	}
	hello, err := r.Do(ctx, "HELLO", "3").Result()
	if m, ok := hello.(map[any]any); !ok || m["proto"] != int64(3) || err != nil {
		t.Errorf("HELLO 3: %#v %v", hello, err)
	}
	if s, err := r.Info(ctx, "server").Result(); err != nil || !strings.Contains(s, "redis_version") {
		t.Errorf("INFO over RESP3: %q %v", s, err)
	}
	if _, err := r.Command(ctx).Result(); err != nil {
		t.Errorf("COMMAND over RESP3: %v", err)
	}
}

// TestAuthentication: with tokens, nothing but AUTH, HELLO, QUIT and RESET
// runs before AUTH, and scopes gate what runs after.
func TestAuthentication(t *testing.T) {
	tokens := map[string]string{"r-token": ScopeRead, "w-token": ScopeWrite, "a-token": ScopeAdmin, "odd": "superuser"}
	n := startNode(t, func(c *Config) {
		c.Authenticate = func(tok string) (string, bool) { s, ok := tokens[tok]; return s, ok }
	})
	raw := dialRaw(t, n.addr)
	raw.send(cmd("GET", "k"))
	raw.expect("-NOAUTH Authentication required.\r\n")
	raw.send(cmd("PING"))
	raw.expect("-NOAUTH Authentication required.\r\n")
	raw.send(cmd("AUTH", "wrong"))
	raw.expect("-WRONGPASS invalid username-password pair or user is disabled.\r\n")
	raw.send(cmd("AUTH", "odd"))
	raw.expect("-WRONGPASS invalid username-password pair or user is disabled.\r\n")
	raw.send(cmd("HELLO", "3"))
	raw.expect("-NOAUTH HELLO must be called")
	raw.br.ReadString('\n')
	raw.send(cmd("AUTH", "default", "r-token"))
	raw.expect("+OK\r\n")
	raw.send(cmd("GET", "k"))
	raw.expect("$-1\r\n")
	raw.send(cmd("SET", "k", "v"))
	raw.expect("-NOPERM this connection's token (scope read) has no permissions to run the 'set' command\r\n")
	raw.send(cmd("RESET"))
	raw.expect("+RESET\r\n")
	raw.send(cmd("GET", "k"))
	raw.expect("-NOAUTH Authentication required.\r\n")

	// go-redis authenticates with HELLO 3 AUTH (Password) on connect.
	w := n.client(t, func(o *redis.Options) { o.Password = "w-token"; o.Protocol = 3 })
	if err := w.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET with a write token: %v", err)
	}
	if err := w.FlushDB(ctx).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
		t.Errorf("FLUSHDB with a write token: %v", err)
	}
	a := n.client(t, func(o *redis.Options) { o.Password = "a-token" })
	if err := a.FlushDB(ctx).Err(); err != nil {
		t.Errorf("FLUSHDB with an admin token: %v", err)
	}
	bad := n.client(t, func(o *redis.Options) { o.Password = "nope" })
	if err := bad.Ping(ctx).Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGPASS") {
		t.Errorf("a wrong token: %v", err)
	}
}

// TestInternalKeys: keys that begin with 0x00 (blob manifests) cannot be
// read, listed or written.
func TestInternalKeys(t *testing.T) {
	n := startNode(t, nil)
	r := n.client(t)
	if _, err := n.node.Put(ctx, cluster.Write{Key: "\x00blob/m", Value: []byte("manifest")}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get(ctx, "\x00blob/m").Result(); !errors.Is(err, redis.Nil) {
		t.Errorf("GET of an internal key: %v", err)
	}
	if n, _ := r.Exists(ctx, "\x00blob/m").Result(); n != 0 {
		t.Error("EXISTS of an internal key")
	}
	wantErr(t, "SET of an internal key", r.Set(ctx, "\x00blob/m", "x", 0).Err(), "ERR keys containing a NUL byte are reserved")
	if n, _ := r.Del(ctx, "\x00blob/m").Result(); n != 0 {
		t.Error("DEL of an internal key")
	}
	r.FlushDB(ctx)
	if e, ok := n.node.Get("\x00blob/m"); !ok || string(e.Value) != "manifest" {
		t.Error("the internal key did not survive DEL and FLUSHDB")
	}
}

// TestContentType: values written over RESP are bytes; a change of expiry
// keeps the type a value had.
func TestContentType(t *testing.T) {
	n := startNode(t, nil)
	r := n.client(t)
	r.Set(ctx, "a", "x", 0)
	if e, _ := n.node.Get("a"); e.ContentType != "application/octet-stream" {
		t.Errorf("content type %q", e.ContentType)
	}
	n.node.Put(ctx, cluster.Write{Key: "j", Value: []byte(`{}`), ContentType: "application/json"})
	r.Expire(ctx, "j", time.Hour)
	if e, _ := n.node.Get("j"); e.ContentType != "application/json" || e.ExpiresAt == 0 {
		t.Errorf("after EXPIRE: %q %d", e.ContentType, e.ExpiresAt)
	}
}

// oomStore refuses every write as a full memory would.
type oomStore struct{ Store }

var errFull = errors.New("engine: memory full")

func (oomStore) Put(context.Context, cluster.Write) (engine.Entry, error) {
	return engine.Entry{}, fmt.Errorf("cluster: write: %w", errFull)
}

func (oomStore) PutBatch(_ context.Context, ws []cluster.Write) ([]engine.Entry, []error) {
	errs := make([]error, len(ws))
	for i := range errs {
		errs[i] = fmt.Errorf("cluster: write batch: %w", errFull)
	}
	return make([]engine.Entry, len(ws)), errs
}

func TestErrorsOfTheStore(t *testing.T) {
	n := startNode(t, nil)
	srv, err := New(Config{OOMError: errFull}, oomStore{n.node})
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t, srv)
	c := dialRaw(t, ln)
	c.send(cmd("SET", "k", "v") + cmd("INCR", "k") + cmd("GET", "k"))
	c.expect("-OOM command not allowed when used memory > 'maxmemory'.\r\n-OOM command not allowed when used memory > 'maxmemory'.\r\n$-1\r\n")
	n.node.Close()
	c.send(cmd("SET", "k", "v"))
	c.expect("-OOM")
}

// listen serves srv on a loopback port until the test ends.
func listen(t testing.TB, srv *Server) string {
	t.Helper()
	ln, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestMetrics(t *testing.T) {
	n := startNode(t, nil)
	r := n.client(t)
	r.Set(ctx, "a", "1", 0)
	r.Get(ctx, "a")
	r.Get(ctx, "a")
	r.Do(ctx, "NOSUCH")
	r.Do(ctx, "INCR", "a", "b")
	if v := testutil.ToFloat64(n.srv.metrics.calls.WithLabelValues("get")); v != 2 {
		t.Errorf("get calls %v", v)
	}
	if v := testutil.ToFloat64(n.srv.metrics.errors.WithLabelValues("unknown")); v != 1 {
		t.Errorf("unknown errors %v", v)
	}
	if v := testutil.ToFloat64(n.srv.metrics.errors.WithLabelValues("incr")); v != 1 {
		t.Errorf("incr errors %v", v)
	}
	if v := testutil.ToFloat64(n.srv.metrics.clients); v != 1 {
		t.Errorf("clients %v", v)
	}
	mfs, err := n.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var series []string
	for _, mf := range mfs {
		if mf.GetName() == "disperse_resp_command_duration_seconds" {
			for _, m := range mf.GetMetric() {
				series = append(series, m.GetLabel()[0].GetValue())
			}
		}
	}
	// Children are made on first use: one per command called.
	if strings.Join(series, " ") != "get hello incr set unknown" { // hello: go-redis on connect
		t.Errorf("latency series %q", series)
	}
}

// TestShutdown: Shutdown answers what was asked and closes idle clients.
func TestShutdown(t *testing.T) {
	n := startNode(t, nil)
	c := dialRaw(t, n.addr)
	c.send("PING\r\n")
	c.expect("+PONG\r\n")
	done := make(chan error, 1)
	go func() { done <- n.srv.Shutdown(context.Background()) }()
	c.expectClosed()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
