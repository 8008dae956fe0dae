package store

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stratum-store/stratum/api/objid"
)

// TestOpenRecoversCorruptIndex damages leveldb's manifest: Open must
// rebuild the index from its tables, log it, and keep the objects.
func TestOpenRecoversCorruptIndex(t *testing.T) {
	cfg, _ := testConfig(t)
	s := mustOpen(t, cfg)
	objects := map[objid.OID][]byte{}
	for i := range 30 {
		data := textBytes(uint64(i), 3000)
		oid := mustOID(t, objid.SHA1, data)
		if _, err := s.Put(ctx, oid, data); err != nil {
			t.Fatal(err)
		}
		objects[oid] = data
	}
	s.Close()
	manifests, _ := filepath.Glob(filepath.Join(s.paths.dbDir(), "MANIFEST-*"))
	if len(manifests) == 0 {
		t.Fatal("no manifest to damage")
	}
	for _, m := range manifests {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		for i := range b {
			b[i] ^= 0x5a
		}
		if err := os.WriteFile(m, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s2 := mustOpen(t, cfg)
	for oid, data := range objects {
		if got := mustGet(t, s2, oid); !bytes.Equal(got, data) {
			t.Fatalf("%s differs after recovery", oid)
		}
	}
	if got := s2.Stats().Objects; got != int64(len(objects)) {
		t.Fatalf("Stats.Objects = %d after recovery; want %d", got, len(objects))
	}
}
