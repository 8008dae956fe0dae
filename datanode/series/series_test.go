package series

import (
	"math"
	"testing"
	"time"
)

func TestSampleRingKeepsTheLastSamplesOldestFirst(t *testing.T) {
	r := NewRing(4)
	t0 := time.Unix(0, 0)
	for i := range 10 {
		r.Add(Sample{At: t0.Add(time.Duration(i) * time.Second)})
	}
	got := r.List()
	if len(got) != 4 {
		t.Fatalf("ring of 4 after 10 adds holds %d samples; want 4", len(got))
	}
	for i, s := range got {
		if want := t0.Add(time.Duration(6+i) * time.Second); !s.At.Equal(want) {
			t.Fatalf("sample %d at %v; want %v", i, s.At, want)
		}
	}
}

func TestP99OfTheIntervalBetweenTwoHistograms(t *testing.T) {
	inf := math.Inf(1)
	f := func(prev, cur map[float64]float64, want float64) {
		t.Helper()
		if got := P99(prev, cur); got != want {
			t.Fatalf("P99(%v, %v) = %v; want %v", prev, cur, got, want)
		}
	}
	f(map[float64]float64{}, map[float64]float64{}, 0)
	f(map[float64]float64{0.1: 5, 1: 5, inf: 5}, map[float64]float64{0.1: 5, 1: 5, inf: 5}, 0)             // nothing new
	f(map[float64]float64{}, map[float64]float64{0.1: 100, 1: 100, inf: 100}, 0.1)                         // all fast
	f(map[float64]float64{0.1: 100, 1: 100, inf: 100}, map[float64]float64{0.1: 100, 1: 200, inf: 200}, 1) // the new ones slow
	f(map[float64]float64{}, map[float64]float64{0.1: 50, 1: 90, inf: 100}, 1)                             // beyond the last bound
}

func TestSamplerRatesArePerSecondBetweenTotals(t *testing.T) {
	s := NewSampler()
	t0 := time.Unix(100, 0)
	s.Take(Totals{At: t0, Put: 10, Get: 4}, nil, 0, 0)
	s.Take(Totals{At: t0.Add(5 * time.Second), Put: 60, Get: 4, Errors: 5}, map[string]int64{"n1": 7}, 0, 0)
	got := s.Ring().List()
	if len(got) != 1 || got[0].PutRate != 10 || got[0].GetRate != 0 || got[0].Errors != 1 || got[0].Bytes["n1"] != 7 {
		t.Fatalf("samples %+v; want one with 10 PUT/s, 0 GET/s, 1 error/s, n1 7 bytes", got)
	}
}
