package store

import (
	"errors"

	"github.com/stratum-store/stratum/api/objid"
)

// Sentinel errors. Every error the store returns that callers act on wraps
// one of these (or api.ErrDigestMismatch / api.ErrCollision / api.ErrInvalidOID
// from the object ID checks); test with errors.Is.
var (
	// ErrNotFound: no copy of the object is stored here.
	ErrNotFound = errors.New("store: object not found")
	// ErrCorrupt: a copy is indexed but fails verification (bit rot, a
	// truncated or missing file, a damaged leveldb value). It is logged and
	// never served.
	ErrCorrupt = errors.New("store: stored copy is corrupt")
	// ErrTooLarge: the object is larger than Config.MaxObjectSize.
	ErrTooLarge = errors.New("store: object too large")
	// ErrSizeMismatch: PutReader read a body shorter or longer than the size
	// it was given.
	ErrSizeMismatch = errors.New("store: body length differs from declared size")
	// ErrBadValue: a BatchItem's Value is not an inline value that
	// decodes (a damaged or forged frame from a coordinator).
	ErrBadValue = errors.New("store: encoded value does not decode")
	// ErrDeleted: the object has a tombstone here (a *StampError says
	// its stamp). It also matches ErrNotFound.
	ErrDeleted = errors.New("store: object deleted")
	// ErrSuperseded: a write or delete carried a stamp no newer than what
	// is stored (a *StampError says the stored stamp); nothing was written.
	ErrSuperseded = errors.New("store: superseded by a newer write or delete")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
)

// notFound is ErrNotFound for one OID. It formats only when printed: a
// put plans every new object from a miss, and formatting each miss with
// fmt cost a git push about 1.5 % of its CPU.
type notFound struct{ oid objid.OID }

func (e notFound) Error() string { return ErrNotFound.Error() + ": " + e.oid.String() }
func (e notFound) Unwrap() error { return ErrNotFound }
