package cli

import "testing"

func TestBar(t *testing.T) {
	f := func(done, total int64, want string) {
		t.Helper()
		if got := bar(done, total, 10); got != want {
			t.Fatalf("bar(%d, %d) = %q; want %q", done, total, got, want)
		}
	}
	f(0, 0, "[##########] 100%")
	f(0, 10, "[..........]   0%")
	f(5, 10, "[#####.....]  50%")
	f(10, 10, "[##########] 100%")
	f(12, 10, "[##########] 100%")
}
