package resp

import (
	"fmt"
	"strings"
)

// redisVersion is the Redis version whose commands and replies the server
// follows; HELLO and INFO report it, and the product version beside it.
const redisVersion = "7.2.0"

func cmdPing(c *conn, args [][]byte) error {
	switch len(args) {
	case 1:
		c.wr.simple("PONG")
	case 2:
		c.wr.bulk(args[1])
	default:
		return wrongArgs("ping")
	}
	return nil
}

func cmdEcho(c *conn, args [][]byte) error {
	c.wr.bulk(args[1])
	return nil
}

// authenticate checks a token with Config.Authenticate and sets the
// connection's scope. Without Authenticate every token is accepted.
func (c *conn) authenticate(token []byte) error {
	auth := c.s.cfg.Authenticate
	if auth == nil {
		c.scope = scopeAdmin
		return nil
	}
	name, ok := auth(string(token))
	sc, known := parseScope(name)
	if !ok || !known {
		if ok {
			c.s.cfg.Logger.Error("resp: a token has an unknown scope", "scope", name)
		}
		return replyError(msgWrongPass)
	}
	c.scope = sc
	return nil
}

// cmdAuth serves AUTH token and AUTH username token; the user name is not
// checked (tokens name their holder).
func cmdAuth(c *conn, args [][]byte) error {
	if len(args) > 3 {
		return replyError(msgSyntax)
	}
	if c.s.cfg.Authenticate == nil && len(args) == 2 {
		return replyError(msgNoPassword)
	}
	if err := c.authenticate(args[len(args)-1]); err != nil {
		return err
	}
	c.wr.ok()
	return nil
}

// cmdHello serves HELLO [protover [AUTH username token] [SETNAME name]]:
// it switches the connection to RESP2 or RESP3 and answers the server's
// description as a map.
func cmdHello(c *conn, args [][]byte) error {
	proto := c.wr.proto
	if len(args) > 1 {
		n, ok := parseInt(args[1])
		if !ok {
			return replyError("ERR Protocol version is not an integer or out of range")
		}
		if n != 2 && n != 3 {
			return replyError(msgNoProto)
		}
		proto = int(n)
	}
	var token []byte
	name, setName := "", false
	for i := 2; i < len(args); i++ {
		switch upper(args[i]) {
		case "AUTH":
			if i+2 >= len(args) {
				return errorf("ERR Syntax error in HELLO option '%s'", args[i])
			}
			token = args[i+2]
			i += 2
		case "SETNAME":
			if i+1 >= len(args) {
				return errorf("ERR Syntax error in HELLO option '%s'", args[i])
			}
			if err := checkClientName(args[i+1]); err != nil {
				return err
			}
			name, setName = string(args[i+1]), true
			i++
		default:
			return errorf("ERR Syntax error in HELLO option '%s'", args[i])
		}
	}
	if token != nil {
		if err := c.authenticate(token); err != nil {
			return err
		}
	}
	if c.scope == scopeNone {
		return replyError("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
	}
	if setName {
		c.name = name
	}
	c.wr.proto = proto
	c.wr.mapOf(7)
	c.wr.bulkString("server")
	c.wr.bulkString("redis")
	c.wr.bulkString("version")
	c.wr.bulkString(redisVersion)
	c.wr.bulkString("proto")
	c.wr.integer(int64(proto))
	c.wr.bulkString("id")
	c.wr.integer(c.id)
	c.wr.bulkString("mode")
	c.wr.bulkString("standalone")
	c.wr.bulkString("role")
	c.wr.bulkString("master")
	c.wr.bulkString("modules")
	c.wr.array(0)
	return nil
}

// checkClientName refuses what Redis refuses in a client name.
func checkClientName(b []byte) error {
	for _, ch := range b {
		if ch < '!' || ch > '~' {
			return replyError("ERR Client names cannot contain spaces, newlines or special characters.")
		}
	}
	return nil
}

func cmdClient(c *conn, args [][]byte) error {
	sub := upper(args[1])
	arity := map[string]int{"SETNAME": 3, "GETNAME": 2, "ID": 2, "INFO": 2, "SETINFO": 4, "NODELOCAL": -2,
		"NO-EVICT": 3, "NO-TOUCH": 3, "HELP": 2}
	n, known := arity[sub]
	switch {
	case !known:
		return errorf("ERR unknown subcommand '%s'. Try CLIENT HELP.", clip(args[1], 128))
	case n > 0 && len(args) != n, n < 0 && len(args) > -n+1:
		return errorf("ERR wrong number of arguments for 'client|%s' command", strings.ToLower(sub))
	}
	switch sub {
	case "SETNAME":
		if err := checkClientName(args[2]); err != nil {
			return err
		}
		c.name = string(args[2])
		c.wr.ok()
	case "GETNAME":
		if c.name == "" {
			c.wr.null()
		} else {
			c.wr.bulkString(c.name)
		}
	case "ID":
		c.wr.integer(c.id)
	case "INFO":
		c.wr.verbatim(c.info())
	case "SETINFO":
		return c.setInfo(args[2], args[3])
	case "NODELOCAL":
		return c.nodeLocal(args[2:])
	case "NO-EVICT", "NO-TOUCH":
		if o := upper(args[2]); o != "ON" && o != "OFF" {
			return replyError(msgSyntax)
		}
		c.wr.ok()
	case "HELP":
		lines := []string{
			"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"GETNAME", "    Return the name of the current connection.",
			"ID", "    Return the ID of the current connection.",
			"INFO", "    Return information about the current connection.",
			"NODELOCAL [ON|OFF]", "    Make this connection's writes node-local (never sent to peers), like X-Is-Sync: true over HTTP; without an argument, answer the current setting.",
			"SETINFO <LIB-NAME|LIB-VER> <value>", "    Set client library name and version.",
			"SETNAME <name>", "    Assign the name <name> to the current connection.",
			"HELP", "    Print this help.",
		}
		c.wr.array(len(lines))
		for _, l := range lines {
			c.wr.simple(l)
		}
	}
	return nil
}

func (c *conn) setInfo(attr, value []byte) error {
	if err := checkClientName(value); err != nil {
		return errorf("ERR %s cannot contain spaces, newlines or special characters.", upper(attr))
	}
	switch upper(attr) {
	case "LIB-NAME":
		c.libName = string(value)
	case "LIB-VER":
		c.libVer = string(value)
	default:
		return errorf("ERR Unrecognized option '%s'", clip(attr, 128))
	}
	c.wr.ok()
	return nil
}

// nodeLocal serves CLIENT NODELOCAL [ON|OFF]: with ON, every write of the
// connection is applied on this node only, as X-Is-Sync: true does over
// HTTP; without an argument it answers the setting.
func (c *conn) nodeLocal(args [][]byte) error {
	if len(args) == 0 {
		c.wr.bulkString(map[bool]string{true: "on", false: "off"}[c.local])
		return nil
	}
	switch upper(args[0]) {
	case "ON":
		c.local = true
	case "OFF":
		c.local = false
	default:
		return replyError(msgSyntax)
	}
	c.wr.ok()
	return nil
}

// info is the connection's CLIENT INFO line.
func (c *conn) info() string {
	now := c.s.cfg.Now()
	return fmt.Sprintf("id=%d addr=%s laddr=%s name=%s age=%d idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 cmd=%s user=default resp=%d lib-name=%s lib-ver=%s nodelocal=%d\n",
		c.id, c.nc.RemoteAddr(), c.nc.LocalAddr(), c.name, int64(now.Sub(c.created).Seconds()),
		c.lastCmd, c.wr.proto, c.libName, c.libVer, map[bool]int{true: 1, false: 0}[c.local])
}

func clip(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

func cmdSelect(c *conn, args [][]byte) error {
	n, err := intArg(args[1])
	if err != nil {
		return err
	}
	if n != 0 {
		return replyError(msgDBIndex)
	}
	c.wr.ok()
	return nil
}

func cmdQuit(c *conn, _ [][]byte) error {
	c.wr.ok()
	c.quit = true
	return nil
}

func cmdReset(c *conn, _ [][]byte) error {
	c.reset()
	c.wr.simple("RESET")
	return nil
}
