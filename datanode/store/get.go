package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/syndtr/goleveldb/leveldb"

	"github.com/stratum-store/stratum/api/objid"
)

// Get returns a verified copy of the object: Data for an object at or below
// LargeThreshold when it was stored, otherwise Body, positioned at the
// start and verified by a full pass before Get returns; the caller closes
// it. A copy that fails verification is logged and reported as an error
// wrapping ErrCorrupt, never served. A missing object is ErrNotFound.
func (s *Store) Get(ctx context.Context, oid objid.OID) (Object, error) {
	end, err := s.begin(ctx, oid)
	if err != nil {
		return Object{}, err
	}
	defer end()
	return s.get(ctx, oid)
}

// intact reports whether the indexed copy of oid reads back and verifies.
// A put that finds a copy already indexed asks this before it answers
// "already present": a damaged copy is replaced, not acknowledged.
func (s *Store) intact(ctx context.Context, oid objid.OID) bool {
	obj, err := s.get(ctx, oid)
	if err != nil {
		return false
	}
	if obj.Body != nil {
		obj.Body.Close()
	}
	return true
}

// errEntryChanged: the copy a read was about to use went away with its
// index entry (a delete, a removal, a collection) between the index read
// and the read of the bytes. Nothing is damaged; get reads again.
var errEntryChanged = errors.New("store: index entry changed during the read")

// get is Get inside an operation already begun. A read that raced a
// delete, removal or collection of the copy starts again, so it returns
// the object or not-found, never a false ErrCorrupt.
func (s *Store) get(ctx context.Context, oid objid.OID) (Object, error) {
	for range 4 {
		obj, err := s.getOnce(ctx, oid)
		if !errors.Is(err, errEntryChanged) {
			return obj, err
		}
	}
	return Object{}, fmt.Errorf("store: get %s: the copy kept changing during the read; retry", oid)
}

func (s *Store) getOnce(ctx context.Context, oid objid.OID) (Object, error) {
	v, tomb, err := s.objectValue(oid)
	switch {
	case tomb != nil:
		return Object{}, &StampError{Kind: ErrDeleted, Stamp: s.tombStamp(oid, tomb), Deleted: true}
	case errors.Is(err, ErrCorrupt):
		return Object{}, err
	case err != nil:
		return Object{}, s.indexError("get", oid, err)
	}
	if v[0] == codecFileRaw || v[0] == codecFileZstd {
		return s.getLarge(ctx, oid, v)
	}
	if v[0] == codecLog {
		if v, err = s.loggedValue(oid, v); errors.Is(err, errEntryChanged) {
			return Object{}, err
		} else if err != nil {
			return Object{}, s.corrupt(oid, err)
		}
	}
	data, err := s.codecs.decodeInline(v)
	if err != nil {
		return Object{}, s.corrupt(oid, err)
	}
	if err := objid.Verify(oid, data); err != nil {
		return Object{}, s.corrupt(oid, err)
	}
	return Object{Size: int64(len(data)), Data: data}, nil
}

// settled reads oid's key (its o/ entry) and, if that is
// absent, its tombstone, both from one snapshot of the index: it returns
// the entry's value, or the tombstone's, or leveldb.ErrNotFound. Two plain
// reads one after the other could straddle a put over a tombstone (or a
// delete), each one batch that swaps one key for the other, and find
// neither. (goleveldb's Get takes a snapshot of its own, so one shared by
// two reads costs no more.) The tombstone is not looked for when oid was
// never indexed (mayHave).
func (s *Store) settled(oid objid.OID, key []byte) (value, tomb []byte, err error) {
	snap, err := s.db.GetSnapshot()
	if err != nil {
		return nil, nil, err
	}
	defer snap.Release()
	if value, err = snap.Get(key, nil); err == nil || !errors.Is(err, leveldb.ErrNotFound) || !s.mayHave(oid) {
		return value, nil, err
	}
	if tomb, err = snap.Get(tombKey(oid), nil); err != nil {
		return nil, nil, err
	}
	return nil, tomb, nil
}

// objectValue returns the body of oid's o/ entry (splitEntry), or else its
// tombstone's value: from the entry cache when it knows the copy's value
// log pointer, else from the index (settled), and then the pointer, size
// and stamp go into the cache. A damaged entry is ErrCorrupt.
func (s *Store) objectValue(oid objid.OID) (body, tomb []byte, err error) {
	p, ok, gen := s.entries.lookupPtr(oid)
	if ok {
		return p.entry(), nil, nil
	}
	v, tomb, err := s.settled(oid, objectKey(oid))
	if err != nil || tomb != nil {
		return nil, tomb, err
	}
	body, size, stamp, err := splitEntry(v)
	if err != nil {
		return nil, nil, s.corrupt(oid, err)
	}
	if body[0] == codecLog {
		if p, perr := parseLogEntry(body); perr == nil {
			s.entries.fillPtr(oid, p, gen)
		}
	}
	s.entries.fill(Entry{OID: oid, Size: size, Stamp: stamp}, gen)
	return body, nil, nil
}

// body is the Body of a large object. It hashes what it serves and checks
// the digest when the last byte has been read, so a file damaged after
// Get's verification pass ends in an ErrCorrupt error instead of io.EOF.
type body struct {
	s       *Store
	oid     objid.OID
	f       *os.File
	r       io.Reader
	release func()
	h       *objid.Hasher
	left    int64
	err     error
}

func (s *Store) newBody(oid objid.OID, f *os.File, codec byte, size int64) (*body, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("store: get %s: %w", oid, err)
	}
	r, release, err := decodeFile(f, codec)
	if err != nil {
		return nil, s.corrupt(oid, err)
	}
	return &body{s: s, oid: oid, f: f, r: r, release: release, h: objid.NewHasher(oid.Algorithm()), left: size}, nil
}

// Read reads the object; it never returns more than its size.
func (b *body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.h.Write(p[:n])
	b.left -= int64(n)
	switch {
	case b.left == 0:
		b.err = io.EOF
		if cerr := objid.Check(b.oid, b.h); cerr != nil {
			b.err = b.s.corrupt(b.oid, fmt.Errorf("changed after verification: %w", cerr))
		}
	case errors.Is(err, io.EOF):
		b.err = b.s.corrupt(b.oid, fmt.Errorf("changed after verification: ended %d bytes short", b.left))
	case err != nil:
		b.err = fmt.Errorf("store: read %s: %w", b.oid, err)
	}
	return n, b.err
}

// Close releases the file and the decoder.
func (b *body) Close() error {
	if b.release == nil {
		return errors.New("store: body already closed")
	}
	b.release()
	b.release = nil
	return b.f.Close()
}

// loggedValue is logged, read again when it fails and the index entry
// changed meanwhile: the value log collector moved the record and deleted
// its old segment between this Get's index read and its record read.
func (s *Store) loggedValue(oid objid.OID, v []byte) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		value, err := s.logged(oid, v)
		if err == nil || attempt == 3 {
			return value, err
		}
		now, gerr := s.indexedBody(oid)
		switch {
		case errors.Is(gerr, leveldb.ErrNotFound):
			return nil, errEntryChanged // deleted or removed, then collected
		case gerr != nil || bytes.Equal(now, v):
			return nil, err
		case now[0] != codecLog:
			return nil, errEntryChanged // replaced: read it as what it is now
		}
		v = now
	}
}

// logged reads the inline value that the value log entry v of oid points
// at; an error means the entry or the record is damaged.
func (s *Store) logged(oid objid.OID, v []byte) ([]byte, error) {
	p, err := parseLogEntry(v)
	if err != nil {
		return nil, err
	}
	payload, err := s.vlog.read(p)
	if err != nil {
		return nil, fmt.Errorf("value log: %w", err)
	}
	hex, value, err := splitPayload(payload)
	if err != nil {
		return nil, err
	}
	if hex != oid.String() {
		return nil, fmt.Errorf("value log record of %s, not of this object", hex)
	}
	if len(value) == 0 || value[0] == codecLog || value[0] == codecFileRaw || value[0] == codecFileZstd {
		return nil, errors.New("value log record holds no inline value")
	}
	return value, nil
}
