package api

// MemberState is a node's membership state; see docs/membership.md.
type MemberState string

// Member states.
const (
	StateJoining  MemberState = "JOINING"
	StateActive   MemberState = "ACTIVE"
	StateSuspect  MemberState = "SUSPECT"
	StateDown     MemberState = "DOWN"
	StateDraining MemberState = "DRAINING"
)

// WriteTarget reports whether a node in state s receives new writes as an
// owner.
func (s MemberState) WriteTarget() bool {
	return s == StateJoining || s == StateActive || s == StateSuspect
}

// ReadTarget reports whether a node in state s is asked for reads.
func (s MemberState) ReadTarget() bool { return s != StateDown }

// Member is a node's membership record as the cluster sees it.
type Member struct {
	ID         string      `json:"id"`
	State      MemberState `json:"state"`
	Generation string      `json:"generation"`
	// SuspectEvents are the wall-clock times (unix ms) of recent
	// ACTIVE->SUSPECT transitions, for flap damping only.
	SuspectEvents []int64 `json:"suspect_events,omitempty"`
	// Drained is set by a DRAINING node once every object it holds has N
	// copies on the other nodes; only then is its removal safe.
	Drained bool `json:"drained,omitempty"`
}

// BreakerState is one peer's circuit-breaker state as a node sees it.
type BreakerState struct {
	Peer     string `json:"peer"`
	State    string `json:"state"` // closed, open, half-open
	Failures int    `json:"consecutive_failures"`
}

// Admin routes (scope admin once auth exists).
const (
	PathAdmin          = "/v1/admin/"          // every admin route is under it (scope admin)
	PathAdminNodes     = "/v1/admin/nodes"     // GET list; POST /v1/admin/nodes/{id}/drain|remove[?force=true]
	PathAdminRebalance = "/v1/admin/rebalance" // GET progress; POST /v1/admin/rebalance/pause|resume
)
