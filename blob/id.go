package blob

import "fmt"

// maxIDLen is the longest blob id.
const maxIDLen = 256

// validateID checks a blob id: 1..256 characters of A-Z a-z 0-9 . _ -, and
// not "." or "..".
func validateID(id string) error {
	if len(id) < 1 || len(id) > maxIDLen {
		return fmt.Errorf("%w: %d characters, want 1..%d", ErrBadID, len(id), maxIDLen)
	}
	if id == "." || id == ".." {
		return fmt.Errorf("%w: %q", ErrBadID, id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("%w: character %q at %d", ErrBadID, c, i)
		}
	}
	return nil
}

// validateParams checks the shard counts k and m.
func validateParams(k, m int) error {
	if k < 1 || m < 0 || k+m > 256 {
		return fmt.Errorf("%w: data %d, parity %d (want 1 <= data, 0 <= parity, data+parity <= 256)", ErrBadParams, k, m)
	}
	return nil
}
