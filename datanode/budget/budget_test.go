package budget

import (
	"errors"
	"testing"
)

var errFull = errors.New("full")

func TestReserveRefusesPastTheMaximumAndReleaseGivesBack(t *testing.T) {
	b := New(100, errFull)
	f := func(n int64, wantErr bool, wantUsed int64) {
		t.Helper()
		err := b.Reserve(n)
		if (err != nil) != wantErr || (err != nil && !errors.Is(err, errFull)) {
			t.Fatalf("Reserve(%d) = %v; want error %t wrapping %v", n, err, wantErr, errFull)
		}
		if got := b.Used(); got != wantUsed {
			t.Fatalf("after Reserve(%d): used %d; want %d", n, got, wantUsed)
		}
	}
	f(60, false, 60)
	f(41, true, 60) // would pass 100: refused, nothing kept
	f(40, false, 100)
	f(0, false, 100) // nothing to take
	b.Release(100)
	f(100, false, 100)
}

func TestReserveBodyTakesOnlyWhatIsHeldInMemory(t *testing.T) {
	f := func(size, inMemory, wantHeld int64) {
		t.Helper()
		b := New(1000, errFull)
		held, err := b.ReserveBody(size, inMemory)
		if err != nil || held != wantHeld || b.Used() != wantHeld {
			t.Fatalf("ReserveBody(%d, %d) = %d, %v, used %d; want %d, nil, used %d", size, inMemory, held, err, b.Used(), wantHeld, wantHeld)
		}
		b.Release(held)
		if b.Used() != 0 {
			t.Fatalf("after Release(%d): used %d; want 0", held, b.Used())
		}
	}
	f(10, 100, 10)   // small: in memory
	f(200, 100, 0)   // large: spooled to a file
	f(-1, 100, 0)    // unknown length: streamed
	f(100, 100, 100) // at the threshold: in memory
}
