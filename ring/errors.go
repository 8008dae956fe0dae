package ring

import "errors"

// Sentinel errors returned (wrapped, with details) by Config.Validate and New.
// Callers test for them with errors.Is.
var (
	// ErrInvalidConfig: a Config field breaks its rule. The message names the
	// field, the rule and the value given.
	ErrInvalidConfig = errors.New("ring: invalid config")
	// ErrInvalidNode: a Node has an empty ID or an empty Addr.
	ErrInvalidNode = errors.New("ring: invalid node")
	// ErrDuplicateNode: two nodes share one ID.
	ErrDuplicateNode = errors.New("ring: duplicate node ID")
)
