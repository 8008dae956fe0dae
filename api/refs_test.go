package api

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
)

// TestPruneStoresLeavesThePublishedRecord: a record built as a shallow copy
// of a published one shares its Stores map; pruning it must not edit the
// published record, which others read without a lock (issue 15.7).
func TestPruneStoresLeavesThePublishedRecord(t *testing.T) {
	published := Partition{ID: 3, Primary: "n1", InSync: []string{"n1", "n2", "n3"},
		Stores: map[string]string{"n1": "s1", "n2": "s2", "n3": "s3"}}
	want := maps.Clone(published.Stores)
	next := published
	next.InSync = []string{"n1", "n3"}
	next.PruneStores()
	if !maps.Equal(published.Stores, want) {
		t.Fatalf("published Stores after pruning a copy = %v; want %v", published.Stores, want)
	}
	if got := map[string]string{"n1": "s1", "n3": "s3"}; !maps.Equal(next.Stores, got) {
		t.Fatalf("pruned Stores = %v; want %v", next.Stores, got)
	}
}

// TestRefTxnIDTellsChangesApart: the identity differs whenever a field
// differs, including when bytes move between fields.
func TestRefTxnIDTellsChangesApart(t *testing.T) {
	base := []RefChange{{Repo: "a/b", Name: "refs/heads/main", OID: "11"}}
	f := func(other []RefChange, same bool) {
		t.Helper()
		if got := RefTxnID(base) == RefTxnID(other); got != same {
			t.Fatalf("RefTxnID(%v) == RefTxnID(%v): %v; want %v", base, other, got, same)
		}
	}
	f([]RefChange{{Repo: "a/b", Name: "refs/heads/main", OID: "11"}}, true)
	f([]RefChange{{Repo: "a/b", Name: "refs/heads/main", OID: "12"}}, false)
	f([]RefChange{{Repo: "a/", Name: "brefs/heads/main", OID: "11"}}, false)
	f(append(base, RefChange{Repo: "a/b", Name: "refs/heads/x", OID: ""}), false)
	f(nil, false)
}

// WithoutID builds a new list (the published one is untouched) and an
// empty one encodes as [], never null.
func TestWithoutIDLeavesTheListAndNeverReturnsNil(t *testing.T) {
	f := func(list []string, id, want string) {
		t.Helper()
		before := strings.Join(list, ",")
		got, _ := json.Marshal(WithoutID(list, id))
		if string(got) != want || strings.Join(list, ",") != before {
			t.Fatalf("WithoutID(%q, %q) = %s, list now %v; want %s, list unchanged", before, id, got, list, want)
		}
	}
	f([]string{"n1", "n2", "n3"}, "n2", `["n1","n3"]`)
	f([]string{"n1", "n2"}, "n4", `["n1","n2"]`)
	f([]string{"n1"}, "n1", `[]`)
	f(nil, "n1", `[]`)
}
