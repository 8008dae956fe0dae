package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"
	"github.com/syndtr/goleveldb/leveldb"

	"github.com/stratum-store/stratum/api/objid"
)

// putLarge streams an object above LargeThreshold into a temp file while
// hashing it, verifies it, makes it durable and commits it.
//
// A re-put of an intact copy only verifies the body, writing nothing. It
// streams the body without holding the stripe lock, so the copy may go
// meanwhile (a delete with a lower stamp, a removal, a quarantine) and the
// commit may then have to store the object after all: keepCopy took a hard
// link to the copy's file before the streaming, and that is what the
// commit stores (issue 15.1). A commit never indexes bytes it does not have.
func (s *Store) putLarge(ctx context.Context, oid objid.OID, r io.Reader, size int64, stamp objid.Stamp) (bool, error) {
	kept, err := s.keepCopy(ctx, oid)
	if err != nil {
		return false, err
	}
	if kept != nil {
		defer s.discard(kept)
		if err := s.verifyOnly(ctx, oid, r, size); err != nil {
			return false, err
		}
		return s.commit(oid, size, stamp, kept.entry, func() error { return s.placeKept(kept, oid) })
	}
	tmp, codec, err := s.spool(ctx, oid, r, size)
	if err != nil {
		return false, fmt.Errorf("store: put %s: %w", oid, err)
	}
	placed := false
	created, err := s.commit(oid, size, stamp, fileEntry(codec, size), func() error {
		if err := s.place(tmp, oid); err != nil {
			return fmt.Errorf("store: put %s: %w", oid, err)
		}
		placed = true
		return nil
	})
	if !placed {
		if rerr := removeIfPresent(tmp); rerr != nil {
			s.log.Error("cannot remove temp file", "path", tmp, "err", rerr)
		}
	}
	return created, err
}

// keptCopy is a hard link, under tmp, to the file of a copy that was
// intact when it was taken, and the copy's index entry.
type keptCopy struct {
	path   string
	entry  []byte
	placed bool
}

// keepCopy returns a keptCopy of oid's stored file if it is indexed and
// its bytes verify, and nil (the body must be spooled) otherwise, or when
// the file system cannot link. The link is taken under oid's stripe lock,
// so the copy cannot go between the index read and the link; the link is
// verified after the lock is released.
func (s *Store) keepCopy(ctx context.Context, oid objid.OID) (*keptCopy, error) {
	k, err := s.linkCopy(oid)
	if k == nil || err != nil {
		return nil, err
	}
	codec, size, err := parseFileEntry(k.entry)
	if err == nil {
		var got int64
		if got, err = s.measure(k.path, oid, codec); err == nil && got != size {
			err = fmt.Errorf("%d bytes, the index says %d", got, size)
		}
	}
	if err != nil { // a damaged copy: the put stores the body instead
		s.discard(k)
		return nil, ctx.Err()
	}
	return k, nil
}

// linkCopy links oid's object file under tmp, under oid's stripe lock.
func (s *Store) linkCopy(oid objid.OID) (*keptCopy, error) {
	mu := s.stripe(oid)
	mu.Lock()
	defer mu.Unlock()
	v, err := s.indexedBody(oid)
	switch {
	case errors.Is(err, leveldb.ErrNotFound):
		return nil, nil
	case errors.Is(err, errDamagedEntry):
		return nil, nil // the put stores the body over it
	case err != nil:
		return nil, s.indexError("put", oid, err)
	case v[0] != codecFileRaw && v[0] != codecFileZstd:
		return nil, nil
	}
	link := filepath.Join(s.paths.tmpDir(), fmt.Sprintf("kept-%s-%d", oid, s.kept.Add(1)))
	if err := os.Link(s.paths.objectPath(oid), link); err != nil {
		s.log.Debug("cannot link a stored copy; spooling the body", "oid", oid.String(), "err", err)
		return nil, nil
	}
	return &keptCopy{path: link, entry: v}, nil
}

// placeKept moves a kept copy back to oid's object path, once its bytes
// verify again (a quarantine may have taken the copy for damage the link
// shares). The caller holds oid's stripe lock.
func (s *Store) placeKept(k *keptCopy, oid objid.OID) error {
	codec, size, err := parseFileEntry(k.entry)
	if err != nil {
		return s.corrupt(oid, err)
	}
	if got, err := s.measure(k.path, oid, codec); err != nil || got != size {
		return fmt.Errorf("store: put %s: the stored copy changed while the body was read (%d bytes, %v); not stored, retry", oid, got, err)
	}
	if err := s.place(k.path, oid); err != nil {
		return fmt.Errorf("store: put %s: %w", oid, err)
	}
	k.placed = true
	return nil
}

// discard removes a kept copy's link unless it was placed.
func (s *Store) discard(k *keptCopy) {
	if k.placed {
		return
	}
	if err := removeIfPresent(k.path); err != nil {
		s.log.Error("cannot remove temp link", "path", k.path, "err", err)
	}
}

// verifyOnly checks the body of an object that is already stored, writing
// nothing: a put of bad bytes fails whether or not a copy exists.
func (s *Store) verifyOnly(ctx context.Context, oid objid.OID, r io.Reader, size int64) error {
	h := objid.NewHasher(oid.Algorithm())
	err := copyExactly(ctx, h, r, size)
	if err == nil {
		err = expectEOF(r)
	}
	if err == nil {
		err = objid.Check(oid, h)
	}
	if err != nil {
		return fmt.Errorf("store: put %s: %w", oid, err)
	}
	return nil
}

// spool writes the body into a new file under tmp, compressed if a sample of
// its start compresses below 90 %, and returns the file's path once the
// body is verified and (unless NoSync) fsync'd. On error nothing is left.
func (s *Store) spool(ctx context.Context, oid objid.OID, r io.Reader, size int64) (path string, codec byte, err error) {
	f, err := os.CreateTemp(s.paths.tmpDir(), "put-*")
	if err != nil {
		return "", 0, err
	}
	var enc *zstd.Encoder
	defer func() {
		if err != nil {
			if enc != nil {
				enc.Close()
			}
			f.Close()
			os.Remove(f.Name())
		}
	}()
	h := objid.NewHasher(oid.Algorithm())
	sample := make([]byte, min(size, sampleSize))
	if err = readFull(r, sample); err != nil {
		return "", 0, err
	}
	codec, w := codecFileRaw, io.Writer(f)
	if s.codecs.compressible(sample) {
		if enc, err = newStreamEncoder(f); err != nil {
			return "", 0, err
		}
		codec, w = codecFileZstd, enc
	}
	if err = s.fill(ctx, io.MultiWriter(h, w), sample, r, size); err != nil {
		return "", 0, err
	}
	if err = objid.Check(oid, h); err != nil {
		return "", 0, err
	}
	return f.Name(), codec, s.finish(f, enc)
}

// fill writes the sample and the rest of the body, exactly size bytes in
// all, to w.
func (s *Store) fill(ctx context.Context, w io.Writer, sample []byte, r io.Reader, size int64) error {
	if _, err := w.Write(sample); err != nil {
		return err
	}
	if err := copyExactly(ctx, w, r, size-int64(len(sample))); err != nil {
		return err
	}
	return expectEOF(r)
}

// finish ends the zstd stream, if any, and fsyncs and closes the file.
func (s *Store) finish(f *os.File, enc *zstd.Encoder) error {
	if enc != nil {
		if err := enc.Close(); err != nil {
			return err
		}
	}
	if !s.cfg.NoSync {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	return f.Close()
}

// place renames a spooled file to its object path and makes the rename
// durable. The caller holds oid's stripe lock.
func (s *Store) place(tmp string, oid objid.OID) error {
	if err := s.paths.ensureShard(oid, !s.cfg.NoSync); err != nil {
		return err
	}
	dst := s.paths.objectPath(oid)
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	if s.cfg.NoSync {
		return nil
	}
	return syncDir(filepath.Dir(dst))
}

// getLarge opens the file of a large object, verifies it in a full pass and
// returns a body positioned at its start.
func (s *Store) getLarge(ctx context.Context, oid objid.OID, entry []byte) (Object, error) {
	codec, size, err := parseFileEntry(entry)
	if err != nil {
		return Object{}, s.corrupt(oid, fmt.Errorf("index entry: %w", err))
	}
	f, err := os.Open(s.paths.objectPath(oid))
	if errors.Is(err, fs.ErrNotExist) {
		// A delete or removal writes the index, then removes the file: if
		// the entry changed meanwhile, read again (get); if not, the file
		// may be back (a re-put renamed it in before indexing it).
		if now, gerr := s.indexedBody(oid); errors.Is(gerr, leveldb.ErrNotFound) || gerr == nil && !bytes.Equal(now, entry) {
			return Object{}, errEntryChanged
		}
		f, err = os.Open(s.paths.objectPath(oid))
	}
	if errors.Is(err, fs.ErrNotExist) {
		return Object{}, s.corrupt(oid, errors.New("indexed but its file is missing"))
	}
	if err != nil {
		return Object{}, fmt.Errorf("store: get %s: %w", oid, err)
	}
	if err := s.verifyFile(ctx, oid, f, codec, size); err != nil {
		f.Close()
		return Object{}, err
	}
	b, err := s.newBody(oid, f, codec, size)
	if err != nil {
		f.Close()
		return Object{}, err
	}
	return Object{Size: size, Body: b}, nil
}

// verifyFile reads the whole object from f and checks its size and digest.
func (s *Store) verifyFile(ctx context.Context, oid objid.OID, f *os.File, codec byte, size int64) error {
	r, release, err := decodeFile(f, codec)
	if err != nil {
		return s.corrupt(oid, err)
	}
	defer release()
	h := objid.NewHasher(oid.Algorithm())
	err = copyExactly(ctx, h, r, size)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		err = expectEOF(r)
	}
	if err == nil {
		err = objid.Check(oid, h)
	}
	if err != nil {
		return s.corrupt(oid, fmt.Errorf("file: %w", err))
	}
	return nil
}

// decodeFile returns a reader of the object bytes of f and the function
// that releases its decoder.
func decodeFile(f *os.File, codec byte) (io.Reader, func(), error) {
	switch codec {
	case codecFileRaw:
		return f, func() {}, nil
	case codecFileZstd:
		dec, err := newStreamDecoder(f)
		if err != nil {
			return nil, nil, fmt.Errorf("zstd: %w", err)
		}
		return dec, dec.Close, nil
	}
	return nil, nil, fmt.Errorf("codec byte %#x is not a file codec", codec)
}
