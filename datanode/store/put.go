package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/syndtr/goleveldb/leveldb"

	"github.com/stratum-store/stratum/api"
)

// chunkSize is the unit in which bodies are streamed; ctx is checked
// between chunks.
const chunkSize = 256 << 10

// Put stores data under oid after verifying that data hashes to oid; errors
// wrap api.ErrDigestMismatch or api.ErrCollision and then nothing is
// stored. created is false when a copy was already present. Put returns
// only after the copy is durable, unless Config.NoSync.
func (s *Store) Put(ctx context.Context, oid api.OID, data []byte) (created bool, err error) {
	end, err := s.begin(ctx, oid)
	if err != nil {
		return false, err
	}
	defer end()
	size := int64(len(data))
	if err := s.checkSize(oid, size); err != nil {
		return false, err
	}
	if size > s.cfg.LargeThreshold {
		return s.putLarge(ctx, oid, bytes.NewReader(data), size)
	}
	return s.putSmall(oid, data)
}

// PutReader stores exactly size bytes read from r under oid, like Put.
// Objects at or below LargeThreshold are read into memory; larger ones are
// streamed through a temp file, never held whole. A body shorter or longer
// than size fails with an error wrapping ErrSizeMismatch and stores nothing.
func (s *Store) PutReader(ctx context.Context, oid api.OID, r io.Reader, size int64) (created bool, err error) {
	end, err := s.begin(ctx, oid)
	if err != nil {
		return false, err
	}
	defer end()
	if err := s.checkSize(oid, size); err != nil {
		return false, err
	}
	if size > s.cfg.LargeThreshold {
		return s.putLarge(ctx, oid, r, size)
	}
	data := make([]byte, size)
	if err := readFull(r, data); err != nil {
		return false, fmt.Errorf("store: put %s: %w", oid, err)
	}
	if err := expectEOF(r); err != nil {
		return false, fmt.Errorf("store: put %s: %w", oid, err)
	}
	return s.putSmall(oid, data)
}

func (s *Store) checkSize(oid api.OID, size int64) error {
	switch {
	case size < 0:
		return fmt.Errorf("store: put %s: %w: negative size %d", oid, ErrSizeMismatch, size)
	case size > s.cfg.MaxObjectSize:
		return fmt.Errorf("store: put %s: %w: %d bytes, the limit is %d", oid, ErrTooLarge, size, s.cfg.MaxObjectSize)
	}
	return nil
}

func (s *Store) putSmall(oid api.OID, data []byte) (bool, error) {
	if err := api.Verify(oid, data); err != nil {
		return false, fmt.Errorf("store: put %s: %w", oid, err)
	}
	return s.commit(oid, int64(len(data)), s.codecs.encodeInline(data), nil)
}

// commit indexes oid unless it is already present, under oid's stripe lock,
// so that exactly one of several concurrent puts reports created. place, if
// set, moves the object's file into place before the index entry is
// written: an index entry never names a file that is not there.
func (s *Store) commit(oid api.OID, size int64, value []byte, place func() error) (bool, error) {
	mu := s.stripe(oid)
	mu.Lock()
	defer mu.Unlock()
	present, err := s.has(oid)
	if err != nil {
		return false, err
	}
	if present && s.intact(context.Background(), oid) {
		return false, nil
	}
	if present {
		s.log.Warn("replacing a damaged copy", "oid", oid)
	}
	if place != nil {
		if err := place(); err != nil {
			return false, err
		}
	}
	b := new(leveldb.Batch)
	b.Put(objectKey(oid), value)
	b.Put(sizeKey(oid), sizeValue(size))
	if err := s.db.Write(b, s.wo); err != nil {
		return false, fmt.Errorf("store: put %s: write index: %w", oid, err)
	}
	if !present { // a replaced copy was counted already
		s.objects.Add(1)
		s.bytes.Add(size)
	}
	return true, nil
}

// readFull fills buf from r; a body that ends early is ErrSizeMismatch.
func readFull(r io.Reader, buf []byte) error {
	n, err := io.ReadFull(r, buf)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: body ended %d bytes short", ErrSizeMismatch, len(buf)-n)
	}
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	return nil
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
		k, err := io.ReadFull(r, chunk)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: body ended %d bytes short", ErrSizeMismatch, n-done-int64(k))
		}
		if err != nil {
			return fmt.Errorf("read body: %w", err)
		}
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		done += int64(len(chunk))
	}
	return nil
}
