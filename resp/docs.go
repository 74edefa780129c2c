package resp

import "strings"

// docArg is one argument of a command as COMMAND DOCS describes it; what
// redis-cli turns into its hints as you type.
type docArg struct {
	name, typ, token string
	optional, many   bool
	args             []docArg
}

// docArgs builds the argument tree of a syntax line in Redis's
// documentation notation: words, "[...]" for optional parts, "a|b" for
// alternatives, "..." for repetition, upper-case words for literal tokens.
func docArgs(syntax string) []docArg {
	var out []docArg
	for _, part := range splitTop(syntax, ' ') {
		if part == "..." && len(out) > 0 {
			out[len(out)-1].many = true
			continue
		}
		if strings.HasPrefix(part, "[") && strings.HasSuffix(part, "]") {
			inner := part[1 : len(part)-1]
			// "key [key ...]" and "key value [key value ...]": repetition of
			// what comes just before.
			if words := strings.Fields(inner); len(words) >= 2 && words[len(words)-1] == "..." {
				rep := words[:len(words)-1]
				if n := len(rep); n <= len(out) && sameNames(out[len(out)-n:], rep) {
					if n == 1 {
						out[len(out)-1].many = true
					} else {
						block := docArg{name: "data", typ: "block", many: true, args: append([]docArg(nil), out[len(out)-n:]...)}
						out = append(out[:len(out)-n], block)
					}
					continue
				}
			}
			a := alternatives(inner)
			a.optional = true
			out = append(out, a)
			continue
		}
		out = append(out, word(part))
	}
	return out
}

func sameNames(args []docArg, names []string) bool {
	for i, a := range args {
		if a.name != names[i] {
			return false
		}
	}
	return true
}

// alternatives reads "a|b c|D" as one argument: a oneof, or the single
// alternative.
func alternatives(s string) docArg {
	alts := splitTop(s, '|')
	if len(alts) == 1 {
		return sequence(alts[0])
	}
	one := docArg{typ: "oneof"}
	var names []string
	for _, a := range alts {
		d := sequence(a)
		one.args = append(one.args, d)
		names = append(names, d.name)
	}
	one.name = strings.Join(names, "-")
	if len(one.name) > 24 {
		one.name = "option"
	}
	return one
}

// sequence reads the words of one alternative: "TOKEN value" is a value
// with its token, "TOKEN a b" a block, anything else as docArgs reads it.
func sequence(s string) docArg {
	parts := splitTop(s, ' ')
	switch {
	case len(parts) == 1:
		return word(parts[0])
	case len(parts) == 2 && isToken(parts[0]) && !strings.HasPrefix(parts[1], "["):
		d := word(parts[1])
		d.token = parts[0]
		return d
	case isToken(parts[0]):
		return docArg{name: strings.ToLower(parts[0]), typ: "block", token: parts[0], args: docArgs(strings.Join(parts[1:], " "))}
	}
	return docArg{name: "args", typ: "block", args: docArgs(s)}
}

func word(w string) docArg {
	if isToken(w) {
		return docArg{name: strings.ToLower(w), typ: "pure-token", token: w}
	}
	typ := "string"
	switch w {
	case "key":
		typ = "key"
	case "pattern":
		typ = "pattern"
	case "seconds", "milliseconds", "offset", "start", "end", "increment", "decrement", "count",
		"index", "protover", "cursor":
		typ = "integer"
	case "unix-time-seconds", "unix-time-milliseconds":
		typ = "unix-time"
	}
	return docArg{name: w, typ: typ}
}

func isToken(w string) bool { return w != "" && strings.ToUpper(w) == w && strings.ToLower(w) != w }

// splitTop splits s at sep outside brackets.
func splitTop(s string, sep byte) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth--
		case sep:
			if depth == 0 {
				if i > start {
					out = append(out, s[start:i])
				}
				start = i + 1
			}
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// writeDocArgs writes an argument tree as COMMAND DOCS does.
func (w *writer) docArgs(args []docArg) {
	w.array(len(args))
	for _, a := range args {
		n := 2
		if a.token != "" {
			n++
		}
		if a.optional || a.many {
			n++
		}
		if len(a.args) > 0 {
			n++
		}
		w.mapOf(n)
		w.bulkString("name")
		w.bulkString(a.name)
		w.bulkString("type")
		w.bulkString(a.typ)
		if a.token != "" {
			w.bulkString("token")
			w.bulkString(a.token)
		}
		if a.optional || a.many {
			var flags []string
			if a.optional {
				flags = append(flags, "optional")
			}
			if a.many {
				flags = append(flags, "multiple")
			}
			w.bulkString("flags")
			w.set(len(flags))
			for _, f := range flags {
				w.simple(f)
			}
		}
		if len(a.args) > 0 {
			w.bulkString("arguments")
			w.docArgs(a.args)
		}
	}
}
