package object

import "fmt"

// Options tune Check.
type Options struct {
	// Strict refuses what Git reports as warnings: modes 100664 and
	// zero-padded modes, all-zero entry IDs. The zero value is Git's default
	// for receive.fsckObjects; servers should set it, as `git fsck --strict`.
	Strict bool
}

// Check checks an object body of type t as `git fsck` does. It returns nil,
// a *CheckError (errors.Is(err, ErrInvalid)), or an error wrapping
// ErrBadType. Blobs are always valid.
func Check(t Type, body []byte, o Options) error {
	switch t {
	case Blob:
		return nil
	case Tree:
		return checkTree(body, o)
	case Commit:
		return checkCommit(body)
	case Tag:
		return checkTag(body)
	}
	return fmt.Errorf("%w: %d", ErrBadType, t)
}
