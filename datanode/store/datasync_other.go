//go:build !linux

package store

import "os"

// datasync is fsync where fdatasync is not at hand (vlog.go, "Zeros ahead
// of the end", explains why Linux uses fdatasync).
func datasync(f *os.File, _ int64) error { return f.Sync() }
