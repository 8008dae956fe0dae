package stampclock

import (
	"testing"
	"time"

	"github.com/stratum-store/stratum/api/objid"
)

// Stamps never go back, whatever the wall clock does, and always pass a
// stamp observed from another node; running time does not follow the wall
// clock either.
func TestStampClock(t *testing.T) {
	wall := time.Unix(1_800_000_000, 0)
	c := New(func() time.Time { return wall }, t.TempDir(), nil)
	a := c.Now()
	if a>>16 != objid.Stamp(wall.UnixMilli()) {
		t.Fatalf("stamp %d: physical part %d; want %d", a, a>>16, wall.UnixMilli())
	}
	wall = wall.Add(-time.Hour) // the clock jumps back
	b := c.Now()
	if b <= a {
		t.Fatalf("after the clock went back: %d, not above %d", b, a)
	}
	near := objid.Stamp(wall.Add(20*time.Minute).UnixMilli()) << 16
	c.Observe(near)
	if got := c.Now(); got <= near {
		t.Fatalf("after observing %d (20 min ahead): %d; want above it", near, got)
	}
	r0 := c.Running()
	wall = wall.Add(1000 * time.Hour) // the clock jumps forward
	if got := c.Running(); got-r0 > 1000 {
		t.Fatalf("running time moved %d ms with the wall clock; want it to ignore the jump", got-r0)
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	d := New(nil, c.mark.Path[:len(c.mark.Path)-len("/runtime")], nil)
	if d.Running() < r0 {
		t.Fatalf("a restart lost running time: %d < %d", d.Running(), r0)
	}
}

// A stamp far ahead of the local clock (a peer's clock a day ahead, or the
// top of the range) moves the clock only to MaxLead ahead: later
// stamps are not inflated by it for good, and the counter never wraps.
func TestStampClockBoundsObservedStamps(t *testing.T) {
	wall := time.Unix(1_800_000_000, 0)
	c := New(func() time.Time { return wall }, t.TempDir(), nil)
	bound := objid.Stamp(wall.Add(MaxLead).UnixMilli()) << 16
	f := func(observed objid.Stamp, wantKept bool) {
		t.Helper()
		before := c.Now()
		if kept := c.Observe(observed); kept != wantKept {
			t.Fatalf("observe(%d): %v; want %v", observed, kept, wantKept)
		}
		got := c.Now()
		if got <= before {
			t.Fatalf("after observe(%d): %d, not above the earlier %d", observed, got, before)
		}
		if got > bound+16 {
			t.Fatalf("after observe(%d): %d; want at most %d (the bound, %s ahead, plus a few ticks)", observed, got, bound, MaxLead)
		}
	}
	f(objid.Stamp(wall.Add(24*time.Hour).UnixMilli())<<16, false)
	f(^objid.Stamp(0), false) // the top of the range: no wrap to 0
	f(^objid.Stamp(0)-1, false)
	if c.Clamped() != 3 {
		t.Fatalf("clamped %d stamps; want 3", c.Clamped())
	}
	wall = wall.Add(2 * MaxLead) // the wall clock passes the bound: stamps follow it again
	if got, want := c.Now(), objid.Stamp(wall.UnixMilli())<<16; got != want {
		t.Fatalf("once the wall clock passed the bound: %d; want %d", got, want)
	}
}
