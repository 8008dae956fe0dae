package refstore

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stratum-store/stratum/api/refdata"
)

const (
	oidA = "1111111111111111111111111111111111111111"
	oidB = "2222222222222222222222222222222222222222"
)

func mustOpen(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func set(repo, name, oid string) refdata.Change {
	return refdata.Change{Repo: repo, Name: name, OID: oid}
}

func TestApplyOrderAndFencing(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	step := func(epoch int64, seq uint64, want error) {
		t.Helper()
		err := s.Apply(7, epoch, seq, []refdata.Change{set("r", "refs/heads/main", fmt.Sprintf("%040d", seq))})
		if !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Fatalf("Apply(epoch %d, seq %d) = %v; want %v", epoch, seq, err, want)
		}
	}
	step(10, 1, nil)
	step(10, 1, nil) // a retry of the same (epoch, seq)
	step(10, 3, refdata.ErrOutOfSync)
	step(10, 2, nil)
	if _, err := s.Begin(7, 20); err != nil {
		t.Fatal(err)
	}
	step(10, 3, refdata.ErrStaleEpoch) // fenced by Begin
	step(20, 3, nil)
	if _, err := s.Begin(7, 15); !errors.Is(err, refdata.ErrStaleEpoch) {
		t.Fatalf("Begin below the floor = %v; want ErrStaleEpoch", err)
	}
	if got, want := s.Version(7), (refdata.Version{Epoch: 20, Seq: 3, Txn: refdata.TxnID([]refdata.Change{set("r", "refs/heads/main", fmt.Sprintf("%040d", 3))})}); got != want {
		t.Fatalf("version %+v; want %+v", got, want)
	}
	if s.Version(8) != (refdata.Version{}) || s.Floor(8) != 0 {
		t.Fatal("an untouched partition must be at version zero")
	}
}

// TestApplyRefusesOtherChangesAtTheSameVersion: an apply at the version a
// replica already holds is a retry only if it carries the same changes. A
// delayed apply of a transaction whose outcome was never reported can reach
// a replica before another transaction that reuses its (epoch, seq); taking
// the second for a retry would leave the replica with other refs at the same
// version, counted in sync (issue 15.6).
func TestApplyRefusesOtherChangesAtTheSameVersion(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	x := []refdata.Change{set("r", "refs/heads/main", oidA)}
	y := []refdata.Change{set("r", "refs/heads/main", oidB)}
	if err := s.Apply(4, 10, 1, x); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(4, 10, 1, x); err != nil {
		t.Fatalf("the same transaction again = %v; want nil (a retry)", err)
	}
	if err := s.Apply(4, 10, 1, y); !errors.Is(err, refdata.ErrOutOfSync) {
		t.Fatalf("other changes at the version held = %v; want ErrOutOfSync", err)
	}
	s.Close()
	s = mustOpen(t, dir) // the identity is on disk, not in memory
	if err := s.Apply(4, 10, 1, y); !errors.Is(err, refdata.ErrOutOfSync) {
		t.Fatalf("after reopen, other changes at the version held = %v; want ErrOutOfSync", err)
	}
	if oid, _, _ := s.Get(4, "r", "refs/heads/main"); oid != oidA {
		t.Fatalf("refs/heads/main = %s; want %s (the first transaction's)", oid, oidA)
	}
}

func TestStateSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(1, 5, 1, []refdata.Change{set("org/a", "refs/heads/main", oidA), set("org/a", "refs/tags/v1", oidB)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Begin(1, 9); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = mustOpen(t, dir)
	if v := s.Version(1); s.Floor(1) != 9 || v.Epoch != 5 || v.Seq != 1 || v.Txn != refdata.TxnID([]refdata.Change{set("org/a", "refs/heads/main", oidA), set("org/a", "refs/tags/v1", oidB)}) {
		t.Fatalf("after reopen floor %d version %+v; want 9 and {5 1}", s.Floor(1), s.Version(1))
	}
	oid, ok, err := s.Get(1, "org/a", "refs/tags/v1")
	if err != nil || !ok || oid != oidB {
		t.Fatalf("Get = %q %v %v; want %s", oid, ok, err, oidB)
	}
}

func TestDeleteAndList(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	var changes []refdata.Change
	for i := 0; i < 5; i++ {
		changes = append(changes, set("repo", fmt.Sprintf("refs/heads/b%d", i), oidA))
	}
	changes = append(changes, set("repo", "refs/tags/t", oidB), set("repo2", "refs/heads/b0", oidB))
	if err := s.Apply(3, 1, 1, changes); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(3, 1, 2, []refdata.Change{set("repo", "refs/heads/b1", refdata.ZeroOID)}); err != nil {
		t.Fatal(err)
	}
	page, next, err := s.List(3, "repo", "refs/heads/", "", 2)
	if err != nil || len(page) != 2 || page[0].Name != "refs/heads/b0" || page[1].Name != "refs/heads/b2" || next != "refs/heads/b2" {
		t.Fatalf("first page %+v next %q err %v; want b0,b2 next b2", page, next, err)
	}
	page, next, err = s.List(3, "repo", "refs/heads/", next, 10)
	if err != nil || len(page) != 2 || page[0].Name != "refs/heads/b3" || next != "" {
		t.Fatalf("second page %+v next %q err %v; want b3,b4 and no next", page, next, err)
	}
	all, _, _ := s.List(3, "repo", "", "", 100)
	if len(all) != 5 { // b0 b2 b3 b4 and the tag; repo2 is another repository
		t.Fatalf("listing repo gave %d refs; want 5: %+v", len(all), all)
	}
}

func TestInstallReplacesState(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	if err := s.Apply(2, 4, 1, []refdata.Change{set("r", "refs/heads/old", oidA)}); err != nil {
		t.Fatal(err)
	}
	snap := refdata.Snapshot{Partition: 2, Version: refdata.Version{Epoch: 6, Seq: 9}, Refs: []refdata.Change{set("r", "refs/heads/new", oidB)}}
	if err := s.Install(2, 3, snap); !errors.Is(err, refdata.ErrStaleEpoch) {
		t.Fatalf("Install below the floor = %v; want ErrStaleEpoch", err)
	}
	if err := s.Install(2, 8, snap); err != nil {
		t.Fatal(err)
	}
	got, err := s.Snapshot(2)
	if err != nil || len(got.Refs) != 1 || got.Refs[0].Name != "refs/heads/new" || got.Version != snap.Version || s.Floor(2) != 8 {
		t.Fatalf("after install snapshot %+v floor %d err %v; want only refs/heads/new at {6 9}, floor 8", got, s.Floor(2), err)
	}
	if err := s.Apply(2, 8, 10, []refdata.Change{set("r", "refs/heads/next", oidA)}); err != nil {
		t.Fatalf("the next seq after an install must apply: %v", err)
	}
}
