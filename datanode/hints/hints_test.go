package hints

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api/objid"
)

// MustOpen opens a queue in a fresh directory and checks, at cleanup, that
// the per-peer counts agree with what List finds.
func MustOpen(t *testing.T, dir string, opts Options) *Queue {
	t.Helper()
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "hints")
	}
	q, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, p := range q.Peers() {
			if got, want := len(q.List(p, 1<<30)), q.PendingFor(p); got != want {
				t.Errorf("peer %s: List has %d hints; count says %d", p, got, want)
			}
		}
		q.Close()
	})
	return q
}

func oidN(t *testing.T, i int) objid.OID {
	t.Helper()
	oid, err := objid.Digest(objid.SHA1, []byte(fmt.Sprintf("blob %d", i)))
	if err != nil {
		t.Fatal(err)
	}
	return oid
}

func TestAddIsIdempotentAndListsOldestFirst(t *testing.T) {
	q := MustOpen(t, "", Options{NoSync: true})
	for i := 0; i < 5; i++ {
		if err := q.Add("n3", oidN(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	first := q.List("n3", 1)[0].Created
	q.Add("n3", oidN(t, 0)) // again: no new hint, age kept
	q.Add("n2", oidN(t, 0))
	if got, want := q.Pending(), 6; got != want {
		t.Fatalf("Pending() = %d; want %d", got, want)
	}
	list := q.List("n3", 10)
	var got []objid.OID
	for _, h := range list {
		got = append(got, h.OID)
	}
	want := []objid.OID{oidN(t, 0), oidN(t, 1), oidN(t, 2), oidN(t, 3), oidN(t, 4)}
	if !slices.Equal(got, want) || !list[0].Created.Equal(first) {
		t.Fatalf("List = %v (first created %v); want %v (first created %v)", got, list[0].Created, want, first)
	}
	if got := q.Peers(); !slices.Equal(got, []string{"n2", "n3"}) {
		t.Fatalf("Peers() = %v; want [n2 n3]", got)
	}
	if err := q.Remove("n3", oidN(t, 2)); err != nil {
		t.Fatal(err)
	}
	q.Remove("n3", oidN(t, 2)) // absent: no-op
	if got, want := q.PendingFor("n3"), 4; got != want {
		t.Fatalf("PendingFor(n3) = %d; want %d", got, want)
	}
}

func TestBoundPerPeerDropsAndCounts(t *testing.T) {
	q := MustOpen(t, "", Options{MaxPerPeer: 3, NoSync: true})
	for i := 0; i < 5; i++ {
		q.Add("n3", oidN(t, i))
	}
	q.Add("n2", oidN(t, 9))
	check := func(what string, got, want int64) {
		t.Helper()
		if got != want {
			t.Fatalf("%s = %d; want %d", what, got, want)
		}
	}
	check("PendingFor(n3)", int64(q.PendingFor("n3")), 3)
	check("PendingFor(n2)", int64(q.PendingFor("n2")), 1)
	check("Dropped()", q.Dropped(), 2)
	q.Add("n3", oidN(t, 0)) // already queued: neither added nor dropped
	check("Dropped() after a duplicate", q.Dropped(), 2)
}

func TestExpireDropsOldHints(t *testing.T) {
	q := MustOpen(t, "", Options{MaxAge: time.Hour, NoSync: true})
	for i := 0; i < 3; i++ {
		q.Add("n3", oidN(t, i))
	}
	if got := q.Expire(time.Now()); got != 0 {
		t.Fatalf("Expire(now) = %d; want 0", got)
	}
	q.Add("n2", oidN(t, 7))
	if got := q.Expire(time.Now().Add(2 * time.Hour)); got != 4 {
		t.Fatalf("Expire(now+2h) = %d; want 4", got)
	}
	if q.Pending() != 0 || q.Expired() != 4 || len(q.Peers()) != 0 {
		t.Fatalf("after expiry: pending %d, expired %d, peers %v; want 0, 4, []", q.Pending(), q.Expired(), q.Peers())
	}
}

func TestHintsSurviveReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hints")
	q, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		q.Add("n3", oidN(t, i))
	}
	q.Remove("n3", oidN(t, 1))
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q = MustOpen(t, dir, Options{MaxPerPeer: 3})
	if got, want := q.PendingFor("n3"), 3; got != want {
		t.Fatalf("after reopen PendingFor(n3) = %d; want %d", got, want)
	}
	q.Add("n3", oidN(t, 8)) // the bound counts the hints found on disk
	if q.Dropped() != 1 {
		t.Fatalf("Dropped() = %d after reopen at the bound; want 1", q.Dropped())
	}
	if got := q.List("n3", 10); len(got) != 3 || got[0].OID != oidN(t, 0) || got[1].OID != oidN(t, 2) {
		t.Fatalf("after reopen List = %v; want hints 0, 2, 3", got)
	}
}

func TestOpenRefusesBadOptions(t *testing.T) {
	if _, err := Open(t.TempDir(), Options{MaxPerPeer: -1}); err == nil {
		t.Fatal("Open with MaxPerPeer -1 succeeded; want an error")
	}
}
