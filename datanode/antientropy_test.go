package datanode

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stratum-store/stratum/api"
)

func testOIDs(n int) []api.OID {
	out := make([]api.OID, n)
	for i := range out {
		out[i], _ = api.Digest(api.SHA1, fmt.Appendf(nil, "object %d", i))
	}
	slices.SortFunc(out, compareOID)
	return out
}

func TestSetDiff(t *testing.T) {
	o := testOIDs(6)
	f := func(a, b, wantA, wantB []api.OID) {
		t.Helper()
		gotA, gotB := setDiff(a, b)
		if !slices.Equal(gotA, wantA) || !slices.Equal(gotB, wantB) {
			t.Fatalf("setDiff(%v, %v) = %v, %v; want %v, %v", a, b, gotA, gotB, wantA, wantB)
		}
	}
	f(nil, nil, nil, nil)
	f(o, nil, o, nil)
	f(nil, o, nil, o)
	f(o, o, nil, nil)
	f(o[:4], o[2:], o[:2], o[4:])
	f([]api.OID{o[0], o[2], o[4]}, []api.OID{o[1], o[2], o[5]}, []api.OID{o[0], o[4]}, []api.OID{o[1], o[5]})
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
