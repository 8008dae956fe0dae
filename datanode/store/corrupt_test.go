package store

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stratum-store/stratum/api/objid"
)

// assertCorrupt checks that Get refuses the copy, serves none of it, and
// logs the damage.
func assertCorrupt(t *testing.T, s *Store, oid objid.OID, logged interface{ Load() int64 }, what string) {
	t.Helper()
	before := logged.Load()
	obj, err := s.Get(ctx, oid)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("%s: Get = %v; want ErrCorrupt", what, err)
	}
	if obj.Data != nil || obj.Body != nil {
		t.Fatalf("%s: Get served a corrupt copy", what)
	}
	if errors.Is(err, objid.ErrDigestMismatch) {
		t.Fatalf("%s: %v must not read as the caller's digest mismatch", what, err)
	}
	if logged.Load() == before {
		t.Fatalf("%s: corruption was not logged", what)
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestGetDetectsCorruptFile(t *testing.T) {
	cfg, logged := testConfig(t)
	s := mustOpen(t, cfg)
	size := int(cfg.LargeThreshold) + 10<<10
	for _, data := range [][]byte{randomBytes(8, size), textBytes(8, size)} {
		oid := mustOID(t, objid.SHA1, data)
		if _, err := s.Put(ctx, oid, data); err != nil {
			t.Fatal(err)
		}
		path := s.paths.objectPath(oid)
		fi, _ := os.Stat(path)
		flipByte(t, path, fi.Size()/2)
		assertCorrupt(t, s, oid, logged, "flipped byte")
		flipByte(t, path, fi.Size()/2)
		if got := mustGet(t, s, oid); !bytes.Equal(got, data) {
			t.Fatal("restored file does not read back")
		}
		if err := os.Truncate(path, fi.Size()-1); err != nil {
			t.Fatal(err)
		}
		assertCorrupt(t, s, oid, logged, "truncated file")
		os.Remove(path)
		assertCorrupt(t, s, oid, logged, "missing file")
		if got, err := s.Stat(ctx, oid); err != nil || got != int64(size) {
			t.Fatalf("Stat of a corrupt object = %d, %v; want %d, nil (Stat does not verify)", got, err, size)
		}
	}
}

func TestGetDetectsCorruptIndexValue(t *testing.T) {
	for _, zstdValues := range []bool{false, true} {
		testGetDetectsCorruptIndexValue(t, zstdValues)
	}
}

func testGetDetectsCorruptIndexValue(t *testing.T, zstdValues bool) {
	cfg, logged := testConfig(t)
	cfg.NoValueLog = true // the values themselves in the index (TestValueLogDamage covers the log)
	cfg.ZstdValues = zstdValues
	s := mustOpen(t, cfg)
	good := textBytes(9, 4<<10)
	oid := mustOID(t, objid.SHA256, good)
	if _, err := s.Put(ctx, oid, good); err != nil {
		t.Fatal(err)
	}
	want := codecS2
	if zstdValues {
		want = codecZstd
	}
	zstdValue, err := s.rawValue(oid)
	if err != nil || zstdValue[0] != want {
		t.Fatalf("stored value: codec %v, %v; want %d", zstdValue[:1], err, want)
	}
	flipped := append([]byte{codecRaw}, good...)
	flipped[100] ^= 1
	badZstd := bytes.Clone(zstdValue)
	badZstd[len(badZstd)/2] ^= 0xff
	cases := []struct {
		what  string
		value []byte
	}{
		{"raw payload with a flipped bit", flipped},
		{"raw payload one byte short", append([]byte{codecRaw}, good[1:]...)},
		{"compressed payload damaged", badZstd},
		{"compressed payload truncated", zstdValue[:len(zstdValue)-3]},
		{"unknown codec", append([]byte{0x7f}, good...)},
		{"file codec with a bad size", []byte{codecFileRaw, 0xff}},
		{"file codec with no file", fileEntry(codecFileRaw, 10)},
		{"empty value", []byte{}},
	}
	for _, c := range cases {
		if err := s.setRawValue(oid, c.value); err != nil {
			t.Fatal(err)
		}
		assertCorrupt(t, s, oid, logged, c.what)
	}
	if err := s.setRawValue(oid, zstdValue); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, oid); !bytes.Equal(got, good) {
		t.Fatal("restored value does not read back")
	}
}

// TestBodyDetectsChangeAfterVerification damages a file between Get's
// verification pass and the read of its Body: the read must fail.
func TestBodyDetectsChangeAfterVerification(t *testing.T) {
	cfg, logged := testConfig(t)
	s := mustOpen(t, cfg)
	data := randomBytes(10, int(cfg.LargeThreshold)+1)
	oid := mustOID(t, objid.SHA1, data)
	if _, err := s.Put(ctx, oid, data); err != nil {
		t.Fatal(err)
	}
	obj, err := s.Get(ctx, oid)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Body.Close()
	flipByte(t, s.paths.objectPath(oid), 12345)
	if _, err := io.Copy(io.Discard, obj.Body); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("reading a body changed after verification: %v; want ErrCorrupt", err)
	}
	if logged.Load() == 0 {
		t.Fatal("corruption was not logged")
	}
}

// A put of an object whose indexed copy is damaged replaces the copy rather
// than acknowledging it as already present: small, large and batched.
func TestPutReplacesADamagedCopy(t *testing.T) {
	cfg, _ := testConfig(t)
	s := mustOpen(t, cfg)
	small := textBytes(11, 4<<10)
	soid := mustOID(t, objid.SHA256, small)
	large := randomBytes(12, int(cfg.LargeThreshold)+10)
	loid := mustOID(t, objid.SHA256, large)
	batched := textBytes(13, 2<<10)
	boid := mustOID(t, objid.SHA256, batched)
	for _, p := range []struct {
		oid  objid.OID
		data []byte
	}{{soid, small}, {loid, large}, {boid, batched}} {
		if _, err := s.Put(ctx, p.oid, p.data); err != nil {
			t.Fatal(err)
		}
	}
	objects := s.Stats().Objects
	s.setRawValue(soid, append([]byte{codecRaw}, small[1:]...)) // damage the small copy
	os.Remove(s.paths.objectPath(loid))                         // lose the large file
	s.setRawValue(boid, []byte{0x7f})                           // and the batched one
	if created, err := s.Put(ctx, soid, small); err != nil || !created {
		t.Fatalf("re-put over a damaged small copy: created %t, %v; want a new copy", created, err)
	}
	if created, err := s.PutReader(ctx, loid, bytes.NewReader(large), int64(len(large))); err != nil || !created {
		t.Fatalf("re-put over a lost large file: created %t, %v; want a new copy", created, err)
	}
	res, err := s.PutBatch(ctx, []BatchItem{{OID: boid, Data: batched}})
	if err != nil || res[0].Err != nil || !res[0].Created {
		t.Fatalf("batch re-put over a damaged copy: %+v %v; want a new copy", res, err)
	}
	for _, p := range [][]byte{small, large, batched} {
		if got := mustGet(t, s, mustOID(t, objid.SHA256, p)); !bytes.Equal(got, p) {
			t.Fatal("replaced copy does not read back")
		}
	}
	if s.Stats().Objects != objects {
		t.Fatalf("objects after replacing copies: %d; want still %d", s.Stats().Objects, objects)
	}
	// An intact copy is still just acknowledged.
	if created, err := s.Put(ctx, soid, small); err != nil || created {
		t.Fatalf("re-put over an intact copy: created %t, %v; want already present", created, err)
	}
}

func TestQuarantine(t *testing.T) {
	cfg, _ := testConfig(t)
	s := mustOpen(t, cfg)
	large := randomBytes(21, int(cfg.LargeThreshold)+5)
	oid := mustOID(t, objid.SHA256, large)
	if _, err := s.Put(ctx, oid, large); err != nil {
		t.Fatal(err)
	}
	if err := s.Quarantine(ctx, oid); err == nil {
		t.Fatal("quarantined an intact copy")
	}
	flipByte(t, s.paths.objectPath(oid), 100)
	if err := s.Quarantine(ctx, oid); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, oid); !errors.Is(err, ErrNotFound) || s.Stats().Objects != 0 {
		t.Fatalf("after quarantine: Stat %v, objects %d; want not found, 0", err, s.Stats().Objects)
	}
	if files, _ := os.ReadDir(filepath.Join(cfg.Dir, "quarantine")); len(files) != 1 {
		t.Fatalf("quarantine holds %d files; want the damaged one", len(files))
	}
	if created, err := s.Put(ctx, oid, large); err != nil || !created {
		t.Fatalf("put after quarantine: %t %v", created, err)
	}
}
