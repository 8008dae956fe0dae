package cli

import (
	"os"
	"strings"
	"sync"
	"time"
)

// skewClock is a wall clock offset by a duration read from a file, for
// fault tests that make one node's clock jump (docs/testing.md): writing
// "10m" or "-3m" to the file moves this node's clock by that much from the
// next reading on. An empty, missing or unreadable file is no offset. Only
// stamps read this clock (datanode.Config.Clock); leases, fencing,
// tombstone ages and downtime windows do not.
type skewClock struct {
	path string
	mu   sync.Mutex // guards the cache below
	read time.Time  // when the file was last read (monotonic)
	skew time.Duration
}

func (c *skewClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.read) > 100*time.Millisecond {
		c.read, c.skew = time.Now(), 0
		if b, err := os.ReadFile(c.path); err == nil {
			c.skew, _ = time.ParseDuration(strings.TrimSpace(string(b)))
		}
	}
	return time.Now().Add(c.skew)
}
