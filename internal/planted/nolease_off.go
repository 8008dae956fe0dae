//go:build !stratum_bug_nolease

package planted

// NoLease: when true, a partition primary serves without checking its lease (a paused, deposed primary answers stale reads).
const NoLease = false
