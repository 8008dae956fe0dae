package store

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/syndtr/goleveldb/leveldb"

	"github.com/stratum-store/stratum/api/objid"
)

// toOldFormat writes oid's entry back in the format before 2026-12-07, as
// the old code wrote it: o/ the body alone, s/ the size and stamp.
func toOldFormat(t *testing.T, s *Store, oid objid.OID) {
	t.Helper()
	body, size, stamp, err := s.indexed(oid)
	if err != nil {
		t.Fatalf("read %s's entry: %v", oid, err)
	}
	b := new(leveldb.Batch)
	b.Put(objectKey(oid), body)
	b.Put(sizeKey(oid), sizeValue(size, stamp))
	if err := s.db.Write(b, s.wo); err != nil {
		t.Fatal(err)
	}
}

// setRawFormat writes the index format marker, or deletes it ("").
func setRawFormat(t *testing.T, s *Store, f string) {
	t.Helper()
	b := new(leveldb.Batch)
	if f == "" {
		b.Delete([]byte(formatKey))
	} else {
		b.Put([]byte(formatKey), []byte(f))
	}
	if err := s.db.Write(b, s.wo); err != nil {
		t.Fatal(err)
	}
}

// A store of the old format (two index keys per object, no format
// marker) opens into the new one: every kind of copy (value log, inline,
// file), stamps, a tombstone, a damaged size entry, a size entry without
// its object, and object entries without their size entry (as
// leveldb.Recover can leave them) all come out as the rules in migrate.go
// say, and nothing of the old format is left.
func TestOpenConvertsTheOldFormat(t *testing.T) {
	ctx := context.Background()
	cfg, _ := testConfig(t)
	cfg.LargeThreshold = 64 << 10

	// Inline copies come from a run with NoValueLog.
	inlineCfg := cfg
	inlineCfg.NoValueLog = true
	s, err := Open(inlineCfg)
	if err != nil {
		t.Fatal(err)
	}
	inline := textBytes(1, 3000)
	inlineOID := mustOID(t, objid.SHA256, inline)
	if _, err := s.PutStamped(ctx, inlineOID, inline, 5); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	type obj struct {
		data  []byte
		stamp objid.Stamp
	}
	objs := map[objid.OID]obj{inlineOID: {inline, 5}}
	put := func(data []byte, stamp objid.Stamp) objid.OID {
		oid := mustOID(t, objid.SHA256, data)
		if _, err := s.PutStamped(ctx, oid, data, stamp); err != nil {
			t.Fatal(err)
		}
		objs[oid] = obj{data, stamp}
		return oid
	}
	logged := put(textBytes(2, 5000), 9)
	large := put(randomBytes(3, 200<<10), 11)
	plain := put(randomBytes(4, 100), 0)
	damaged := put(textBytes(6, 900), 8)
	// Object entries whose size entries leveldb.Recover lost: they keep
	// their copies, with stamp 0.
	lostSize := put(textBytes(8, 1200), 6)
	lostSizeInline := mustOID(t, objid.SHA256, textBytes(9, 800))
	// and one whose size cannot be read either: its entry is dropped.
	unreadable := put(textBytes(10, 600), 2)
	gone := mustOID(t, objid.SHA256, []byte("deleted"))
	if _, err := s.Delete(ctx, gone, 20, 1234); err != nil {
		t.Fatal(err)
	}
	for oid := range objs {
		toOldFormat(t, s, oid)
	}
	setRawFormat(t, s, "")
	orphan := mustOID(t, objid.SHA256, []byte("no object entry"))
	b := new(leveldb.Batch)
	b.Put(sizeKey(damaged), []byte{0xff}) // not a uvarint
	b.Put(sizeKey(orphan), sizeValue(15, 0))
	b.Delete(sizeKey(lostSize))
	b.Put(objectKey(lostSizeInline), append([]byte{codecRaw}, textBytes(9, 800)...))
	objs[lostSizeInline] = obj{textBytes(9, 800), 0}
	b.Delete(sizeKey(unreadable))
	b.Put(objectKey(unreadable), []byte{codecLog, 0xff}) // a pointer that does not parse
	delete(objs, unreadable)
	if err := s.db.Write(b, s.wo); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = mustOpen(t, cfg)
	if n := countPrefix(t, s, sizePrefix); n != 0 {
		t.Fatalf("%d s/ keys left after Open", n)
	}
	var bytesWant int64
	for oid, o := range objs {
		if got := mustGet(t, s, oid); !bytes.Equal(got, o.data) {
			t.Fatalf("%s reads back %d bytes, stored %d", oid, len(got), len(o.data))
		}
		want := Entry{OID: oid, Size: int64(len(o.data)), Stamp: o.stamp}
		if oid == damaged || oid == lostSize {
			want.Stamp = 0 // the stamp was in the damaged or lost entry
		}
		if e, err := s.Meta(ctx, oid); err != nil || e != want {
			t.Fatalf("Meta(%s) = %+v, %v; want %+v", oid, e, err, want)
		}
		bytesWant += int64(len(o.data))
	}
	if st := s.Stats(); st.Objects != int64(len(objs)) || st.Bytes != bytesWant {
		t.Fatalf("Stats %+v; want %d objects, %d bytes", st, len(objs), bytesWant)
	}
	if e, err := s.Meta(ctx, gone); err != nil || !e.Deleted || e.Stamp != 20 || e.At != 1234 {
		t.Fatalf("the tombstone reads as %+v, %v", e, err)
	}
	for _, oid := range []objid.OID{orphan, unreadable} {
		if _, err := s.Meta(ctx, oid); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s reads as %v after the conversion; want not found", oid, err)
		}
	}
	if f, err := s.db.Get([]byte(formatKey), nil); err != nil || string(f) != formatOneKey {
		t.Fatalf("format marker %q, %v; want %q", f, err, formatOneKey)
	}
	seen := 0
	if err := s.RangeCopies(ctx, func(e Entry) bool {
		if o, ok := objs[e.OID]; !ok || e.Size != int64(len(o.data)) {
			t.Errorf("RangeCopies: %+v", e)
		}
		seen++
		return true
	}); err != nil || seen != len(objs) {
		t.Fatalf("RangeCopies saw %d of %d copies, %v", seen, len(objs), err)
	}
	// The converted entries take writes as any other: a stamp raise keeps
	// the body, a delete leaves only the tombstone.
	if _, err := s.PutStamped(ctx, logged, objs[logged].data, 30); err != nil {
		t.Fatal(err)
	}
	if e, _ := s.Meta(ctx, logged); e.Stamp != 30 || !bytes.Equal(mustGet(t, s, logged), objs[logged].data) {
		t.Fatalf("after a stamp raise: %+v", e)
	}
	if _, err := s.Delete(ctx, large, 40, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, large); !errors.Is(err, ErrDeleted) {
		t.Fatalf("Get of a deleted converted copy: %v", err)
	}
	if got := mustGet(t, s, plain); !bytes.Equal(got, objs[plain].data) {
		t.Fatal("an unstamped converted copy reads back wrong")
	}
}

// An Open that crashed in the middle of the conversion's second step
// (the marker says "converting", some entries are converted, the others
// still have their s/ keys) finishes it on the next Open, in bounded
// batches, and converts no entry twice.
func TestConversionResumes(t *testing.T) {
	ctx := context.Background()
	defer func(ops int) { migrateOps = ops }(migrateOps)
	migrateOps = 3 // several synced batches for a handful of objects
	cfg, _ := testConfig(t)
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	datas := map[objid.OID][]byte{}
	for i := range 20 {
		d := textBytes(uint64(100+i), 300+i*50)
		oid := mustOID(t, objid.SHA256, d)
		if _, err := s.PutStamped(ctx, oid, d, objid.Stamp(i+1)); err != nil {
			t.Fatal(err)
		}
		datas[oid] = d
		if i%2 == 0 {
			toOldFormat(t, s, oid) // not yet converted when the crash came
		}
	}
	setRawFormat(t, s, formatConverting)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, cfg)
	if n := countPrefix(t, s, sizePrefix); n != 0 {
		t.Fatalf("%d s/ keys left", n)
	}
	for oid, d := range datas {
		if got := mustGet(t, s, oid); !bytes.Equal(got, d) {
			t.Fatalf("%s reads back wrong", oid)
		}
		if e, err := s.Meta(ctx, oid); err != nil || e.Size != int64(len(d)) || e.Stamp == 0 {
			t.Fatalf("Meta(%s) = %+v, %v", oid, e, err)
		}
	}
	if st := s.Stats(); st.Objects != int64(len(datas)) {
		t.Fatalf("Stats %+v; want %d objects", st, len(datas))
	}
}

// A store marked with a format this version does not know is refused at
// Open, not read as something it is not.
func TestUnknownIndexFormatRefused(t *testing.T) {
	cfg, _ := testConfig(t)
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	setRawFormat(t, s, "3")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(cfg); err == nil {
		s.Close()
		t.Fatal("Open read an index of format 3")
	}
}

// A damaged entry trailer (too short to split) reads as ErrCorrupt, never
// as another object or size, and a put of the object replaces it.
func TestDamagedEntryTrailer(t *testing.T) {
	ctx := context.Background()
	cfg, errs := testConfig(t)
	s := mustOpen(t, cfg)
	data := textBytes(7, 2000)
	oid := mustOID(t, objid.SHA256, data)
	if _, err := s.Put(ctx, oid, data); err != nil {
		t.Fatal(err)
	}
	if err := s.setRawEntry(oid, []byte{codecRaw, 1, 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, oid); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get over a damaged entry: %v; want ErrCorrupt", err)
	}
	if _, err := s.Meta(ctx, oid); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Meta over a damaged entry: %v; want ErrCorrupt", err)
	}
	if errs.Load() == 0 {
		t.Fatal("the damaged entry was not logged as an error")
	}
	created, err := s.Put(ctx, oid, data)
	if err != nil || !created {
		t.Fatalf("Put over a damaged entry: created %v, %v; want a new copy", created, err)
	}
	if got := mustGet(t, s, oid); !bytes.Equal(got, data) {
		t.Fatal("the replaced copy reads back wrong")
	}
}
