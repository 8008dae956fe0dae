package store

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/stratum-store/stratum/api"
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
	f := func(name string, meanwhile func(t *testing.T, s *Store, oid api.OID), wantErr error, wantStamp api.Stamp) {
		t.Run(name, func(t *testing.T) {
			cfg, _ := testConfig(t)
			cfg.LargeThreshold = 1 << 10
			s := mustOpen(t, cfg)
			data := randomBytes(7, 40<<10)
			oid := mustOID(t, api.SHA256, data)
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
	f("delete with a lower stamp", func(t *testing.T, s *Store, oid api.OID) {
		if deleted, err := s.Delete(ctx, oid, 10, 1); err != nil || !deleted {
			t.Fatalf("delete meanwhile: %t, %v", deleted, err)
		}
	}, nil, 20)
	f("delete with a higher stamp", func(t *testing.T, s *Store, oid api.OID) {
		if deleted, err := s.Delete(ctx, oid, 30, 1); err != nil || !deleted {
			t.Fatalf("delete meanwhile: %t, %v", deleted, err)
		}
	}, ErrSuperseded, 0)
	f("remove (shed)", func(t *testing.T, s *Store, oid api.OID) {
		if err := s.Remove(ctx, oid); err != nil {
			t.Fatalf("remove meanwhile: %v", err)
		}
	}, nil, 20)
	f("quarantine", func(t *testing.T, s *Store, oid api.OID) {
		flipByte(t, s.paths.objectPath(oid), 100)
		if err := s.Quarantine(ctx, oid); err != nil {
			t.Fatalf("quarantine meanwhile: %v", err)
		}
	}, nil, 20)
}
