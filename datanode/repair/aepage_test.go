package repair

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"testing"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/clusterview"
	"github.com/stratum-store/stratum/datanode/store"
	"github.com/stratum-store/stratum/ring"
)

// localList pages: each page holds at most limit entries, in OID order,
// and the pages together are exactly the unpaged list of the buckets asked
// (copies and tombstones, those shared with the peer only).
func TestAEListPagesCoverTheBucketsOnce(t *testing.T) {
	s, err := store.Open(store.DefaultConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	for i := range 600 {
		data := fmt.Appendf(nil, "page object %d", i)
		oid, _ := api.Digest(api.SHA1, data)
		if _, err := s.PutStamped(ctx, oid, data, api.Stamp(i+1)); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if _, err := s.Delete(ctx, oid, api.Stamp(i+1000), 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	r, err := ring.New(1, []ring.Node{{ID: "a", Addr: "a:1"}, {ID: "b", Addr: "b:1"}, {ID: "c", Addr: "c:1"}}, ring.Config{Replicas: 2, VNodes: 64})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := clusterview.Build(r, nil)
	n := &Server{cfg: Config{ID: "a"}, store: s}
	f := func(buckets []int, limit int) {
		t.Helper()
		all, more, err := n.localList(ctx, v, "b", buckets, "", 1<<20)
		if err != nil || more {
			t.Fatalf("unpaged list: more %v, %v", more, err)
		}
		var paged []api.AEEntry
		pages := 0
		for after, more := "", true; more; pages++ {
			var page []api.AEEntry
			page, more, err = n.localList(ctx, v, "b", buckets, after, limit)
			if err != nil || len(page) > limit || (more && len(page) == 0) {
				t.Fatalf("page after %q: %d entries (limit %d), more %v, %v", after, len(page), limit, more, err)
			}
			if len(page) > 0 {
				after = page[len(page)-1].OID
			}
			paged = append(paged, page...)
		}
		if !slices.Equal(paged, all) || !slices.IsSortedFunc(all, func(a, b api.AEEntry) int { return cmpOID(a.OID, b.OID) }) {
			t.Fatalf("buckets %v, limit %d: %d pages hold %d entries; want the %d of the unpaged list, in order", buckets, limit, pages, len(paged), len(all))
		}
		for _, e := range all {
			if !slices.Contains(buckets, aeBucket(api.MustParseOID(e.OID))) || !shared(v, api.MustParseOID(e.OID), "a", "b") {
				t.Fatalf("listed %s: not in buckets %v or not shared with b", e.OID, buckets)
			}
		}
		if len(all) < limit {
			t.Fatalf("buckets %v: %d entries; the test needs more than a page (%d)", buckets, len(all), limit)
		}
	}
	every := make([]int, api.AEBuckets)
	for b := range every {
		every[b] = b
	}
	f(every, 7)
	f(every, 64)
	f([]int{255, 3, 17, 3, 128, 0, 64, 200, 31, 90}, 2)
}

// Paging both sides with pageBound finds the same differences as comparing
// the whole lists at once, whatever the page sizes.
func TestPageBoundDiffsLikeWholeLists(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	o := testOIDs(400)
	var mine, theirs []api.AEEntry
	for i, oid := range o {
		e := api.AEEntry{OID: oid.String(), Stamp: api.Stamp(rng.Intn(5) + 1), Deleted: rng.Intn(4) == 0}
		switch rng.Intn(3) {
		case 0:
			mine = append(mine, e)
		case 1:
			theirs = append(theirs, e)
		default:
			mine = append(mine, e)
			if i%2 == 0 {
				e.Stamp, e.Deleted = e.Stamp+1, !e.Deleted
			}
			theirs = append(theirs, e)
		}
	}
	page := func(es []api.AEEntry, after string, limit int) ([]api.AEEntry, bool) {
		i, _ := slices.BinarySearchFunc(es, after, func(e api.AEEntry, a string) int { return cmpOID(e.OID, a) })
		for i < len(es) && es[i].OID == after {
			i++
		}
		rest := es[i:]
		return rest[:min(limit, len(rest))], len(rest) > limit
	}
	want := diffEntries(mine, theirs)
	for _, limits := range [][2]int{{1, 1}, {3, 17}, {50, 2}, {1000, 9}} {
		var got aeDiff
		for after, more := "", true; more; {
			m, mm := page(mine, after, limits[0])
			th, tm := page(theirs, after, limits[1])
			var next string
			m, th, next, more = pageBound(m, mm, th, tm)
			d := diffEntries(m, th)
			got.push, got.pull = append(got.push, d.push...), append(got.pull, d.pull...)
			got.bury, got.buryHere = append(got.bury, d.bury...), append(got.buryHere, d.buryHere...)
			after = next
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("pages of %v: differences\n got %+v\nwant %+v", limits, got, want)
		}
	}
}

func cmpOID(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
