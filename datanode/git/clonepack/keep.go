package clonepack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/git/backend"
)

// Spool is a copy of a pushed pack on local disk, made while the push is
// read, with its SHA-256 and size. Its bytes are kept only if the push
// asks for it (Keep); Close removes the file either way.
type Spool struct {
	f    *os.File
	h    hash.Hash
	size int64
	err  error // the first write error: the spool is then unusable
}

// NewSpool creates an empty spool in dir ("" for os.TempDir()).
func NewSpool(dir string) (*Spool, error) {
	f, err := os.CreateTemp(dir, "stratum-clonepack-*")
	if err != nil {
		return nil, fmt.Errorf("clonepack: spool: %w", err)
	}
	return &Spool{f: f, h: sha256.New()}, nil
}

// Tee returns a reader that reads r and copies what it reads to the spool.
// A spool write error does not fail the read: the pack is then not kept.
func (s *Spool) Tee(r io.Reader) io.Reader { return teeReader{r: r, s: s} }

type teeReader struct {
	r io.Reader
	s *Spool
}

func (t teeReader) Read(p []byte) (int, error) {
	k, err := t.r.Read(p)
	if k > 0 && t.s.err == nil {
		if _, werr := t.s.f.Write(p[:k]); werr != nil {
			t.s.err = werr
		}
		t.s.h.Write(p[:k])
		t.s.size += int64(k)
	}
	return k, err
}

// Close removes the spool's file.
func (s *Spool) Close() error {
	s.f.Close()
	return os.Remove(s.f.Name())
}

// Pack is what the push learnt of the pack it read into the spool.
type Pack struct {
	Objects   int
	OfsDeltas bool
	// SelfContained: no thin-pack base was taken from the store and no
	// object named by the pack's objects is missing from it.
	SelfContained bool
	// Checksum is the pack's trailing SHA-1, as the reader checked it.
	Checksum [20]byte
}

// Store puts the spooled pack at quorum, if it is self-contained and the
// spool holds exactly it, and returns its Manifest for refs (the push's
// new ref values: name -> ID). It errors, wrapping ErrUnusable, when the
// pack is not to be kept.
func (s *Spool) Store(ctx context.Context, b backend.Backend, p Pack, refs map[string]string) (Manifest, error) {
	switch {
	case s.err != nil:
		return Manifest{}, fmt.Errorf("%w: spool: %v", ErrUnusable, s.err)
	case !p.SelfContained:
		return Manifest{}, fmt.Errorf("%w: the pack needs objects it does not hold", ErrUnusable)
	case len(refs) == 0:
		return Manifest{}, fmt.Errorf("%w: the push sets no ref", ErrUnusable)
	case s.size < 32:
		return Manifest{}, fmt.Errorf("%w: %d bytes", ErrUnusable, s.size)
	}
	var trailer [20]byte
	if _, err := s.f.ReadAt(trailer[:], s.size-20); err != nil || trailer != p.Checksum {
		return Manifest{}, fmt.Errorf("%w: the spool does not end with the pack's checksum", ErrUnusable)
	}
	oid, err := api.ParseOID(hex.EncodeToString(s.h.Sum(nil)))
	if err != nil {
		return Manifest{}, err
	}
	if err := b.PutStream(ctx, oid, io.NewSectionReader(s.f, 0, s.size), s.size); err != nil {
		return Manifest{}, fmt.Errorf("clonepack: storing the pack: %w", err)
	}
	return Manifest{Version: 1, Pack: oid.String(), Size: s.size, Objects: p.Objects, OfsDeltas: p.OfsDeltas, Refs: refs}, nil
}

// Publish stores m and points Ref at it, in a transaction of its own from
// old (Ref's value before the push, "" if none). A concurrent push that
// moved Ref first wins: Publish then fails with a conflict, and the clones
// use the other's pack if it matches their refs.
func Publish(ctx context.Context, b backend.Backend, repo string, m Manifest, old string) error {
	data, oid, err := m.Encode()
	if err != nil {
		return err
	}
	if err := b.Put(ctx, []backend.Object{{OID: oid, Data: data}}); err != nil {
		return fmt.Errorf("clonepack: storing the manifest: %w", err)
	}
	if old == "" {
		old = api.ZeroOID
	}
	if err := b.Update(ctx, repo, []backend.Update{{Name: Ref, Old: old, New: oid.String()}}); err != nil {
		return fmt.Errorf("clonepack: setting %s: %w", Ref, err)
	}
	return nil
}
