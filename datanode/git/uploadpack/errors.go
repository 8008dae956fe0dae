package uploadpack

import (
	"errors"
	"fmt"

	"github.com/stratum-store/stratum/datanode/git/object"
)

// Errors Serve returns (wrapped); the client has been told the same thing
// in Git's terms (an ERR packet, or band 3 once the pack has started).
var (
	// ErrProtocol is a request that does not follow Git's protocol: an
	// unknown command or argument, a malformed line, a bad number.
	ErrProtocol = errors.New("uploadpack: protocol error")
	// ErrNotOurRef is a want that is neither a ref tip of the repository
	// nor a commit reachable from one. Objects of other repositories share
	// the store, so this check is what keeps a repository's readers inside
	// it.
	ErrNotOurRef = errors.New("uploadpack: not our ref")
	// ErrMissingObject is an object the repository's history names but
	// the store does not hold: the pack would be short, so none is sent.
	ErrMissingObject = errors.New("uploadpack: missing object")
)

// gitError is an error whose text is what the client should print: Git's
// own wording where Git has one ("upload-pack: not our ref <oid>").
type gitError struct {
	msg string
	err error
}

func (e *gitError) Error() string { return e.msg }
func (e *gitError) Unwrap() error { return e.err }

func protocolErr(format string, a ...any) error {
	return &gitError{msg: "upload-pack: " + fmt.Sprintf(format, a...), err: ErrProtocol}
}

func notOurRef(id object.ID) error {
	return &gitError{msg: "upload-pack: not our ref " + id.String(), err: ErrNotOurRef}
}

func missing(id object.ID, err error) error {
	return &gitError{msg: fmt.Sprintf("upload-pack: object %s is missing from the store (%v)", id, err), err: ErrMissingObject}
}
