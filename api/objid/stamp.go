package objid

import "strconv"

// Stamp orders the writes and deletes of one object. It is a hybrid
// logical clock value: the coordinator's wall-clock milliseconds in the
// high 48 bits and a counter in the low 16, never lower than any stamp the
// node has seen (docs/consistency.md, "Deletes"). A replica applies a write
// or a delete only over an older stamp, and a tie goes to the delete, so
// replicas that saw the same operations in any order agree. Stamp 0 is
// "unknown": copies written before stamps existed, or copied from one.
type Stamp uint64

func (s Stamp) String() string { return strconv.FormatUint(uint64(s), 10) }
