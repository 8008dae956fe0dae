package receivepack

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/object"
)

// FuzzServe feeds arbitrary requests to Serve over a Memory holding one
// ref. Whatever the input: no panic, and all or nothing: if any command is
// refused no ref changes, and if all are ok every ref is its new value.
func FuzzServe(f *testing.F) {
	blob, tree, commit := smallHistory(f)
	c := id(f, commit)
	good := rawPack(f, blob, tree, commit)
	f.Add(request0(create(c, "report-status"), good))
	f.Add(request0(create(c, "report-status side-band-64k push-options"), "0000", good))
	f.Add(request0(c+" "+api.ZeroOID+" refs/heads/main\x00report-status atomic", nil))
	f.Add(request0(create(c, "report-status"), api.ZeroOID+" "+c+" refs/heads/a..b", good))
	f.Add(good[:len(good)/2])
	f.Add([]byte("0000"))
	limits := Limits{MaxPackBytes: 1 << 20, MaxObjects: 1000, MaxObjectSize: 1 << 20, TempDir: f.TempDir()}
	f.Fuzz(func(t *testing.T, data []byte) {
		mem := backend.NewMemory()
		ctx := context.Background()
		for _, o := range []obj{blob, tree, commit} {
			mem.Put(ctx, []backend.Object{{OID: api.MustParseOID(id(t, o)), Data: object.Canonical(o.t, o.body)}})
		}
		if err := mem.Update(ctx, testRepo, []backend.Update{{Name: "refs/heads/main", Old: api.ZeroOID, New: c}}); err != nil {
			t.Fatal(err)
		}
		before, _ := mem.Refs(ctx, testRepo)
		res, _ := Serve(ctx, bytes.NewReader(data), io.Discard, mem, testRepo, limits)
		after, _ := mem.Refs(ctx, testRepo)
		refs := map[string]string{}
		for _, r := range after {
			refs[r.Name] = r.OID
		}
		allOK := true
		for _, cmd := range res.Commands {
			allOK = allOK && cmd.Status == statusOK
		}
		for _, cmd := range res.Commands {
			got, ok := refs[cmd.Name]
			if allOK && (api.IsZeroOID(cmd.New) == ok || ok && got != cmd.New) {
				t.Fatalf("all ok, but %s is %q (exists %v); want %s", cmd.Name, got, ok, cmd.New)
			}
		}
		if !allOK && !equalRefs(before, after) {
			t.Fatalf("a refused push changed refs: %v -> %v (%+v)", before, after, res.Commands)
		}
	})
}

func equalRefs(a, b []backend.Ref) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
