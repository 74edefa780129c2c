package httpd

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Scopes of a client token. Each allows what the one before it allows, and
// more: read is GET and HEAD (listings included); write adds PUT and
// DELETE; admin adds /cluster/*, /metrics and destructive commands.
const (
	ScopeRead  = "read"
	ScopeWrite = "write"
	ScopeAdmin = "admin"
)

// MinTokenBytes is the shortest token accepted. A token is the only thing
// between a stranger and the data, so one that could be guessed is refused
// at start rather than trusted.
const MinTokenBytes = 16

// scopeRank orders the scopes; 0 is not a scope.
func scopeRank(scope string) int {
	switch scope {
	case ScopeRead:
		return 1
	case ScopeWrite:
		return 2
	case ScopeAdmin:
		return 3
	}
	return 0
}

// ScopeAllows reports whether a token of scope have may do what needs
// scope need.
func ScopeAllows(have, need string) bool {
	n := scopeRank(need)
	return n > 0 && scopeRank(have) >= n
}

// Token is one client token: a name (for rate limits and logs; never the
// secret), a scope and the secret a client sends as
// "Authorization: Bearer SECRET".
type Token struct {
	Name   string
	Scope  string
	Secret string
}

// Tokens is the set of client tokens a node accepts. It keeps only the
// SHA-256 of each secret, and checks a presented token against every one
// of them in constant time, so neither the secrets nor their lengths show
// in the time an answer takes. It never changes after NewTokens and is
// safe for concurrent use.
type Tokens struct {
	entries []tokenEntry
}

type tokenEntry struct {
	name   string
	scope  string
	digest [sha256.Size]byte
}

// NewTokens checks a list of tokens and builds the set: every name is
// unique and free of white space, every scope is read, write or admin,
// every secret is at least MinTokenBytes of printable ASCII without spaces,
// and no secret is given twice. An error names the token by its name, never
// by its secret.
func NewTokens(list []Token) (*Tokens, error) {
	t := &Tokens{entries: make([]tokenEntry, 0, len(list))}
	names := map[string]bool{}
	digests := map[[sha256.Size]byte]string{}
	for _, tok := range list {
		if err := checkToken(tok); err != nil {
			return nil, err
		}
		if names[tok.Name] {
			return nil, fmt.Errorf("token name %q is given twice", tok.Name)
		}
		names[tok.Name] = true
		d := sha256.Sum256([]byte(tok.Secret))
		if other, ok := digests[d]; ok {
			return nil, fmt.Errorf("tokens %q and %q have the same secret", other, tok.Name)
		}
		digests[d] = tok.Name
		t.entries = append(t.entries, tokenEntry{name: tok.Name, scope: tok.Scope, digest: d})
	}
	return t, nil
}

// checkToken checks one token on its own.
func checkToken(tok Token) error {
	switch {
	case tok.Name == "":
		return errors.New("a token has no name")
	case strings.ContainsFunc(tok.Name, isSpaceOrControl):
		return fmt.Errorf("token name %q contains white space or a control character", tok.Name)
	case scopeRank(tok.Scope) == 0:
		return fmt.Errorf("token %q: scope %q is not read, write or admin", tok.Name, tok.Scope)
	case len(tok.Secret) < MinTokenBytes:
		return fmt.Errorf("token %q is %d characters, fewer than the %d required (make one with: openssl rand -hex 32)",
			tok.Name, len(tok.Secret), MinTokenBytes)
	case strings.ContainsFunc(tok.Secret, func(r rune) bool { return r <= ' ' || r > '~' }):
		return fmt.Errorf("token %q has a character that is not printable ASCII, or a space", tok.Name)
	}
	return nil
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }

// Len is the number of tokens.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.entries)
}

// lookup returns the token whose secret is secret, or nil. It hashes secret
// and compares the digest with every token's in constant time, without
// stopping at a match.
func (t *Tokens) lookup(secret string) *tokenEntry {
	d := sha256.Sum256([]byte(secret))
	var found *tokenEntry
	for i := range t.entries {
		if subtle.ConstantTimeCompare(d[:], t.entries[i].digest[:]) == 1 {
			found = &t.entries[i]
		}
	}
	return found
}

// Authenticate returns the scope of the token whose secret is secret, and
// whether there is one. It is the check the HTTP API makes, for protocols
// that take the same tokens (the Redis port's AUTH).
func (t *Tokens) Authenticate(secret string) (scope string, ok bool) {
	if e := t.lookup(secret); e != nil {
		return e.scope, true
	}
	return "", false
}

// ParseTokens reads a token file: one token per line as
//
//	name scope secret
//
// separated by spaces or tabs, where scope is read, write or admin. Blank
// lines and lines whose first non-blank character is # are skipped. source
// names the file in errors, which give the line number and never a secret.
func ParseTokens(r io.Reader, source string) ([]Token, error) {
	var list []Token
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("%s line %d: want three fields (name scope token), found %d", source, n, len(f))
		}
		tok := Token{Name: f[0], Scope: f[1], Secret: f[2]}
		if err := checkToken(tok); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", source, n, err)
		}
		list = append(list, tok)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("%s: no token in the file", source)
	}
	return list, nil
}

// LoadTokenFile reads and checks the token file at path (see ParseTokens).
func LoadTokenFile(path string) ([]Token, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	list, err := ParseTokens(f, path)
	if err != nil {
		return nil, err
	}
	if _, err := NewTokens(list); err != nil { // duplicates within the file
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return list, nil
}

// bearer returns the token of an "Authorization: Bearer TOKEN" header, and
// whether the request carries one. The scheme is case-insensitive.
func bearer(header string) (string, bool) {
	const scheme = "bearer "
	if len(header) <= len(scheme) || !strings.EqualFold(header[:len(scheme)], scheme) {
		return "", false
	}
	tok := strings.TrimSpace(header[len(scheme):])
	return tok, tok != ""
}
