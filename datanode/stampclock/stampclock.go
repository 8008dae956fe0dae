// Package stampclock issues the stamps that order the writes and deletes
// of one object (objid.Stamp), and keeps the node's running time, the clock
// tombstones age by.
//
// A stamp is a hybrid logical clock value: wall-clock milliseconds in the
// high 48 bits and a counter in the low 16. The clock never goes back and
// always passes any stamp it has observed from another node, so a delete
// that follows a write this node saw (or the other way round) carries the
// higher stamp whatever the wall clock does; replicas that apply only
// newer stamps then agree (docs/consistency.md, "Deletes").
//
// Running time is the monotonic time since New plus what earlier runs
// saved in <dir>/runtime: a wall-clock jump moves neither it nor the order
// of stamps issued after an observed one.
//
// # Caveats
//
// Observe follows a stamp at most MaxLead ahead of this node's wall clock:
// a write or delete that must go above such a stamp is refused until the
// wall clock catches up, rather than lifting every later stamp for good.
// Save must be called now and then (the node does it every
// HealthyMarkInterval), or a restart forgets the running time since.
package stampclock

import (
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/stratum-store/stratum/api/objid"
	"github.com/stratum-store/stratum/datanode/downtime"
)

// Clock issues stamps: each is above every stamp issued or observed
// before. Its physical part is the wall function's time in milliseconds.
type Clock struct {
	wall    func() time.Time
	mu      sync.Mutex // guards last and clamped; never held with another lock
	last    objid.Stamp
	clamped int64        // stamps Observe held back to MaxLead
	logger  *slog.Logger // if set, told of each stamp held back
	start   time.Time    // monotonic reading at Start
	base    time.Duration
	mark    downtime.Mark
}

// New returns a clock reading wall (time.Now when nil) that keeps its
// running time in dir/runtime, continuing from what an earlier run saved
// there. logger, when not nil, is told of each stamp held back.
func New(wall func() time.Time, dir string, logger *slog.Logger) *Clock {
	if wall == nil {
		wall = time.Now
	}
	c := &Clock{wall: wall, logger: logger, start: time.Now(), mark: downtime.Mark{Path: filepath.Join(dir, "runtime")}}
	if t, ok, err := c.mark.Read(); err == nil && ok {
		c.base = time.Duration(t.UnixNano())
	}
	return c
}

// Now returns a new stamp, above every earlier one.
func (c *Clock) Now() objid.Stamp {
	phys := firstStamp(c.wall())
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = max(c.last+1, phys)
	return c.last
}

// MaxLead bounds how far ahead of this node's wall clock an observed
// stamp can move the clock. A peer whose clock (or a stamp on disk) is
// further ahead would otherwise lift every later stamp of this node, for
// good, and near the top of the range make the counter wrap. Past the
// bound the clock moves only to the bound: a write or delete that must go
// above such a stamp is refused (409 superseded, or 503 once the retry
// fails too) until the wall clock is within the bound of it. Clock skews
// within an hour behave as before.
const MaxLead = time.Hour

// Observe moves the clock past a stamp seen from another node, at most
// MaxLead ahead of the wall clock; it reports false when it clamped s.
func (c *Clock) Observe(s objid.Stamp) bool {
	limit := firstStamp(c.wall().Add(MaxLead))
	c.mu.Lock()
	c.last = max(c.last, min(s, limit))
	if s <= limit {
		c.mu.Unlock()
		return true
	}
	c.clamped++
	c.mu.Unlock()
	if c.logger != nil {
		c.logger.Warn("a stamp too far ahead of this node's clock: the clock follows it only to the bound",
			"stamp", s, "ahead", time.Duration(s>>16-limit>>16)*time.Millisecond+MaxLead, "bound", MaxLead)
	}
	return false
}

// firstStamp is the first stamp of wall-clock time t (the counter at 0).
func firstStamp(t time.Time) objid.Stamp {
	return objid.Stamp(max(t.UnixMilli(), 0)) << 16
}

// Running returns the node's running time in milliseconds: the caller
// time stored with each tombstone.
func (c *Clock) Running() int64 {
	return (c.base + time.Since(c.start)).Milliseconds()
}

// Save records the running time so far, atomically; after a crash at most
// one interval of it is lost, which only keeps tombstones longer.
func (c *Clock) Save() error {
	return c.mark.Write(time.Unix(0, int64(c.base+time.Since(c.start))))
}

// Clamped is the number of observed stamps held back to MaxLead so far.
func (c *Clock) Clamped() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clamped
}
