package api

import (
	"fmt"
	"strconv"

	"github.com/stratum-store/stratum/api/objid"
)

// Stamp orders the writes and deletes of one object (objid.Stamp).
type Stamp = objid.Stamp

// HeaderStamp carries a stamp on replica calls: the stamp of a write or
// delete sent, and the stamp of the copy or tombstone a replica holds.
const HeaderStamp = "X-Stratum-Stamp"

// ParseStamp parses a decimal stamp; "" is stamp 0.
func ParseStamp(s string) (Stamp, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: bad stamp %q", ErrBadRequest, s)
	}
	return Stamp(v), nil
}
