package store

import (
	"context"
	"fmt"
	"testing"

	"github.com/stratum-store/stratum/api/objid"
)

func TestRangeVisitsEveryObject(t *testing.T) {
	s, err := Open(DefaultConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := map[string]int64{}
	for i := 0; i < 20; i++ {
		data := []byte(fmt.Sprintf("object %d", i))
		oid, _ := objid.Digest(objid.SHA256, data)
		if _, err := s.Put(context.Background(), oid, data); err != nil {
			t.Fatal(err)
		}
		want[oid.String()] = int64(len(data))
	}
	got := map[string]int64{}
	if err := s.Range(context.Background(), func(oid objid.OID, size int64) bool {
		got[oid.String()] = size
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Range saw %v; want %v", got, want)
	}
	n := 0
	s.Range(context.Background(), func(objid.OID, int64) bool { n++; return n < 5 })
	if n != 5 {
		t.Fatalf("Range after fn returned false: %d calls; want 5", n)
	}
}
