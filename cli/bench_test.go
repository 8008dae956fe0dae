package cli

import (
	"bytes"
	"testing"
	"time"
)

func TestPct(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 1000; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	f := func(q, want float64) {
		t.Helper()
		if got := pct(d, q); got != want {
			t.Fatalf("pct(1..1000 ms, %v) = %v; want %v", q, got, want)
		}
	}
	f(0.5, 500)
	f(0.9, 900)
	f(0.99, 990)
	f(0.999, 999)
	f(1, 1000)
	if pct(nil, 0.5) != 0 {
		t.Fatal("pct of nothing is not 0")
	}
}

func TestBenchObjectsAreUniqueAndSized(t *testing.T) {
	cfg := benchConfig{Size: 4096, Seed: 7}
	a, b := benchObject(cfg, 1), benchObject(cfg, 2)
	if len(a) != 4096 || bytes.Equal(a, b) || !bytes.Equal(a, benchObject(cfg, 1)) {
		t.Fatalf("objects: len %d, distinct %t, deterministic %t", len(a), !bytes.Equal(a, b), bytes.Equal(a, benchObject(cfg, 1)))
	}
	mix := benchConfig{GitMix: true, Seed: 7}
	small, total := 0, 0
	for i := 0; i < 2000; i++ {
		n := len(benchObject(mix, i))
		if n < 8 || n > 512<<10 {
			t.Fatalf("git-mix object %d has %d bytes; want 8..512 KiB", i, n)
		}
		if n <= 4<<10 {
			small++
		}
		total++
	}
	if small*100/total < 55 || small*100/total > 75 {
		t.Fatalf("git-mix: %d%% of objects <= 4 KiB; want about 65%%", small*100/total)
	}
}
