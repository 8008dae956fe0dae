package objid

import "errors"

// Errors of parsing and verification; api maps each to its HTTP status and
// error code (api/errors.go).
var (
	ErrInvalid        = errors.New("invalid object id")
	ErrDigestMismatch = errors.New("body does not hash to the object id")
	ErrCollision      = errors.New("sha1 collision detected")
)
