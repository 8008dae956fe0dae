//go:build stratum_bug_gcpending

package planted

// GCIgnoresPending: when true, the value log collector ignores the pins
// of pending appends (records appended but not yet indexed) and deletes
// their segment when no indexed record is left in it.
const GCIgnoresPending = true
