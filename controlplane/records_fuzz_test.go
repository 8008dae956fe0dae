package controlplane

import (
	"fmt"
	"log/slog"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/stratum-store/stratum/api"
)

// FuzzRecordDecoders puts one record of any key suffix and any bytes
// between two valid records of each kind nodes write (nodes/, members/,
// joins/, partitions/p/) and of tokens/: decoding the list never panics,
// never loses the valid records, and keeps the odd one only if its value
// names the ID of its key. So a record of any bytes never stops the
// control plane.
func FuzzRecordDecoders(f *testing.F) {
	for _, seed := range []struct{ suffix, value string }{
		{"n2", `{"id":"n2","addr":"a:2","generation":"g"}`},
		{"n9", `{"id":"n2","addr":"a:9","generation":"g"}`},
		{"n9", `{"node":{"id":"n2","addr":"a:9"},"replicas":1,"vnodes":64}`},
		{"00002", `{"id":2,"primary":"n1","replicas":["n1"]}`},
		{"00002", `{"id":3}`},
		{"n3", "{not json"},
		{"n3", "null"},
		{"n3", ""},
		{"", `{"id":""}`},
		{"a/b", `{"id":"a/b"}`},
		{"-1", `{"id":-1}`},
		{"n3", `{"id":"n3","state":"ACTIVE","suspect_events":[1e400]}`},
	} {
		f.Add(seed.suffix, []byte(seed.value))
	}
	c := &Client{logger: slog.New(slog.DiscardHandler), bad: &badRecords{}}
	f.Fuzz(func(t *testing.T, suffix string, value []byte) {
		fuzzKind(t, c, "/s/nodes/", suffix, value, idKey, decodeNode,
			`{"id":"a0","addr":"x"}`, `{"id":"zz9","addr":"y"}`, "a0", "zz9", func(r NodeRecord) string { return r.ID })
		fuzzKind(t, c, "/s/members/", suffix, value, idKey, decodeMember,
			`{"id":"a0","state":"ACTIVE"}`, `{"id":"zz9","state":"DOWN"}`, "a0", "zz9", func(m api.Member) string { return m.ID })
		fuzzKind(t, c, "/s/joins/", suffix, value, idKey, decodeJoin,
			`{"node":{"id":"a0"}}`, `{"node":{"id":"zz9"}}`, "a0", "zz9", func(j joinRequest) string { return j.Node.ID })
		fuzzKind(t, c, "/s/tokens/", suffix, value, idKey, decodeToken,
			`{"id":"a0"}`, `{"id":"zz9"}`, "a0", "zz9", func(t api.Token) string { return t.ID })
		fuzzKind(t, c, "/s/partitions/p/", suffix, value, partitionID, decodePartition,
			`{"id":0}`, `{"id":99999}`, 0, 99999, func(p api.Partition) int { return p.ID })
	})
}

// fuzzKind decodes [good a, the fuzzed record, good z] under prefix.
func fuzzKind[K comparable, V any](t *testing.T, c *Client, prefix, suffix string, value []byte,
	key func(string) (K, bool), decode func(K, *mvccpb.KeyValue) (V, error),
	goodA, goodZ string, a, z K, idOf func(V) K) {
	t.Helper()
	kvs := []*mvccpb.KeyValue{
		{Key: []byte(prefix + fmt.Sprint(a)), Value: []byte(goodA)},
		{Key: []byte(prefix + suffix), Value: value, ModRevision: 7},
		{Key: []byte(prefix + fmt.Sprint(z)), Value: []byte(goodZ)},
	}
	got := decodeAll(c, "fuzz", prefix, kvs, key, decode)
	fk, fkOK := key(suffix)
	for _, want := range []K{a, z} {
		if _, ok := got[want]; !ok && !(fkOK && fk == want) {
			t.Fatalf("%s: the valid record %v was lost next to %q=%q; got %v", prefix, want, suffix, value, got)
		}
	}
	for k, v := range got {
		if idOf(v) != k {
			t.Fatalf("%s: record under %v names %v; a record's identity must be its key", prefix, k, idOf(v))
		}
	}
	// The same record through a watch: no panic, and absent unless valid.
	cur := map[K]V{}
	w := prefixWatch[K, V]{c, prefix, "fuzz", key, decode}
	w.apply(cur, kvs[1], false)
	w.apply(cur, kvs[1], true)
	if len(cur) != 0 {
		t.Fatalf("%s: a deleted record is still there: %v", prefix, cur)
	}
}
