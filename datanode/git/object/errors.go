package object

import (
	"errors"
	"fmt"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrCollision is an input carrying a known SHA-1 collision attack.
	ErrCollision = errors.New("object: sha1 collision attack detected")
	// ErrInvalid is an object that fails a check; the error is a *CheckError.
	ErrInvalid = errors.New("object: invalid object")
	// ErrBadType is an unknown object type name or number.
	ErrBadType = errors.New("object: bad object type")
	// ErrBadID is an object ID that is not 40 lowercase hex characters.
	ErrBadID = errors.New("object: bad object id")
)

// CheckError is an object refused by Check. ID is Git's fsck message ID
// (e.g. "treeNotSorted"), so `unpack` reports read the way Git's do.
type CheckError struct {
	Type   Type
	ID     string
	Detail string
}

func (e *CheckError) Error() string {
	return fmt.Sprintf("invalid %s: %s: %s", e.Type, e.ID, e.Detail)
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *CheckError) Unwrap() error { return ErrInvalid }

func bad(t Type, id, format string, a ...any) error {
	return &CheckError{Type: t, ID: id, Detail: fmt.Sprintf(format, a...)}
}
