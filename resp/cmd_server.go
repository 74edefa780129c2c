package resp

import (
	"fmt"
	"os"
	"runtime"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"
)

func cmdCommand(c *conn, args [][]byte) error {
	if len(args) == 1 {
		c.wr.array(len(c.s.commands))
		for i := range c.s.commands {
			c.commandInfo(&c.s.commands[i])
		}
		return nil
	}
	switch sub := upper(args[1]); sub {
	case "COUNT":
		c.wr.integer(int64(len(c.s.commands)))
	case "LIST":
		c.wr.array(len(c.s.commands))
		for i := range c.s.commands {
			c.wr.bulkString(c.s.commands[i].name)
		}
	case "INFO":
		c.wr.array(len(args) - 2)
		for _, name := range args[2:] {
			if cmd := c.s.lookup(name); cmd != nil {
				c.commandInfo(cmd)
			} else {
				c.wr.nullArray()
			}
		}
	case "DOCS":
		var cmds []*command
		if len(args) == 2 {
			for i := range c.s.commands {
				cmds = append(cmds, &c.s.commands[i])
			}
		}
		for _, name := range args[2:] {
			if cmd := c.s.lookup(name); cmd != nil {
				cmds = append(cmds, cmd)
			}
		}
		c.wr.mapOf(len(cmds))
		for _, cmd := range cmds {
			c.wr.bulkString(cmd.name)
			c.commandDocs(cmd)
		}
	default:
		return errorf("ERR unknown subcommand '%s'. Try COMMAND HELP.", clip(args[1], 128))
	}
	return nil
}

// commandInfo writes a command's entry of COMMAND as Redis 7 does: name,
// arity, flags, first key, last key, step, ACL categories, tips, key
// specifications, subcommands.
func (c *conn) commandInfo(cmd *command) {
	w := c.wr
	w.array(10)
	w.bulkString(cmd.name)
	w.integer(int64(cmd.arity))
	var flags []string
	switch {
	case cmd.write:
		flags = append(flags, "write", "denyoom")
	case cmd.first > 0:
		flags = append(flags, "readonly")
	}
	if cmd.noAuth {
		flags = append(flags, "no-auth")
	}
	flags = append(flags, "fast")
	w.set(len(flags))
	for _, f := range flags {
		w.simple(f)
	}
	w.integer(int64(cmd.first))
	w.integer(int64(cmd.last))
	w.integer(int64(cmd.step))
	cats := []string{"@" + cmd.group}
	switch {
	case cmd.scope == scopeAdmin:
		cats = append(cats, "@dangerous", "@write")
	case cmd.write:
		cats = append(cats, "@write")
	case cmd.first > 0:
		cats = append(cats, "@read")
	}
	w.set(len(cats))
	for _, cat := range cats {
		w.simple(cat)
	}
	w.set(0) // tips
	w.array(0)
	w.array(0)
}

// commandDocs writes a command's entry of COMMAND DOCS.
func (c *conn) commandDocs(cmd *command) {
	args := docArgs(cmd.syntax)
	n := 3
	if len(args) > 0 {
		n++
	}
	w := c.wr
	w.mapOf(n)
	w.bulkString("summary")
	w.bulkString(cmd.summary)
	w.bulkString("since")
	w.bulkString(cmd.since)
	w.bulkString("group")
	w.bulkString(cmd.group)
	if len(args) > 0 {
		w.bulkString("arguments")
		w.docArgs(args)
	}
}

// infoSections are INFO's sections, in order.
var infoSections = []string{"server", "clients", "memory", "persistence", "stats", "replication", "keyspace"}

func cmdInfo(c *conn, args [][]byte) error {
	want := map[string]bool{}
	for _, a := range args[1:] {
		want[strings.ToLower(string(a))] = true
	}
	all := len(want) == 0 || want["all"] || want["everything"] || want["default"]
	var b strings.Builder
	for _, sec := range infoSections {
		if !all && !want[sec] {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		fmt.Fprintf(&b, "# %s\r\n", strings.ToUpper(sec[:1])+sec[1:])
		for _, l := range c.infoSection(sec) {
			b.WriteString(l)
			b.WriteString("\r\n")
		}
		if c.s.cfg.Info != nil {
			for _, l := range c.s.cfg.Info(sec) {
				b.WriteString(l)
				b.WriteString("\r\n")
			}
		}
	}
	c.wr.verbatim(b.String())
	return nil
}

func (c *conn) infoSection(sec string) []string {
	s := c.s
	now := s.cfg.Now()
	switch sec {
	case "server":
		port := ""
		if a, ok := c.nc.LocalAddr().(interface{ String() string }); ok {
			if i := strings.LastIndexByte(a.String(), ':'); i >= 0 {
				port = a.String()[i+1:]
			}
		}
		return []string{
			"redis_version:" + redisVersion,
			"disperse_version:" + s.cfg.Version,
			"redis_mode:standalone",
			"os:" + runtime.GOOS,
			"arch_bits:64",
			"process_id:" + strconv.Itoa(os.Getpid()),
			"tcp_port:" + port,
			"uptime_in_seconds:" + strconv.FormatInt(int64(now.Sub(s.started).Seconds()), 10),
			"uptime_in_days:" + strconv.FormatInt(int64(now.Sub(s.started).Hours()/24), 10),
		}
	case "clients":
		return []string{
			"connected_clients:" + strconv.Itoa(s.clients()),
			"maxclients:" + strconv.Itoa(s.cfg.MaxClients),
		}
	case "memory":
		used := memoryUsed()
		return []string{
			"used_memory:" + strconv.FormatUint(used, 10),
			"used_memory_human:" + humanBytes(used),
			"maxmemory:0",
			"maxmemory_policy:noeviction",
		}
	case "persistence":
		return []string{
			"loading:0",
			"aof_enabled:1",
			"disperse_fsync:" + s.cfg.Fsync,
		}
	case "stats":
		return []string{
			"total_connections_received:" + strconv.FormatInt(s.totalConns.Load(), 10),
			"total_commands_processed:" + strconv.FormatInt(s.totalCommands.Load(), 10),
			"rejected_connections:" + strconv.FormatInt(s.rejected.Load(), 10),
			"keyspace_hits:" + strconv.FormatInt(s.hits.Load(), 10),
			"keyspace_misses:" + strconv.FormatInt(s.misses.Load(), 10),
		}
	case "replication":
		// Every node takes writes and sends them to every other: each is a
		// master, and the others are listed as its peers.
		ms := s.store.Members()
		lines := []string{"role:master", "connected_slaves:0", "disperse_members:" + strconv.Itoa(len(ms))}
		for i, m := range ms {
			lines = append(lines, fmt.Sprintf("member%d:name=%s,addr=%s,gossip_port=%d,http_addr=%s,state=%s",
				i, m.Name, m.Addr, m.GossipPort, m.HTTPAddr, m.State))
		}
		return lines
	case "keyspace":
		n := c.keyCount()
		if n == 0 {
			return nil
		}
		return []string{fmt.Sprintf("db0:keys=%d,expires=0,avg_ttl=0", n)}
	}
	return nil
}

// memoryUsed reads the bytes the Go runtime holds from the operating
// system, without stopping the world.
func memoryUsed() uint64 {
	sample := []rtmetrics.Sample{{Name: "/memory/classes/total:bytes"}}
	rtmetrics.Read(sample)
	if sample[0].Value.Kind() != rtmetrics.KindUint64 {
		return 0
	}
	return sample[0].Value.Uint64()
}

func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.2fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

// keyCount is the number of keys: Config.Keys, or a count of a listing.
func (c *conn) keyCount() int {
	if c.s.cfg.Keys != nil {
		return c.s.cfg.Keys()
	}
	n, after := 0, ""
	for {
		page, next := c.s.store.List("", after, maxScanCount)
		n += len(page)
		if next == "" {
			return n
		}
		after = next
	}
}

func cmdDBSize(c *conn, _ [][]byte) error {
	c.wr.integer(int64(c.keyCount()))
	return nil
}

func cmdTime(c *conn, _ [][]byte) error {
	now := c.s.cfg.Now()
	c.wr.array(2)
	c.wr.bulkString(strconv.FormatInt(now.Unix(), 10))
	c.wr.bulkString(strconv.Itoa(now.Nanosecond() / 1000))
	return nil
}

// configParams are the settings CONFIG GET answers: those clients and
// redis-benchmark read, with the values that describe the node.
func (c *conn) configParams() [][2]string {
	cfg := c.s.cfg
	fsync := map[string]string{"always": "always", "everysec": "everysec", "never": "no"}[cfg.Fsync]
	return [][2]string{
		{"appendfsync", fsync},
		{"appendonly", "yes"},
		{"databases", "1"},
		{"maxclients", strconv.Itoa(cfg.MaxClients)},
		{"maxmemory", "0"},
		{"maxmemory-policy", "noeviction"},
		{"proto-max-bulk-len", strconv.FormatInt(cfg.MaxValueBytes, 10)},
		{"save", ""},
		{"timeout", strconv.FormatInt(int64(cfg.IdleTimeout.Seconds()), 10)},
	}
}

func cmdConfig(c *conn, args [][]byte) error {
	switch upper(args[1]) {
	case "GET":
		if len(args) < 3 {
			return replyError("ERR wrong number of arguments for 'config|get' command")
		}
		var found [][2]string
		for _, p := range c.configParams() {
			for _, pat := range args[2:] {
				if globMatch([]byte(strings.ToLower(string(pat))), []byte(p[0])) {
					found = append(found, p)
					break
				}
			}
		}
		c.wr.mapOf(len(found))
		for _, p := range found {
			c.wr.bulkString(p[0])
			c.wr.bulkString(p[1])
		}
		return nil
	case "SET", "RESETSTAT", "REWRITE":
		return errorf("ERR CONFIG %s is not supported: the node's settings are flags of disperse serve", upper(args[1]))
	}
	return errorf("ERR unknown subcommand '%s'. Try CONFIG HELP.", clip(args[1], 128))
}

// cmdFlush serves FLUSHDB and FLUSHALL: every key visible on this node is
// deleted (tombstones, sent to every node like any delete; node-local with
// CLIENT NODELOCAL on).
func cmdFlush(c *conn, args [][]byte) error {
	if len(args) > 2 || len(args) == 2 && upper(args[1]) != "ASYNC" && upper(args[1]) != "SYNC" {
		return replyError(msgSyntax)
	}
	after := ""
	for {
		page, next := c.s.store.List("", after, 1000)
		for _, k := range page {
			if _, err := c.put(deleteOf(k)); err != nil {
				return err
			}
		}
		if next == "" {
			break
		}
		after = next
	}
	c.wr.ok()
	return nil
}
