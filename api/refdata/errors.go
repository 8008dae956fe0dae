package refdata

import "errors"

// Errors of names and of replication; api maps each to its HTTP status and
// error code (api/errors.go).
var (
	ErrInvalidRepo    = errors.New("invalid repository name")
	ErrInvalidRefName = errors.New("invalid ref name")
	ErrStaleEpoch     = errors.New("stale partition epoch")
	ErrOutOfSync      = errors.New("replica out of sync with the primary")
)
