package store

import (
	"bytes"
	"context"
	"errors"
	"github.com/klauspost/compress/s2"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/stratum-store/stratum/api/objid"
)

// TestPutBatchOfValues stores objects given as encoded values (what a
// coordinator sends its replicas) and checks that each is decoded and
// verified before anything is stored: a value of other bytes, one that
// does not decode, one without its content size, one that declares more
// than the batch limit and one with more frames than it declares all
// fail alone, and the good ones (an object of exactly the limit among
// them) read back, also after a reopen.
func TestPutBatchOfValues(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig(dir)
	cfg.LargeThreshold = 64 << 10
	cfg.ZstdValues = true // this test is about zstd frames; TestS2ValuesAreBounded covers S2
	s := mustOpen(t, cfg)
	text := textBytes(1, 3000) // compressible: a zstd value
	small := []byte("tiny")    // a raw value
	other := textBytes(2, 3000)
	big := textBytes(3, 100<<10)
	oid := func(b []byte) objid.OID { o, _ := objid.Digest(objid.SHA256, b); return o }
	plain, _ := zstd.NewWriter(nil, zstd.WithSingleSegment(false))
	defer plain.Close()
	noSize := append([]byte{codecZstd}, plain.EncodeAll([]byte("short, so no content size"), nil)...)
	// a frame that declares 60 bytes followed by one of 4 MiB: DecodeAll
	// would decode both; the value may decode to no more than it declares
	head := bytes.Repeat([]byte("ab"), 30)
	twoFrames := append(s.Encode(head), plain.EncodeAll(make([]byte, 4<<20), nil)...)
	edge := randomBytes(5, int(cfg.LargeThreshold)) // raw: a value one byte longer than the limit
	items := []BatchItem{
		{OID: oid(text), Value: s.Encode(text)},
		{OID: oid(small), Value: s.Encode(small)},
		{OID: oid(other), Value: s.Encode(text)},          // 2: the bytes of another object
		{OID: oid(other), Value: []byte{codecZstd, 1, 2}}, // 3: not a zstd frame
		{OID: oid([]byte("short, so no content size")), Value: noSize},
		{OID: oid(big), Value: s.Encode(big)},  // 5: above LargeThreshold
		{OID: oid(other), Value: []byte{7, 1}}, // 6: not an inline codec
		{OID: oid(head), Value: twoFrames},     // 7: more frames than it declares
		{OID: oid(edge), Value: s.Encode(edge)},
	}
	if items[0].Value[0] != codecZstd || items[1].Value[0] != codecRaw { // the store runs with ZstdValues
		t.Fatalf("codecs %d and %d; want zstd then raw", items[0].Value[0], items[1].Value[0])
	}
	if n, err := inlineSize(noSize); err == nil {
		t.Fatalf("a frame without its content size declares %d", n)
	}
	res, err := s.PutBatch(context.Background(), items)
	if err != nil {
		t.Fatal(err)
	}
	if twoFrames[0] != codecZstd || len(items[8].Value) != int(cfg.LargeThreshold)+1 {
		t.Fatalf("test values: codec %d, edge value %d bytes", twoFrames[0], len(items[8].Value))
	}
	want := []error{nil, nil, objid.ErrDigestMismatch, ErrBadValue, ErrBadValue, ErrTooLarge, ErrBadValue, ErrBadValue, nil}
	for i, r := range res {
		if want[i] == nil && (r.Err != nil || !r.Created) {
			t.Fatalf("item %d: %+v; want created", i, r)
		}
		if want[i] != nil && !errors.Is(r.Err, want[i]) {
			t.Fatalf("item %d: %v; want %v", i, r.Err, want[i])
		}
	}
	check := func(s *Store) {
		t.Helper()
		if got := s.Stats().Objects; got != 3 {
			t.Fatalf("%d objects stored; want 3", got)
		}
		for _, b := range [][]byte{text, small, edge} {
			got, err := s.Get(context.Background(), oid(b))
			if err != nil || !bytes.Equal(got.Data, b) {
				t.Fatalf("get %s: %v (%d bytes); want the %d bytes put", oid(b), err, len(got.Data), len(b))
			}
		}
		if _, err := s.Get(context.Background(), oid(other)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get of the refused object: %v; want not found", err)
		}
	}
	check(s)
	s.Close()
	s = mustOpen(t, cfg)
	defer s.Close()
	check(s)
}

// TestValueDecodesNoMoreThanItDeclares puts a value whose first zstd frame
// (or S2 block) declares 60 bytes and whose second decodes to 32 MiB: it
// is refused having allocated about what it declared, not the 32 MiB.
func TestValueDecodesNoMoreThanItDeclares(t *testing.T) {
	for _, zstdValues := range []bool{true, false} {
		testValueDecodesNoMoreThanItDeclares(t, zstdValues)
	}
}

func testValueDecodesNoMoreThanItDeclares(t *testing.T, zstdValues bool) {
	cfg := DefaultConfig(t.TempDir())
	cfg.ZstdValues = zstdValues
	s := mustOpen(t, cfg)
	defer s.Close()
	head := bytes.Repeat([]byte("ab"), 30)
	oid, _ := objid.Digest(objid.SHA256, head)
	plain, _ := zstd.NewWriter(nil)
	defer plain.Close()
	first := s.Encode(head)
	if want := map[bool]byte{true: codecZstd, false: codecS2}[zstdValues]; first[0] != want {
		t.Fatalf("codec %d; want %d", first[0], want)
	}
	second := plain.EncodeAll(make([]byte, 32<<20), nil)
	if !zstdValues {
		second = s2.Encode(nil, make([]byte, 32<<20))
	}
	value := append(first, second...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res, err := s.PutBatch(context.Background(), []BatchItem{{OID: oid, Value: value}})
	runtime.ReadMemStats(&after)
	if err != nil || !errors.Is(res[0].Err, ErrBadValue) {
		t.Fatalf("PutBatch: %v, %v; want ErrBadValue", err, res[0].Err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 8<<20 {
		t.Fatalf("refusing the value allocated %d bytes; want well under the 32 MiB its second frame holds", n)
	}
}

// BenchmarkDecodeValue compares, on 800-byte text objects, decoding a
// stored value (decodeInline) with decoding a coordinator's value into a
// buffer capped at its declared size (decodeValue), which must cost no
// more.
func BenchmarkDecodeValue(b *testing.B) {
	c, _ := newCodecs(true)
	defer c.close()
	vals := make([][]byte, 256)
	for i := range vals {
		vals[i] = c.encodeInline(textBytes(uint64(i), 800))
	}
	b.Run("stored", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			c.decodeInline(vals[i%len(vals)])
		}
	})
	b.Run("capped", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			c.decodeValue(vals[i%len(vals)], 800)
		}
	})
}

// A coordinator's S2 values go through PutBatch as zstd values do: the
// bytes of another object are a digest mismatch, a block that declares
// more than LargeThreshold is refused before it is decoded, a cut block
// is a bad value, and a compressible object of exactly the limit is
// stored and reads back.
func TestPutBatchOfS2Values(t *testing.T) {
	cfg := DefaultConfig(t.TempDir())
	cfg.LargeThreshold = 64 << 10
	s := mustOpen(t, cfg)
	defer s.Close()
	oid := func(b []byte) objid.OID { o, _ := objid.Digest(objid.SHA256, b); return o }
	text, other := textBytes(1, 3000), textBytes(2, 3000)
	edge := textBytes(3, int(cfg.LargeThreshold))
	big := textBytes(4, int(cfg.LargeThreshold)+1)
	cut := s.Encode(text)
	items := []BatchItem{
		{OID: oid(text), Value: s.Encode(text)},
		{OID: oid(other), Value: s.Encode(text)},  // 1: another object's bytes
		{OID: oid(big), Value: s.Encode(big)},     // 2: above LargeThreshold
		{OID: oid(text), Value: cut[:len(cut)-4]}, // 3: cut
		{OID: oid(edge), Value: s.Encode(edge)},
	}
	for i, it := range items {
		if it.Value[0] != codecS2 {
			t.Fatalf("item %d: codec %d; want S2", i, it.Value[0])
		}
	}
	res, err := s.PutBatch(context.Background(), items)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []error{nil, objid.ErrDigestMismatch, ErrTooLarge, ErrBadValue, nil} {
		if (want == nil) != (res[i].Err == nil) || want != nil && !errors.Is(res[i].Err, want) {
			t.Errorf("item %d: %v; want %v", i, res[i].Err, want)
		}
	}
	for _, d := range [][]byte{text, edge} {
		if got := mustGet(t, s, oid(d)); !bytes.Equal(got, d) {
			t.Fatalf("%d bytes read back wrong", len(d))
		}
	}
}
