package datanode

import (
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
)

// Stamps never go back, whatever the wall clock does, and always pass a
// stamp observed from another node; running time does not follow the wall
// clock either.
func TestStampClock(t *testing.T) {
	wall := time.Unix(1_800_000_000, 0)
	c := newStampClock(func() time.Time { return wall }, t.TempDir())
	a := c.now()
	if a>>16 != api.Stamp(wall.UnixMilli()) {
		t.Fatalf("stamp %d: physical part %d; want %d", a, a>>16, wall.UnixMilli())
	}
	wall = wall.Add(-time.Hour) // the clock jumps back
	b := c.now()
	if b <= a {
		t.Fatalf("after the clock went back: %d, not above %d", b, a)
	}
	far := api.Stamp(wall.Add(24*time.Hour).UnixMilli()) << 16
	c.observe(far)
	if got := c.now(); got <= far {
		t.Fatalf("after observing %d: %d; want above it", far, got)
	}
	r0 := c.running()
	wall = wall.Add(1000 * time.Hour) // the clock jumps forward
	if got := c.running(); got-r0 > 1000 {
		t.Fatalf("running time moved %d ms with the wall clock; want it to ignore the jump", got-r0)
	}
	if err := c.save(); err != nil {
		t.Fatal(err)
	}
	d := newStampClock(nil, c.mark.Path[:len(c.mark.Path)-len("/runtime")])
	if d.running() < r0 {
		t.Fatalf("a restart lost running time: %d < %d", d.running(), r0)
	}
}
