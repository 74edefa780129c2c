package loadgen

import "github.com/disperse/disperse/internal/size"

// sizeFlag is a byte count given as bytes or with KiB, MiB or GiB.
type sizeFlag int64

func (s *sizeFlag) String() string { return size.Format(int64(*s)) }

func (s *sizeFlag) Set(v string) error {
	n, err := size.Parse(v, 1)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}
