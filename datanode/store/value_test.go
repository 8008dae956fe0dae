package store

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/stratum-store/stratum/api/objid"
)

// TestPutBatchOfValues stores objects given as encoded values (what a
// coordinator sends its replicas) and checks that each is decoded and
// verified before anything is stored: a value of other bytes, one that
// does not decode, one without its content size and one that declares
// more than the batch limit all fail alone, and the good ones read back,
// also after a reopen.
func TestPutBatchOfValues(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig(dir)
	cfg.LargeThreshold = 64 << 10
	s := mustOpen(t, cfg)
	text := textBytes(1, 3000) // compressible: a zstd value
	small := []byte("tiny")    // a raw value
	other := textBytes(2, 3000)
	big := textBytes(3, 100<<10)
	oid := func(b []byte) objid.OID { o, _ := objid.Digest(objid.SHA256, b); return o }
	plain, _ := zstd.NewWriter(nil, zstd.WithSingleSegment(false))
	defer plain.Close()
	noSize := append([]byte{codecZstd}, plain.EncodeAll([]byte("short, so no content size"), nil)...)
	items := []BatchItem{
		{OID: oid(text), Value: s.Encode(text)},
		{OID: oid(small), Value: s.Encode(small)},
		{OID: oid(other), Value: s.Encode(text)},          // 2: the bytes of another object
		{OID: oid(other), Value: []byte{codecZstd, 1, 2}}, // 3: not a zstd frame
		{OID: oid([]byte("short, so no content size")), Value: noSize},
		{OID: oid(big), Value: s.Encode(big)},  // 5: above LargeThreshold
		{OID: oid(other), Value: []byte{7, 1}}, // 6: not an inline codec
	}
	if items[0].Value[0] != codecZstd || items[1].Value[0] != codecRaw {
		t.Fatalf("codecs %d and %d; want zstd then raw", items[0].Value[0], items[1].Value[0])
	}
	if n, err := inlineSize(noSize); err == nil {
		t.Fatalf("a frame without its content size declares %d", n)
	}
	res, err := s.PutBatch(context.Background(), items)
	if err != nil {
		t.Fatal(err)
	}
	want := []error{nil, nil, objid.ErrDigestMismatch, ErrBadValue, ErrBadValue, ErrTooLarge, ErrBadValue}
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
		if got := s.Stats().Objects; got != 2 {
			t.Fatalf("%d objects stored; want 2", got)
		}
		for _, b := range [][]byte{text, small} {
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
