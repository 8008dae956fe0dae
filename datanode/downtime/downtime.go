// Package downtime records when a data node was last healthy, so that after
// a restart it knows how long it was away and can repair what it owns first
// (docs/architecture.md, "Downtime recovery").
//
// The record is one small file replaced atomically: written to a temporary
// file in the same directory, fsynced, renamed over the old one, and the
// directory fsynced, so after a crash the file holds either the previous
// time or the new one, never a torn mix.
//
// # Caveats
//
// The time is wall-clock time (Unix milliseconds): it must survive a
// restart, which the monotonic clock does not. It decides only how much to
// repair first, never safety: a clock that jumps makes the estimate wrong,
// and the node then repairs more or less eagerly, nothing worse.
package downtime

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/stratum-store/stratum/internal/atomicfile"
)

// Mark is the last-healthy record of one node, stored at Path.
type Mark struct {
	Path string
}

// Write records t as the last time the node was healthy, atomically.
func (m Mark) Write(t time.Time) error {
	if err := atomicfile.Write(m.Path, 0o644, strings.NewReader(strconv.FormatInt(t.UnixMilli(), 10)+"\n")); err != nil {
		return fmt.Errorf("downtime: %w", err)
	}
	return nil
}

// Read returns the recorded time; ok is false when there is no record (a
// node started for the first time).
func (m Mark) Read() (t time.Time, ok bool, err error) {
	b, err := os.ReadFile(m.Path)
	if errors.Is(err, os.ErrNotExist) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("downtime: read: %w", err)
	}
	ms, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("downtime: %s holds %q, not a time: %w", m.Path, b, err)
	}
	return time.UnixMilli(ms), true, nil
}

// Away returns how long the node was away: now minus the recorded time, or
// 0 without a record or when the clock went backwards.
func (m Mark) Away(now time.Time) (time.Duration, error) {
	t, ok, err := m.Read()
	if err != nil || !ok {
		return 0, err
	}
	return max(now.Sub(t), 0), nil
}
