package store

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api/objid"
)

// onDrained is a body that calls hook once, right after it has handed out
// its last byte: the put has streamed the whole body but not committed.
type onDrained struct {
	r    *bytes.Reader
	hook func()
}

func (b *onDrained) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if b.r.Len() == 0 && b.hook != nil {
		b.hook()
		b.hook = nil
	}
	return n, err
}

// A re-put of a large object whose copy is present streams the body to
// verify it without holding the stripe lock. A delete with a lower stamp,
// a removal (shed) or a quarantine that lands meanwhile must not make the
// commit index a value it does not have: the put either stores the object
// (and it reads back) or fails; it never acknowledges an empty entry.
func TestLargeReputRacingADeleteNeverIndexesNothing(t *testing.T) {
	f := func(name string, meanwhile func(t *testing.T, s *Store, oid objid.OID), wantErr error, wantStamp objid.Stamp) {
		t.Run(name, func(t *testing.T) {
			cfg, _ := testConfig(t)
			cfg.LargeThreshold = 1 << 10
			s := mustOpen(t, cfg)
			data := randomBytes(7, 40<<10)
			oid := mustOID(t, objid.SHA256, data)
			if _, err := s.PutStamped(ctx, oid, data, 5); err != nil {
				t.Fatal(err)
			}
			body := &onDrained{r: bytes.NewReader(data), hook: func() { meanwhile(t, s, oid) }}
			created, err := s.PutReaderStamped(ctx, oid, body, int64(len(data)), 20)
			if body.hook != nil {
				t.Fatal("the body was never drained")
			}
			got, gerr := s.Get(ctx, oid)
			if gerr == nil && got.Body != nil {
				defer got.Body.Close()
				var read []byte
				if read, gerr = io.ReadAll(got.Body); gerr == nil && !bytes.Equal(read, data) {
					t.Fatalf("re-put then Get: %d bytes that differ from the %d put", len(read), len(data))
				}
			}
			switch {
			case wantErr != nil:
				if !errors.Is(err, wantErr) || !errors.Is(gerr, ErrDeleted) {
					t.Fatalf("re-put: created %t, %v; then Get: %v; want %v and deleted", created, err, gerr, wantErr)
				}
			case err == nil:
				if !created || gerr != nil {
					t.Fatalf("re-put: created %t, acknowledged; then Get: %v; want created and readable", created, gerr)
				}
				if e, merr := s.Meta(ctx, oid); merr != nil || e.Deleted || e.Stamp != wantStamp || e.Size != int64(len(data)) {
					t.Fatalf("meta after re-put: %+v, %v; want size %d, stamp %d", e, merr, len(data), wantStamp)
				}
				if st := s.Stats(); st.Objects != 1 || st.Bytes != int64(len(data)) {
					t.Fatalf("stats after re-put: %+v; want 1 object of %d bytes", st, len(data))
				}
			default: // failed: nothing acknowledged, so nothing may be half there
				if !errors.Is(gerr, ErrNotFound) {
					t.Fatalf("re-put failed (%v); then Get: %v; want not found", err, gerr)
				}
			}
		})
	}
	f("delete with a lower stamp", func(t *testing.T, s *Store, oid objid.OID) {
		if deleted, err := s.Delete(ctx, oid, 10, 1); err != nil || !deleted {
			t.Fatalf("delete meanwhile: %t, %v", deleted, err)
		}
	}, nil, 20)
	f("delete with a higher stamp", func(t *testing.T, s *Store, oid objid.OID) {
		if deleted, err := s.Delete(ctx, oid, 30, 1); err != nil || !deleted {
			t.Fatalf("delete meanwhile: %t, %v", deleted, err)
		}
	}, ErrSuperseded, 0)
	f("remove (shed)", func(t *testing.T, s *Store, oid objid.OID) {
		if err := s.Remove(ctx, oid); err != nil {
			t.Fatalf("remove meanwhile: %v", err)
		}
	}, nil, 20)
	f("quarantine", func(t *testing.T, s *Store, oid objid.OID) {
		flipByte(t, s.paths.objectPath(oid), 100)
		if err := s.Quarantine(ctx, oid); err != nil {
			t.Fatalf("quarantine meanwhile: %v", err)
		}
	}, nil, 20)
}

// A small put appends its record to the value log, fsyncs it, and only
// then indexes it. If the collector runs in between, after the segment
// was sealed by another put, it finds the record unindexed and the
// segment all garbage; it must keep the segment, because the put is about
// to index a pointer into it (issue 15.3). The first put is held right
// after its fsync (the value log's fsync is injectable) while another put
// seals the segment and the collector runs.
func TestCollectorKeepsASegmentWithAPendingAppend(t *testing.T) {
	f := func(name string, put func(s *Store, oid objid.OID, data []byte) error) {
		t.Run(name, func(t *testing.T) {
			cfg, _ := testConfig(t)
			cfg.SegmentSize = 1 << 10 // every record of 2000 bytes gets a segment of its own
			s := mustOpen(t, cfg)
			first := randomBytes(30, 2000)
			if _, err := s.Put(ctx, mustOID(t, objid.SHA256, first), first); err != nil {
				t.Fatal(err)
			}
			pending, other := randomBytes(31, 2000), randomBytes(32, 2000)
			po, oo := mustOID(t, objid.SHA256, pending), mustOID(t, objid.SHA256, other)
			active, _ := s.vlog.activeSegment()
			held := segmentName(active + 1) // where the pending record goes
			synced, release := make(chan struct{}), make(chan struct{})
			var once bool
			s.vlog.syncFile = func(f *os.File, _ int64) error {
				err := f.Sync()
				if filepath.Base(f.Name()) == held && !once {
					once = true
					close(synced)
					<-release
				}
				return err
			}
			errs := make(chan error, 2)
			go func() { errs <- put(s, po, pending) }()
			<-synced // the pending record is durable and not indexed
			go func() { errs <- put(s, oo, other) }()
			eventually(t, func() bool { seg, _ := s.vlog.activeSegment(); return seg > active+1 }, "another put seals the pending record's segment")
			if _, err := s.CollectValueLog(ctx); err != nil {
				t.Fatalf("CollectValueLog: %v", err)
			}
			close(release)
			for range 2 {
				if err := <-errs; err != nil {
					t.Fatalf("put: %v", err)
				}
			}
			for oid, data := range map[objid.OID][]byte{po: pending, oo: other} {
				if got, err := s.Get(ctx, oid); err != nil || !bytes.Equal(got.Data, data) {
					t.Fatalf("Get of an acknowledged put after a collection: %v; want its %d bytes", err, len(data))
				}
			}
		})
	}
	f("put", func(s *Store, oid objid.OID, data []byte) error {
		_, err := s.Put(ctx, oid, data)
		return err
	})
	f("batch", func(s *Store, oid objid.OID, data []byte) error {
		res, err := s.PutBatch(ctx, []BatchItem{{OID: oid, Data: data}})
		if err == nil {
			err = res[0].Err
		}
		return err
	})
}

// eventually polls cond every millisecond for up to 10 s and fails the
// test with what it waited for if cond never holds.
func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: still waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A Get that runs while the object is deleted, removed or collected
// returns the object or not-found (deleted), never ErrCorrupt: the copy
// it was about to read went away with its index entry, it was not
// damaged.
func TestGetRacingARemovalIsNeverCorrupt(t *testing.T) {
	cfg, logged := testConfig(t)
	cfg.LargeThreshold = 1 << 10
	cfg.SegmentSize = 1 << 10
	cfg.NoSync = true
	s := mustOpen(t, cfg)
	f := func(name string, data []byte, remove func(oid objid.OID, round int) error) {
		t.Helper()
		oid := mustOID(t, objid.SHA256, data)
		for round := range 300 {
			if _, err := s.PutStamped(ctx, oid, data, objid.Stamp(2*round+1)); err != nil {
				t.Fatalf("%s: round %d: put: %v", name, round, err)
			}
			got := make(chan error, 1)
			go func() {
				obj, err := s.Get(ctx, oid)
				if err == nil && obj.Body != nil {
					_, err = io.Copy(io.Discard, obj.Body)
					obj.Body.Close()
				}
				got <- err
			}()
			if err := remove(oid, round); err != nil {
				t.Fatalf("%s: round %d: %v", name, round, err)
			}
			if err := <-got; err != nil && !errors.Is(err, ErrNotFound) {
				t.Fatalf("%s: round %d: Get racing the removal: %v; want the object or not found", name, round, err)
			}
		}
	}
	f("large, delete", randomBytes(40, 8<<10), func(oid objid.OID, round int) error {
		_, err := s.Delete(ctx, oid, objid.Stamp(2*round+2), 1)
		return err
	})
	f("large, remove", randomBytes(42, 8<<10), func(oid objid.OID, round int) error { return s.Remove(ctx, oid) })
	small := randomBytes(41, 900)
	f("small, remove and collect", small, func(oid objid.OID, round int) error {
		if err := s.Remove(ctx, oid); err != nil {
			return err
		}
		filler := randomBytes(uint64(1000+round), 900) // seals the segment
		if _, err := s.Put(ctx, mustOID(t, objid.SHA256, filler), filler); err != nil {
			return err
		}
		_, err := s.CollectValueLog(ctx)
		return err
	})
	if n := logged.Load(); n != 0 {
		t.Fatalf("%d errors logged; want none (nothing was damaged)", n)
	}
}
