package pack

import (
	"fmt"
	"slices"
)

// deltaVarint reads a delta header size: 7 bits per byte, little-endian.
func deltaVarint(d []byte) (uint64, []byte, error) {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if len(d) == 0 {
			return 0, nil, fmt.Errorf("%w: header cut short", ErrBadDelta)
		}
		c := d[0]
		d = d[1:]
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, d, nil
		}
	}
	return 0, nil, fmt.Errorf("%w: header size overflows", ErrBadDelta)
}

// DeltaSizes returns the base and result sizes a delta declares.
func DeltaSizes(delta []byte) (base, result uint64, err error) {
	base, d, err := deltaVarint(delta)
	if err != nil {
		return 0, 0, err
	}
	result, _, err = deltaVarint(d)
	return base, result, err
}

// ApplyDelta rebuilds an object from base and delta, appending to dst. It
// refuses a base of the wrong size, copies outside the base, a result over
// maxSize or of the wrong size, and the reserved instruction 0.
func ApplyDelta(dst, base, delta []byte, maxSize int64) ([]byte, error) {
	bsize, d, err := deltaVarint(delta)
	if err != nil {
		return nil, err
	}
	rsize, d, err := deltaVarint(d)
	if err != nil {
		return nil, err
	}
	if bsize != uint64(len(base)) {
		return nil, fmt.Errorf("%w: declares a base of %d bytes, base has %d", ErrBadDelta, bsize, len(base))
	}
	if rsize > uint64(maxSize) {
		return nil, fmt.Errorf("%w: delta result of %d bytes, max %d", ErrTooLarge, rsize, maxSize)
	}
	start := len(dst)
	// Reserve no more than the base and the delta hold, not the size the
	// delta claims: a lying header costs nothing; a real result grows as
	// it is written.
	dst = slices.Grow(dst[:start:start], int(min(rsize, uint64(len(base)+len(delta)))))
	for len(d) > 0 {
		cmd := d[0]
		d = d[1:]
		switch {
		case cmd&0x80 != 0:
			var off, n uint64
			for i := uint(0); i < 7; i++ {
				if cmd&(1<<i) == 0 {
					continue
				}
				if len(d) == 0 {
					return nil, fmt.Errorf("%w: copy instruction cut short", ErrBadDelta)
				}
				if i < 4 {
					off |= uint64(d[0]) << (8 * i)
				} else {
					n |= uint64(d[0]) << (8 * (i - 4))
				}
				d = d[1:]
			}
			if n == 0 {
				n = 0x10000
			}
			if off+n > uint64(len(base)) {
				return nil, fmt.Errorf("%w: copy of %d bytes at %d outside a base of %d", ErrBadDelta, n, off, len(base))
			}
			if uint64(len(dst)-start)+n > rsize {
				return nil, fmt.Errorf("%w: result exceeds the declared %d bytes", ErrBadDelta, rsize)
			}
			dst = append(dst, base[off:off+n]...)
		case cmd != 0:
			n := int(cmd)
			if n > len(d) {
				return nil, fmt.Errorf("%w: insert of %d bytes, %d left", ErrBadDelta, n, len(d))
			}
			if uint64(len(dst)-start+n) > rsize {
				return nil, fmt.Errorf("%w: result exceeds the declared %d bytes", ErrBadDelta, rsize)
			}
			dst = append(dst, d[:n]...)
			d = d[n:]
		default:
			return nil, fmt.Errorf("%w: reserved instruction 0", ErrBadDelta)
		}
	}
	if uint64(len(dst)-start) != rsize {
		return nil, fmt.Errorf("%w: result of %d bytes, declared %d", ErrBadDelta, len(dst)-start, rsize)
	}
	return dst, nil
}

// AppendDelta appends a delta that turns base into target: one copy of the
// common prefix, an insert of the middle, one copy of the common suffix. It
// is simple rather than small; git's own deltas find more.
func AppendDelta(dst, base, target []byte) []byte {
	dst = appendDeltaVarint(dst, uint64(len(base)))
	dst = appendDeltaVarint(dst, uint64(len(target)))
	p := 0
	for p < len(base) && p < len(target) && base[p] == target[p] {
		p++
	}
	s := 0
	for s < len(base)-p && s < len(target)-p && base[len(base)-1-s] == target[len(target)-1-s] {
		s++
	}
	dst = appendCopy(dst, 0, p)
	mid := target[p : len(target)-s]
	for len(mid) > 0 {
		n := min(len(mid), 0x7f)
		dst = append(dst, byte(n))
		dst = append(dst, mid[:n]...)
		mid = mid[n:]
	}
	return appendCopy(dst, len(base)-s, s)
}

func appendDeltaVarint(dst []byte, v uint64) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

// appendCopy appends copy instructions for base[off:off+n], in pieces of
// at most 64 KiB.
func appendCopy(dst []byte, off, n int) []byte {
	for n > 0 {
		c := min(n, 0x10000)
		cmd := byte(0x80)
		var args []byte
		for i := 0; i < 4; i++ {
			if b := byte(off >> (8 * i)); b != 0 {
				cmd |= 1 << i
				args = append(args, b)
			}
		}
		if c != 0x10000 {
			for i := 0; i < 3; i++ {
				if b := byte(c >> (8 * i)); b != 0 {
					cmd |= 1 << (4 + i)
					args = append(args, b)
				}
			}
		}
		dst = append(append(dst, cmd), args...)
		off += c
		n -= c
	}
	return dst
}
