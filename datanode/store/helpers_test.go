package store

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/syndtr/goleveldb/leveldb"

	"github.com/stratum-store/stratum/api/objid"
)

// testLog sends the store's log to t.Log and counts error records, so a
// test can check that corruption was reported.
type testLog struct {
	slog.Handler
	errors *atomic.Int64
}

func (h testLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.errors.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h testLog) WithAttrs(as []slog.Attr) slog.Handler {
	return testLog{h.Handler.WithAttrs(as), h.errors}
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// testConfig is DefaultConfig on a fresh temp dir, logging to t; errs
// counts the error records logged.
func testConfig(t testing.TB) (cfg Config, errs *atomic.Int64) {
	errs = new(atomic.Int64)
	cfg = DefaultConfig(t.TempDir())
	cfg.Logger = slog.New(testLog{slog.NewTextHandler(tWriter{t}, nil), errs})
	return cfg, errs
}

// mustOpen opens a store that is closed when the test ends, and checks then
// that no put left a temp file behind.
func mustOpen(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Close: %v", err)
		}
		assertNoTempFiles(t, s)
	})
	return s
}

func assertNoTempFiles(t testing.TB, s *Store) {
	t.Helper()
	entries, err := os.ReadDir(s.paths.tmpDir())
	if err != nil {
		t.Fatalf("read tmp: %v", err)
	}
	if len(entries) != 0 {
		t.Errorf("tmp holds %d entries (first %q); want none", len(entries), entries[0].Name())
	}
}

func mustOID(t testing.TB, algo objid.Algorithm, data []byte) objid.OID {
	t.Helper()
	oid, err := objid.Digest(algo, data)
	if err != nil {
		t.Fatalf("Digest: %v", err)
	}
	return oid
}

// randomBytes returns n incompressible bytes determined by seed.
func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	chacha(seed).Read(b)
	return b
}

func chacha(seed uint64) *rand.ChaCha8 {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	return rand.NewChaCha8(key)
}

var vocabulary = strings.Fields("tree blob commit parent author committer 100644 100755 040000 " +
	"func return if err != nil { } package import main.go README.md\n\t")

// textBytes returns n compressible, source-like bytes determined by seed.
func textBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, 0, n+16)
	for len(b) < n {
		b = append(b, vocabulary[r.IntN(len(vocabulary))]...)
		b = append(b, " \n"[r.IntN(2)])
	}
	return b[:n]
}

// mustGet reads the whole object back, from Data or Body.
func mustGet(t testing.TB, s *Store, oid objid.OID) []byte {
	t.Helper()
	obj, err := s.Get(context.Background(), oid)
	if err != nil {
		t.Fatalf("Get(%s): %v", oid, err)
	}
	if obj.Body == nil {
		return obj.Data
	}
	defer obj.Body.Close()
	data, err := io.ReadAll(obj.Body)
	if err != nil {
		t.Fatalf("read body of %s: %v", oid, err)
	}
	return data
}

// Test hooks: reach past the store's API into its leveldb index.

// rawValue is the body of oid's o/ entry (splitEntry): its codec byte
// and payload.
func (s *Store) rawValue(oid objid.OID) ([]byte, error) { return s.indexedBody(oid) }

// storedValue is oid's o/ value with a value log entry resolved to the
// inline value it points at.
func (s *Store) storedValue(oid objid.OID) ([]byte, error) {
	v, err := s.rawValue(oid)
	if err != nil || len(v) == 0 || v[0] != codecLog {
		return v, err
	}
	return s.logged(oid, v)
}

// setRawValue writes v as the body of oid's o/ entry, keeping the
// entry's size and stamp (or, without an entry, size 0 and stamp 0).
func (s *Store) setRawValue(oid objid.OID, v []byte) error {
	_, size, stamp, _ := s.indexed(oid)
	return s.setRawEntry(oid, entryValue(v, size, stamp))
}

// setRawEntry writes v as oid's whole o/ value, trailer and all, through
// writeBatch so that the entry cache, which mirrors the index, sees it too.
func (s *Store) setRawEntry(oid objid.OID, v []byte) error {
	b := new(leveldb.Batch)
	b.Put(objectKey(oid), v)
	return s.writeBatch(b, s.wo)
}

// forget deletes oid's index entry, as an index rebuilt by leveldb.Recover
// might have lost them.
// The entry cache forgets them too: the index it mirrors lost them.
func (s *Store) forget(oid objid.OID) error {
	b := new(leveldb.Batch)
	b.Delete(objectKey(oid))
	return s.writeBatch(b, s.wo)
}
