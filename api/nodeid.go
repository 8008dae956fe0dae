package api

import (
	"fmt"
	"regexp"
)

// nodeIDPattern is what a node ID may be: 1-64 letters, digits, '.', '_'
// or '-'. An ID goes into URLs (/v1/admin/nodes/{id}/drain), etcd keys
// and etcd user names, so nothing else is allowed (the control plane
// checks the same rule when it creates a node's etcd user).
var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ValidateNodeID returns ErrBadRequest unless id is a valid node ID.
func ValidateNodeID(id string) error {
	if !nodeIDPattern.MatchString(id) {
		return fmt.Errorf("%w: node ID %q: want 1-64 letters, digits, '.', '_' or '-'", ErrBadRequest, id)
	}
	return nil
}
