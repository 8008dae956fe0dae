package api

import "fmt"

// Consistency is how many replicas must answer a request: one, a majority
// (quorum) or all N of them.
type Consistency string

// The consistency levels. The default is Quorum.
const (
	One    Consistency = "one"
	Quorum Consistency = "quorum"
	All    Consistency = "all"
)

// ParseConsistency accepts "one", "quorum", "all", or "" (Quorum).
func ParseConsistency(s string) (Consistency, error) {
	switch Consistency(s) {
	case "":
		return Quorum, nil
	case One, Quorum, All:
		return Consistency(s), nil
	}
	return "", fmt.Errorf("%w: %q, want one, quorum or all", ErrInvalidConsistency, s)
}

// Required returns how many of n replicas must acknowledge: 1, n/2+1 or n.
func (c Consistency) Required(n int) int {
	switch c {
	case One:
		return 1
	case All:
		return n
	}
	return n/2 + 1
}
