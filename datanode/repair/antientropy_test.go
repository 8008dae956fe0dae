package repair

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stratum-store/stratum/api"
)

func testOIDs(n int) []api.OID {
	out := make([]api.OID, n)
	for i := range out {
		out[i], _ = api.Digest(api.SHA1, fmt.Appendf(nil, "object %d", i))
	}
	slices.SortFunc(out, func(a, b api.OID) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// diffEntries: exact set differences of copies, and a copy against a
// tombstone resolved by stamp (ties to the tombstone); a tombstone is never
// sent where there is nothing.
func TestDiffEntries(t *testing.T) {
	o := testOIDs(6)
	live := func(i int, st api.Stamp) api.AEEntry { return api.AEEntry{OID: o[i].String(), Stamp: st} }
	dead := func(i int, st api.Stamp) api.AEEntry {
		return api.AEEntry{OID: o[i].String(), Stamp: st, Deleted: true}
	}
	E := func(es ...api.AEEntry) []api.AEEntry { return es }
	f := func(mine, theirs []api.AEEntry, want aeDiff) {
		t.Helper()
		got := diffEntries(mine, theirs)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("diffEntries(%v, %v)\n got %+v\nwant %+v", mine, theirs, got, want)
		}
	}
	f(nil, nil, aeDiff{})
	f(E(live(0, 1), live(2, 1)), E(live(1, 1), live(2, 5)), aeDiff{push: E(live(0, 1)), pull: E(live(1, 1))})
	f(E(dead(0, 5)), E(live(0, 5)), aeDiff{bury: E(dead(0, 5))})     // a tie goes to the tombstone
	f(E(dead(0, 5)), E(live(0, 6)), aeDiff{pull: E(live(0, 6))})     // a later write wins
	f(E(live(0, 5)), E(dead(0, 9)), aeDiff{buryHere: E(dead(0, 9))}) // a later delete wins
	f(E(live(0, 0)), E(dead(0, 1)), aeDiff{buryHere: E(dead(0, 1))}) // a copy of unknown age loses
	f(E(live(0, 7)), E(dead(0, 3)), aeDiff{push: E(live(0, 7))})     // a re-put beats an old tombstone
	f(E(dead(0, 5), dead(1, 1)), E(dead(0, 2)), aeDiff{})            // tombstones never go where nothing is
	f(E(dead(3, 5)), nil, aeDiff{})
}

// The digests depend on the set of OIDs only, and any difference shows.
func TestAEDigestsAreOrderFreeAndExact(t *testing.T) {
	o := testOIDs(200)
	digest := func(oids []api.OID) *aeDigests {
		d := &aeDigests{}
		for _, oid := range oids {
			d.add(oid)
		}
		return d
	}
	rev := slices.Clone(o)
	slices.Reverse(rev)
	if got := digest(o).differ(digest(rev).reply(1)); len(got) != 0 {
		t.Fatalf("same set in another order differs in buckets %v; want none", got)
	}
	extra, _ := api.Digest(api.SHA1, []byte("not among them"))
	swapped := append(slices.Clone(o[:199]), extra)
	got := digest(o).differ(digest(swapped).reply(1))
	want := []int{aeBucket(o[199]), aeBucket(swapped[199])}
	slices.Sort(want)
	want = slices.Compact(want)
	if !slices.Equal(got, want) {
		t.Fatalf("one OID swapped: buckets %v differ; want %v", got, want)
	}
}
