package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/syndtr/goleveldb/leveldb"

	"github.com/stratum-store/stratum/api/objid"
)

// chunkSize is the unit in which bodies are streamed; ctx is checked
// between chunks.
const chunkSize = 256 << 10

// Put stores data under oid after verifying that data hashes to oid; errors
// wrap objid.ErrDigestMismatch or objid.ErrCollision and then nothing is
// stored. created is false when a copy was already present. Put returns
// only after the copy is durable, unless Config.NoSync.
func (s *Store) Put(ctx context.Context, oid objid.OID, data []byte) (created bool, err error) {
	return s.PutStamped(ctx, oid, data, 0)
}

// PutStamped is Put with the write's stamp (tombstone.go): over a
// tombstone with a stamp at least as high it stores nothing and fails with
// a *StampError wrapping ErrSuperseded; over an intact copy it raises the
// copy's stamp.
func (s *Store) PutStamped(ctx context.Context, oid objid.OID, data []byte, stamp objid.Stamp) (created bool, err error) {
	return s.put(ctx, oid, putBody{data: data, size: int64(len(data))}, stamp)
}

// PutReader stores exactly size bytes read from r under oid, like Put.
// Objects at or below LargeThreshold are read into memory; larger ones are
// streamed through a temp file, never held whole. A body shorter or longer
// than size fails with an error wrapping ErrSizeMismatch and stores nothing.
func (s *Store) PutReader(ctx context.Context, oid objid.OID, r io.Reader, size int64) (created bool, err error) {
	return s.PutReaderStamped(ctx, oid, r, size, 0)
}

// PutReaderStamped is PutReader with the write's stamp, as PutStamped.
func (s *Store) PutReaderStamped(ctx context.Context, oid objid.OID, r io.Reader, size int64, stamp objid.Stamp) (created bool, err error) {
	return s.put(ctx, oid, putBody{r: r, size: size}, stamp)
}

// putBody is a put's bytes: in memory (data), or size bytes to read from r.
type putBody struct {
	data []byte
	r    io.Reader
	size int64
}

// put runs the steps every Put* shares: the OID's section (begin), the
// size check, then the large-object path or the small one, reading a
// small body from its reader first.
func (s *Store) put(ctx context.Context, oid objid.OID, b putBody, stamp objid.Stamp) (created bool, err error) {
	end, err := s.begin(ctx, oid)
	if err != nil {
		return false, err
	}
	defer s.maybeCheckpoint() // after end: it begins its own
	defer end()
	if err := s.checkSize(oid, b.size); err != nil {
		return false, err
	}
	if b.size > s.cfg.LargeThreshold {
		r := b.r
		if r == nil {
			r = bytes.NewReader(b.data)
		}
		return s.putLarge(ctx, oid, r, b.size, stamp)
	}
	data := b.data
	if b.r != nil {
		data = make([]byte, b.size)
		if err := readFull(b.r, data); err != nil {
			return false, fmt.Errorf("store: put %s: %w", oid, err)
		}
		if err := expectEOF(b.r); err != nil {
			return false, fmt.Errorf("store: put %s: %w", oid, err)
		}
	}
	return s.putSmall(oid, data, stamp)
}

func (s *Store) checkSize(oid objid.OID, size int64) error {
	switch {
	case size < 0:
		return fmt.Errorf("store: put %s: %w: negative size %d", oid, ErrSizeMismatch, size)
	case size > s.cfg.MaxObjectSize:
		return fmt.Errorf("store: put %s: %w: %d bytes, the limit is %d", oid, ErrTooLarge, size, s.cfg.MaxObjectSize)
	}
	return nil
}

func (s *Store) putSmall(oid objid.OID, data []byte, stamp objid.Stamp) (bool, error) {
	if err := objid.Verify(oid, data); err != nil {
		return false, fmt.Errorf("store: put %s: %w", oid, err)
	}
	value := s.codecs.encodeInline(data)
	if s.cfg.NoValueLog {
		return s.commit(oid, int64(len(data)), stamp, value, nil)
	}
	var pinned pins
	defer pinned.release(&s.live) // after commit counted the record live
	if e, err := s.meta(oid); err == nil && !e.Deleted {
		// Most likely a copy is here already: append only if commit finds
		// it must store, so a repeated put leaves no garbage in the log.
		return s.commitWith(oid, int64(len(data)), stamp, func() ([]byte, error) { return s.logValue(oid, value, stamp, &pinned) }, nil)
	}
	entry, err := s.logValue(oid, value, stamp, &pinned)
	if err != nil {
		return false, err
	}
	return s.commit(oid, int64(len(data)), stamp, entry, nil)
}

// logValue appends value to the value log as a replayable record of a
// put with stamp and returns its index entry; the record stays pinned
// (vloggc.go) until p is released.
func (s *Store) logValue(oid objid.OID, value []byte, stamp objid.Stamp, p *pins) ([]byte, error) {
	ptrs, err := s.vlog.append([]objid.OID{oid}, [][]byte{value}, []objid.Stamp{stamp})
	if err != nil {
		return nil, fmt.Errorf("store: put %s: %w", oid, err)
	}
	p.add(ptrs[0].pos())
	return ptrs[0].entry(), nil
}

// pins collects the positions an operation's appends pinned, to release
// once its index write is done or abandoned.
type pins []logPos

func (p *pins) add(pos logPos) { *p = append(*p, pos) }

func (p *pins) release(l *logLive) {
	for _, pos := range *p {
		l.unpin(pos)
	}
	*p = nil
}

// commit indexes oid unless an intact copy is present, under oid's stripe
// lock, so that exactly one of several concurrent puts reports created,
// and applies the stamp rules of tombstone.go. place, if set, moves the
// object's file into place before the index entry is written: an index
// entry never names a file that is not there.
func (s *Store) commit(oid objid.OID, size int64, stamp objid.Stamp, value []byte, place func() error) (bool, error) {
	return s.commitWith(oid, size, stamp, func() ([]byte, error) { return value, nil }, place)
}

// commitWith is commit with the o/ value made only if it is to be stored.
func (s *Store) commitWith(oid objid.OID, size int64, stamp objid.Stamp, value func() ([]byte, error), place func() error) (bool, error) {
	mu := s.stripe(oid)
	mu.Lock()
	defer mu.Unlock()
	b := new(leveldb.Batch)
	w, err := s.planWrite(context.Background(), b, oid, stamp)
	if err != nil || !w.store {
		return false, s.writePlan(b, oid, err)
	}
	if place != nil {
		if err := place(); err != nil {
			return false, err
		}
	}
	v, err := value()
	if err != nil {
		return false, err
	}
	if len(v) == 0 { // never index a value this put does not have (issue 15.1)
		return false, fmt.Errorf("store: put %s: nothing to index (a bug)", oid)
	}
	var old logPtr
	var hadOld bool
	if w.present { // a damaged copy being replaced
		old, hadOld = s.indexedPtr(oid)
	}
	b.Put(objectKey(oid), entryValue(v, size, stamp))
	replayable := v[0] == codecLog && !w.present // logged by this put (putSmall); a replacement stays synced
	if err := s.writePut(b, []objid.OID{oid}, replayable); err != nil {
		return false, fmt.Errorf("store: put %s: write index: %w", oid, err)
	}
	s.accountEntry(v)
	if hadOld {
		s.live.add(old, -1)
	}
	if !w.present { // a replaced copy was counted already
		s.objects.Add(1)
		s.bytes.Add(size)
	}
	return true, nil
}

// plannedWrite is what planWrite decided for one object.
type plannedWrite struct {
	store   bool        // write the bytes (b already drops a tombstone)
	present bool        // a (damaged) copy is indexed and counted
	stamp   objid.Stamp // the copy's stamp once b is written
	body    []byte      // the entry body whose stamp b raises, if it does
}

// planWrite decides, under oid's stripe lock, what a write with stamp
// does: store the bytes (over nothing, a damaged copy, or an older
// tombstone, whose deletion it adds to b), only raise an intact copy's
// stamp (added to b), or nothing. A newer tombstone is a *StampError
// wrapping ErrSuperseded.
func (s *Store) planWrite(ctx context.Context, b *leveldb.Batch, oid objid.OID, stamp objid.Stamp) (plannedWrite, error) {
	e, err := s.meta(oid)
	switch {
	case errors.Is(err, ErrNotFound):
		return plannedWrite{store: true, stamp: stamp}, nil
	case errors.Is(err, ErrCorrupt):
		s.log.Warn("replacing a copy with a damaged size entry", "oid", oid)
		return plannedWrite{store: true, present: true, stamp: stamp}, nil
	case err != nil:
		return plannedWrite{}, err
	case e.Deleted && stamp <= e.Stamp:
		return plannedWrite{}, &StampError{Kind: ErrSuperseded, Stamp: e.Stamp, Deleted: true}
	case e.Deleted:
		b.Delete(tombKey(oid))
		return plannedWrite{store: true, stamp: stamp}, nil
	case s.intact(ctx, oid):
		w := plannedWrite{present: true, stamp: max(stamp, e.Stamp)}
		if stamp > e.Stamp {
			if w.body, err = s.restamp(b, oid, nil, e.Size, stamp); err != nil {
				return plannedWrite{}, err
			}
		}
		return w, nil
	}
	s.log.Warn("replacing a damaged copy", "oid", oid)
	return plannedWrite{store: true, present: true, stamp: stamp}, nil
}

// restamp adds to b oid's entry with the stamp raised to stamp: body, or
// when body is nil the body indexed now, which it returns. Callers hold
// oid's stripe lock.
func (s *Store) restamp(b *leveldb.Batch, oid objid.OID, body []byte, size int64, stamp objid.Stamp) ([]byte, error) {
	if body == nil {
		v, err := s.db.Get(objectKey(oid), nil)
		if err != nil {
			return nil, s.indexError("put", oid, err)
		}
		if body, _, _, err = splitEntry(v); err != nil {
			return nil, s.corrupt(oid, err)
		}
	}
	b.Put(objectKey(oid), entryValue(body, size, stamp))
	return body, nil
}

// writePlan writes what planWrite put in b when nothing else is stored
// (a stamp raise), or returns err.
func (s *Store) writePlan(b *leveldb.Batch, oid objid.OID, err error) error {
	if err != nil || b.Len() == 0 {
		return err
	}
	if err := s.writeIndex(b); err != nil {
		return fmt.Errorf("store: put %s: write index: %w", oid, err)
	}
	return nil
}

// readFull fills buf from r; a body that ends early is ErrSizeMismatch.
func readFull(r io.Reader, buf []byte) error {
	if n, err := io.ReadFull(r, buf); err != nil {
		return shortRead(err, int64(len(buf)-n))
	}
	return nil
}

// shortRead is a failed body read: ErrSizeMismatch when the body ended
// short bytes early, else the read's own error.
func shortRead(err error, short int64) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: body ended %d bytes short", ErrSizeMismatch, short)
	}
	return fmt.Errorf("read body: %w", err)
}

// expectEOF fails with ErrSizeMismatch if r holds more bytes.
func expectEOF(r io.Reader) error {
	var one [1]byte
	n, err := io.ReadFull(r, one[:])
	switch {
	case n > 0:
		return fmt.Errorf("%w: body is longer than declared", ErrSizeMismatch)
	case errors.Is(err, io.EOF):
		return nil
	}
	return fmt.Errorf("read body: %w", err)
}

// copyExactly copies n bytes from r to w in chunks, checking ctx between
// chunks; a body that ends early is ErrSizeMismatch. It does not look past
// the n bytes.
func copyExactly(ctx context.Context, w io.Writer, r io.Reader, n int64) error {
	buf := make([]byte, min(n, chunkSize))
	for done := int64(0); done < n; {
		if err := ctx.Err(); err != nil {
			return err
		}
		chunk := buf[:min(n-done, int64(len(buf)))]
		if k, err := io.ReadFull(r, chunk); err != nil {
			return shortRead(err, n-done-int64(k))
		}
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		done += int64(len(chunk))
	}
	return nil
}
