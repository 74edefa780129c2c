package resp

// scope is what a connection may run, and what a command needs.
type scope int

const (
	scopeNone  scope = iota // not authenticated (only noAuth commands)
	scopeRead               // reads and connection commands
	scopeWrite              // also writes
	scopeAdmin              // also FLUSHDB, FLUSHALL
)

func (s scope) String() string {
	switch s {
	case scopeRead:
		return ScopeRead
	case scopeWrite:
		return ScopeWrite
	case scopeAdmin:
		return ScopeAdmin
	}
	return "none"
}

// parseScope reads a scope that Config.Authenticate returned.
func parseScope(s string) (scope, bool) {
	switch s {
	case ScopeRead:
		return scopeRead, true
	case ScopeWrite:
		return scopeWrite, true
	case ScopeAdmin:
		return scopeAdmin, true
	}
	return scopeNone, false
}

// command is one entry of the command table.
type command struct {
	name string // lower case, as Redis names it in errors and COMMAND
	// arity as Redis counts it: the name included; negative: at least.
	arity int
	scope scope
	// noAuth: allowed before AUTH.
	noAuth bool
	// write: changes keys (COMMAND's "write" flag, else "readonly").
	write bool
	// Key positions for COMMAND: first, last (-1: the last argument),
	// step; 0 0 0 for commands without keys.
	first, last, step     int
	group, since, summary string
	// syntax is the arguments in Redis's documentation syntax; COMMAND
	// DOCS builds its argument tree from it.
	syntax string
	run    func(c *conn, args [][]byte) error
	index  int
	// inline: an event loop may run it itself; it neither waits on the
	// log nor walks the keyspace (every command but writes, KEYS, SCAN and
	// RANDOMKEY).
	inline bool
}

// commandTable lists every command served, in COMMAND's order.
func commandTable() []command {
	r, w, a := scopeRead, scopeWrite, scopeAdmin
	return []command{
		// Connection.
		{name: "ping", arity: -1, scope: r, group: "connection", since: "1.0.0", summary: "Returns the server's liveliness response.", syntax: "[message]", run: cmdPing},
		{name: "echo", arity: 2, scope: r, group: "connection", since: "1.0.0", summary: "Returns the given string.", syntax: "message", run: cmdEcho},
		{name: "hello", arity: -1, noAuth: true, group: "connection", since: "6.0.0", summary: "Handshakes with the server: protocol version, authentication, name.", syntax: "[protover [AUTH username password] [SETNAME clientname]]", run: cmdHello},
		{name: "auth", arity: -2, noAuth: true, group: "connection", since: "1.0.0", summary: "Authenticates the connection with a token.", syntax: "[username] password", run: cmdAuth},
		{name: "client", arity: -2, scope: r, group: "connection", since: "2.4.0", summary: "Connection commands: SETNAME, GETNAME, ID, INFO, SETINFO, NODELOCAL.", syntax: "subcommand [argument ...]", run: cmdClient},
		{name: "select", arity: 2, scope: r, group: "connection", since: "1.0.0", summary: "Selects database 0, the only one.", syntax: "index", run: cmdSelect},
		{name: "quit", arity: -1, noAuth: true, group: "connection", since: "1.0.0", summary: "Closes the connection.", run: cmdQuit},
		{name: "reset", arity: 1, noAuth: true, group: "connection", since: "6.2.0", summary: "Resets the connection.", run: cmdReset},

		// Server.
		{name: "command", arity: -1, scope: r, group: "server", since: "2.8.13", summary: "Returns details about commands: COUNT, DOCS, INFO, LIST.", syntax: "[subcommand [argument ...]]", run: cmdCommand},
		{name: "info", arity: -1, scope: r, group: "server", since: "1.0.0", summary: "Returns information and statistics about the node.", syntax: "[section ...]", run: cmdInfo},
		{name: "dbsize", arity: 1, scope: r, group: "server", since: "1.0.0", summary: "Returns the number of keys.", run: cmdDBSize},
		{name: "time", arity: 1, scope: r, group: "server", since: "2.6.0", summary: "Returns the node's time.", run: cmdTime},
		{name: "config", arity: -2, scope: r, group: "server", since: "2.0.0", summary: "CONFIG GET of the settings clients read.", syntax: "GET parameter [parameter ...]", run: cmdConfig},
		{name: "flushdb", arity: -1, scope: a, write: true, group: "server", since: "1.0.0", summary: "Deletes every key, on every node.", syntax: "[ASYNC|SYNC]", run: cmdFlush},
		{name: "flushall", arity: -1, scope: a, write: true, group: "server", since: "1.0.0", summary: "Deletes every key, on every node.", syntax: "[ASYNC|SYNC]", run: cmdFlush},

		// Strings.
		{name: "get", arity: 2, scope: r, first: 1, last: 1, step: 1, group: "string", since: "1.0.0", summary: "Returns the value of a key.", syntax: "key", run: cmdGet},
		{name: "set", arity: -3, scope: w, write: true, first: 1, last: 1, step: 1, group: "string", since: "1.0.0", summary: "Sets the value of a key, with an optional expiry and condition.", syntax: "key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]", run: cmdSet},
		{name: "setnx", arity: 3, scope: w, write: true, first: 1, last: 1, step: 1, group: "string", since: "1.0.0", summary: "Sets the value of a key only when it does not exist.", syntax: "key value", run: cmdSetNX},
		{name: "setex", arity: 4, scope: w, write: true, first: 1, last: 1, step: 1, group: "string", since: "2.0.0", summary: "Sets the value and the expiry in seconds of a key.", syntax: "key seconds value", run: cmdSetEX},
		{name: "psetex", arity: 4, scope: w, write: true, first: 1, last: 1, step: 1, group: "string", since: "2.6.0", summary: "Sets the value and the expiry in milliseconds of a key.", syntax: "key milliseconds value", run: cmdPSetEX},
		{name: "getset", arity: 3, scope: w, write: true, first: 1, last: 1, step: 1, group: "string", since: "1.0.0", summary: "Sets a new value and returns the old one.", syntax: "key value", run: cmdGetSet},
		{name: "getdel", arity: 2, scope: w, write: true, first: 1, last: 1, step: 1, group: "string", since: "6.2.0", summary: "Returns the value of a key and deletes it.", syntax: "key", run: cmdGetDel},
		{name: "getex", arity: -2, scope: w, write: true, first: 1, last: 1, step: 1, group: "string", since: "6.2.0", summary: "Returns the value of a key and changes its expiry.", syntax: "key [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|PERSIST]", run: cmdGetEX},
		{name: "mget", arity: -2, scope: r, first: 1, last: -1, step: 1, group: "string", since: "1.0.0", summary: "Returns the values of keys.", syntax: "key [key ...]", run: cmdMGet},
		{name: "mset", arity: -3, scope: w, write: true, first: 1, last: -1, step: 2, group: "string", since: "1.0.1", summary: "Sets the values of keys, each write on its own.", syntax: "key value [key value ...]", run: cmdMSet},
		{name: "msetnx", arity: -3, scope: w, write: true, first: 1, last: -1, step: 2, group: "string", since: "1.0.1", summary: "Sets the values of keys only when none of them exists.", syntax: "key value [key value ...]", run: cmdMSetNX},
		{name: "strlen", arity: 2, scope: r, first: 1, last: 1, step: 1, group: "string", since: "2.2.0", summary: "Returns the length of a value.", syntax: "key", run: cmdStrlen},
		{name: "append", arity: 3, scope: w, write: true, first: 1, last: 1, step: 1, group: "string", since: "2.0.0", summary: "Appends to the value of a key.", syntax: "key value", run: cmdAppend},
		{name: "getrange", arity: 4, scope: r, first: 1, last: 1, step: 1, group: "string", since: "2.4.0", summary: "Returns a substring of a value.", syntax: "key start end", run: cmdGetRange},
		{name: "setrange", arity: 4, scope: w, write: true, first: 1, last: 1, step: 1, group: "string", since: "2.2.0", summary: "Overwrites part of a value from an offset.", syntax: "key offset value", run: cmdSetRange},
		{name: "incr", arity: 2, scope: w, write: true, first: 1, last: 1, step: 1, group: "string", since: "1.0.0", summary: "Adds one to the integer value of a key.", syntax: "key", run: cmdIncr},
		{name: "decr", arity: 2, scope: w, write: true, first: 1, last: 1, step: 1, group: "string", since: "1.0.0", summary: "Subtracts one from the integer value of a key.", syntax: "key", run: cmdDecr},
		{name: "incrby", arity: 3, scope: w, write: true, first: 1, last: 1, step: 1, group: "string", since: "1.0.0", summary: "Adds a number to the integer value of a key.", syntax: "key increment", run: cmdIncrBy},
		{name: "decrby", arity: 3, scope: w, write: true, first: 1, last: 1, step: 1, group: "string", since: "1.0.0", summary: "Subtracts a number from the integer value of a key.", syntax: "key decrement", run: cmdDecrBy},
		{name: "incrbyfloat", arity: 3, scope: w, write: true, first: 1, last: 1, step: 1, group: "string", since: "2.6.0", summary: "Adds a floating-point number to the value of a key.", syntax: "key increment", run: cmdIncrByFloat},

		// Keys.
		{name: "del", arity: -2, scope: w, write: true, first: 1, last: -1, step: 1, group: "generic", since: "1.0.0", summary: "Deletes keys.", syntax: "key [key ...]", run: cmdDel},
		{name: "unlink", arity: -2, scope: w, write: true, first: 1, last: -1, step: 1, group: "generic", since: "4.0.0", summary: "Deletes keys.", syntax: "key [key ...]", run: cmdDel},
		{name: "exists", arity: -2, scope: r, first: 1, last: -1, step: 1, group: "generic", since: "1.0.0", summary: "Counts the given keys that exist.", syntax: "key [key ...]", run: cmdExists},
		{name: "type", arity: 2, scope: r, first: 1, last: 1, step: 1, group: "generic", since: "1.0.0", summary: "Returns the type of a key: string or none.", syntax: "key", run: cmdType},
		{name: "expire", arity: -3, scope: w, write: true, first: 1, last: 1, step: 1, group: "generic", since: "1.0.0", summary: "Sets the expiry of a key in seconds.", syntax: "key seconds [NX|XX|GT|LT]", run: cmdExpire},
		{name: "pexpire", arity: -3, scope: w, write: true, first: 1, last: 1, step: 1, group: "generic", since: "2.6.0", summary: "Sets the expiry of a key in milliseconds.", syntax: "key milliseconds [NX|XX|GT|LT]", run: cmdExpire},
		{name: "expireat", arity: -3, scope: w, write: true, first: 1, last: 1, step: 1, group: "generic", since: "1.2.0", summary: "Sets the expiry of a key as a Unix time in seconds.", syntax: "key unix-time-seconds [NX|XX|GT|LT]", run: cmdExpire},
		{name: "pexpireat", arity: -3, scope: w, write: true, first: 1, last: 1, step: 1, group: "generic", since: "2.6.0", summary: "Sets the expiry of a key as a Unix time in milliseconds.", syntax: "key unix-time-milliseconds [NX|XX|GT|LT]", run: cmdExpire},
		{name: "persist", arity: 2, scope: w, write: true, first: 1, last: 1, step: 1, group: "generic", since: "2.2.0", summary: "Removes the expiry of a key.", syntax: "key", run: cmdPersist},
		{name: "ttl", arity: 2, scope: r, first: 1, last: 1, step: 1, group: "generic", since: "1.0.0", summary: "Returns the time to live of a key in seconds.", syntax: "key", run: cmdTTL},
		{name: "pttl", arity: 2, scope: r, first: 1, last: 1, step: 1, group: "generic", since: "2.6.0", summary: "Returns the time to live of a key in milliseconds.", syntax: "key", run: cmdTTL},
		{name: "expiretime", arity: 2, scope: r, first: 1, last: 1, step: 1, group: "generic", since: "7.0.0", summary: "Returns the expiry of a key as a Unix time in seconds.", syntax: "key", run: cmdTTL},
		{name: "pexpiretime", arity: 2, scope: r, first: 1, last: 1, step: 1, group: "generic", since: "7.0.0", summary: "Returns the expiry of a key as a Unix time in milliseconds.", syntax: "key", run: cmdTTL},
		{name: "scan", arity: -2, scope: r, group: "generic", since: "2.8.0", summary: "Iterates over the keys.", syntax: "cursor [MATCH pattern] [COUNT count] [TYPE type]", run: cmdScan},
		{name: "keys", arity: 2, scope: r, group: "generic", since: "1.0.0", summary: "Returns every key that matches a pattern.", syntax: "pattern", run: cmdKeys},
		{name: "randomkey", arity: 1, scope: r, group: "generic", since: "1.0.0", summary: "Returns a random key.", run: cmdRandomKey},

		// Not served: a clear error instead of "unknown command".
		{name: "multi", arity: 1, scope: r, group: "transactions", since: "1.2.0", summary: "Not supported.", run: notSupported(msgTx)},
		{name: "exec", arity: 1, scope: r, group: "transactions", since: "1.2.0", summary: "Not supported.", run: notSupported(msgTx)},
		{name: "discard", arity: 1, scope: r, group: "transactions", since: "2.0.0", summary: "Not supported.", run: notSupported(msgTx)},
		{name: "watch", arity: -2, scope: r, group: "transactions", since: "2.2.0", summary: "Not supported.", run: notSupported(msgTx)},
		{name: "unwatch", arity: 1, scope: r, group: "transactions", since: "2.2.0", summary: "Not supported.", run: notSupported(msgTx)},
		{name: "subscribe", arity: -2, scope: r, group: "pubsub", since: "2.0.0", summary: "Not supported.", run: notSupported(msgPubSub)},
		{name: "psubscribe", arity: -2, scope: r, group: "pubsub", since: "2.0.0", summary: "Not supported.", run: notSupported(msgPubSub)},
		{name: "ssubscribe", arity: -2, scope: r, group: "pubsub", since: "7.0.0", summary: "Not supported.", run: notSupported(msgPubSub)},
		{name: "unsubscribe", arity: -1, scope: r, group: "pubsub", since: "2.0.0", summary: "Not supported.", run: notSupported(msgPubSub)},
		{name: "punsubscribe", arity: -1, scope: r, group: "pubsub", since: "2.0.0", summary: "Not supported.", run: notSupported(msgPubSub)},
		{name: "publish", arity: 3, scope: r, group: "pubsub", since: "2.0.0", summary: "Not supported.", run: notSupported(msgPubSub)},
		{name: "spublish", arity: 3, scope: r, group: "pubsub", since: "7.0.0", summary: "Not supported.", run: notSupported(msgPubSub)},
		{name: "pubsub", arity: -2, scope: r, group: "pubsub", since: "2.8.0", summary: "Not supported.", run: notSupported(msgPubSub)},
	}
}

func notSupported(msg string) func(*conn, [][]byte) error {
	return func(*conn, [][]byte) error { return replyError(msg) }
}

// maxNameLen is the longest command name in the table, and then some.
const maxNameLen = 16

// lookup finds a command by name, in any case, without allocating.
func (s *Server) lookup(name []byte) *command {
	if len(name) > maxNameLen {
		return nil
	}
	var b [maxNameLen]byte
	for i, c := range name {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return s.byName[string(b[:len(name)])]
}

// commandName is the metric and log name of cmd (nil: unknown).
func commandName(cmd *command) string {
	if cmd == nil {
		return unknownLabel
	}
	return cmd.name
}
