//go:build !stratum_bug_nomarker

package planted

// NoRemovalMarker: when true, the store writes no removal marker when it
// drops a copy (Remove, Quarantine, a tombstone's expiry), so a power
// failure can bring the copy back from the value log's replay.
const NoRemovalMarker = false
