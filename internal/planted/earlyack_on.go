//go:build stratum_bug_earlyack

package planted

// EarlyAck: when true, the object coordinator acknowledges a write after the first replica, whatever the consistency level.
const EarlyAck = true
