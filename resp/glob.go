package resp

// globMatch reports whether s matches pattern with Redis's glob rules
// (stringmatchlen): * any run of bytes, ? one byte, [abc] [^abc] [a-z] a
// class, \x the byte x itself. It backtracks only to the last star, so
// its time is at most len(pattern)*len(s) whatever the pattern.
func globMatch(p, s []byte) bool {
	px, sx := 0, 0
	starP, starS := -1, 0
	for px < len(p) || sx < len(s) {
		if px < len(p) {
			switch c := p[px]; c {
			case '*':
				starP, starS = px, sx
				px++
				continue
			case '?':
				if sx < len(s) {
					px++
					sx++
					continue
				}
			case '[':
				if sx < len(s) {
					if rest, ok := matchClass(p[px+1:], s[sx]); ok {
						px = len(p) - len(rest)
						sx++
						continue
					}
				}
			default:
				n := 1
				if c == '\\' && px+1 < len(p) {
					c, n = p[px+1], 2
				}
				if sx < len(s) && s[sx] == c {
					px += n
					sx++
					continue
				}
			}
		}
		if starP >= 0 && starS < len(s) {
			starS++
			px, sx = starP+1, starS
			continue
		}
		return false
	}
	return true
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
