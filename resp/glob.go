package resp

// globMatch reports whether s matches pattern with Redis's glob rules
// (stringmatchlen): * any run of bytes, ? one byte, [abc] [^abc] [a-z] a
// class, \x the byte x itself.
func globMatch(pattern, s []byte) bool {
	return globAt(pattern, s, 0)
}

// maxGlobDepth bounds the recursion of "*" so a hostile pattern cannot
// exhaust the stack; deeper patterns match nothing.
const maxGlobDepth = 64

func globAt(p, s []byte, depth int) bool {
	if depth > maxGlobDepth {
		return false
	}
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 1 && p[1] == '*' {
				p = p[1:]
			}
			if len(p) == 1 {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if globAt(p[1:], s[i:], depth+1) {
					return true
				}
			}
			return false
		case '?':
			if len(s) == 0 {
				return false
			}
			s = s[1:]
		case '[':
			if len(s) == 0 {
				return false
			}
			var ok bool
			p, ok = matchClass(p[1:], s[0])
			if !ok {
				return false
			}
			s = s[1:]
			continue
		case '\\':
			if len(p) >= 2 {
				p = p[1:]
			}
			fallthrough
		default:
			if len(s) == 0 || p[0] != s[0] {
				return false
			}
			s = s[1:]
		}
		p = p[1:]
	}
	return len(s) == 0
}

// matchClass matches c against the class that starts p (after its '['),
// and returns the pattern after the class's ']'.
func matchClass(p []byte, c byte) ([]byte, bool) {
	not := len(p) > 0 && p[0] == '^'
	if not {
		p = p[1:]
	}
	match := false
	for len(p) > 0 && p[0] != ']' {
		switch {
		case p[0] == '\\' && len(p) >= 2:
			p = p[1:]
			if p[0] == c {
				match = true
			}
		case len(p) >= 3 && p[1] == '-':
			lo, hi := p[0], p[2]
			if lo > hi {
				lo, hi = hi, lo
			}
			if c >= lo && c <= hi {
				match = true
			}
			p = p[2:]
		default:
			if p[0] == c {
				match = true
			}
		}
		p = p[1:]
	}
	if len(p) > 0 {
		p = p[1:] // the ']'
	}
	return p, match != not
}

// literalPrefix is the part of a pattern before its first special byte:
// every key the pattern matches starts with it.
func literalPrefix(p []byte) string {
	for i, c := range p {
		switch c {
		case '*', '?', '[', '\\':
			return string(p[:i])
		}
	}
	return string(p)
}
