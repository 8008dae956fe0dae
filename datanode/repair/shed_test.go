package repair

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/store"
)

// An owner's answer to a shed push: acknowledged is a verified copy,
// superseded is a newer tombstone (the newest one wins), anything else is
// unknown.
func TestShedVerdict(t *testing.T) {
	var vd shedVerdict
	for _, a := range []struct {
		code  string
		stamp api.Stamp
	}{{"", 0}, {"superseded", 7}, {"unavailable", 0}, {"superseded", 5}, {"", 0}} {
		vd.answer(a.code, a.stamp)
	}
	if want := (shedVerdict{confirmed: 2, tomb: 7}); vd != want {
		t.Fatalf("verdict %+v; want %+v", vd, want)
	}
}

// rangePages hands over every selected copy once, in OID order, at most
// rangePage at a time, and stops when fn says so.
func TestRangePagesWalkTheCopiesOnce(t *testing.T) {
	s, err := store.Open(store.DefaultConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	var want []string
	for i := range 1000 {
		data := fmt.Appendf(nil, "walked object %d", i)
		oid, _ := api.Digest(api.SHA1, data)
		if _, err := s.Put(ctx, oid, data); err != nil {
			t.Fatal(err)
		}
		if oid.String()[1]%3 == 0 {
			want = append(want, oid.String())
		}
	}
	slices.Sort(want)
	n := &Server{store: s}
	keep := func(oid api.OID) bool { return oid.String()[1]%3 == 0 }
	var got []string
	pages := 0
	err = n.rangePages(ctx, keep, func(page []api.OID) bool {
		if len(page) == 0 || len(page) > rangePage {
			t.Fatalf("a page of %d; want 1 to %d", len(page), rangePage)
		}
		pages++
		for _, oid := range page {
			got = append(got, oid.String())
		}
		return true
	})
	if err != nil || !slices.Equal(got, want) || pages < 2 {
		t.Fatalf("%d pages, %d OIDs (%v); want all %d selected, in order, over several pages", pages, len(got), err, len(want))
	}
	pages = 0
	n.rangePages(ctx, keep, func([]api.OID) bool { pages++; return false })
	if pages != 1 {
		t.Fatalf("fn said stop, yet got %d pages; want 1", pages)
	}
}
