package repair

import (
	"fmt"
	"testing"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/clusterview"
	"github.com/stratum-store/stratum/ring"
)

// TestAntiEntropyCopiesOnlyToWriteOwners: a draining node is never sent a
// copy (nor pulls one) by anti-entropy, or its drain would never finish;
// the owners under the write ring are.
func TestAntiEntropyCopiesOnlyToWriteOwners(t *testing.T) {
	nodes := []ring.Node{{ID: "a", Addr: "a:1"}, {ID: "b", Addr: "b:1"}, {ID: "c", Addr: "c:1"}, {ID: "d", Addr: "d:1"}}
	r, err := ring.New(9, nodes, ring.Config{Replicas: 3, VNodes: 64})
	if err != nil {
		t.Fatal(err)
	}
	v, err := clusterview.Build(r, map[string]api.Member{"c": {ID: "c", State: api.StateDraining}})
	if err != nil {
		t.Fatal(err)
	}
	var entries []api.AEEntry
	onC := 0
	for i := 0; i < 200; i++ {
		oid := api.MustParseOID(fmt.Sprintf("%064x", i*7919+1))
		entries = append(entries, api.AEEntry{OID: oid.String()})
		if r.Owns("c", []byte(oid.String())) {
			onC++
		}
	}
	if onC == 0 {
		t.Fatal("no entry placed on c by the ring: the test proves nothing")
	}
	if got := forWriteOwner(v, entries, "c"); len(got) != 0 {
		t.Fatalf("forWriteOwner(draining c) kept %d of %d entries the ring places on c; want 0", len(got), onC)
	}
	for _, id := range []string{"a", "b", "d"} {
		got := forWriteOwner(v, entries, id)
		want := 0
		for _, e := range entries {
			if v.Write.Owns(id, []byte(e.OID)) {
				want++
			}
		}
		if len(got) != want || want == 0 {
			t.Fatalf("forWriteOwner(%s) kept %d; want the %d entries the write ring places there", id, len(got), want)
		}
		for _, e := range got {
			if !v.Write.Owns(id, []byte(e.OID)) {
				t.Fatalf("forWriteOwner(%s) kept %s, which the write ring places elsewhere", id, e.OID)
			}
		}
	}
}
