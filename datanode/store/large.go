package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"

	"github.com/stratum-store/stratum/api"
)

// putLarge streams an object above LargeThreshold into a temp file while
// hashing it, verifies it, makes it durable and commits it.
func (s *Store) putLarge(ctx context.Context, oid api.OID, r io.Reader, size int64, stamp api.Stamp) (bool, error) {
	present, err := s.has(oid)
	if err != nil {
		return false, err
	}
	if present && s.intact(ctx, oid) {
		if err := s.verifyOnly(ctx, oid, r, size); err != nil {
			return false, err
		}
		return s.commit(oid, size, stamp, nil, nil) // raises the stamp, stores nothing
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

// verifyOnly checks the body of an object that is already stored, writing
// nothing: a put of bad bytes fails whether or not a copy exists.
func (s *Store) verifyOnly(ctx context.Context, oid api.OID, r io.Reader, size int64) error {
	h := api.NewHasher(oid.Algorithm())
	err := copyExactly(ctx, h, r, size)
	if err == nil {
		err = expectEOF(r)
	}
	if err == nil {
		err = api.Check(oid, h)
	}
	if err != nil {
		return fmt.Errorf("store: put %s: %w", oid, err)
	}
	return nil
}

// spool writes the body into a new file under tmp, compressed if a sample of
// its start compresses below 90 %, and returns the file's path once the
// body is verified and (unless NoSync) fsync'd. On error nothing is left.
func (s *Store) spool(ctx context.Context, oid api.OID, r io.Reader, size int64) (path string, codec byte, err error) {
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
	h := api.NewHasher(oid.Algorithm())
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
	if err = api.Check(oid, h); err != nil {
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
func (s *Store) place(tmp string, oid api.OID) error {
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
func (s *Store) getLarge(ctx context.Context, oid api.OID, entry []byte) (Object, error) {
	codec, size, err := parseFileEntry(entry)
	if err != nil {
		return Object{}, s.corrupt(oid, fmt.Errorf("index entry: %w", err))
	}
	f, err := os.Open(s.paths.objectPath(oid))
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
func (s *Store) verifyFile(ctx context.Context, oid api.OID, f *os.File, codec byte, size int64) error {
	r, release, err := decodeFile(f, codec)
	if err != nil {
		return s.corrupt(oid, err)
	}
	defer release()
	h := api.NewHasher(oid.Algorithm())
	err = copyExactly(ctx, h, r, size)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		err = expectEOF(r)
	}
	if err == nil {
		err = api.Check(oid, h)
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
