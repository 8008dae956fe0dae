//go:build !stratum_bug_nosync

package planted

// NoSync: when true, the store never fsyncs, whatever its configuration.
const NoSync = false
