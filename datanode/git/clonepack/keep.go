package clonepack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/git/backend"
)

// Spool is the file the pack reader copies a pushed pack into while it
// verifies it (pack.Config.Spool): the pack's bytes without their
// trailer. Store completes and keeps it; Close removes it either way.
type Spool struct {
	f *os.File
}

// NewSpool creates an empty spool in dir ("" for os.TempDir()).
func NewSpool(dir string) (*Spool, error) {
	f, err := os.CreateTemp(dir, "stratum-clonepack-*")
	if err != nil {
		return nil, fmt.Errorf("clonepack: spool: %w", err)
	}
	return &Spool{f: f}, nil
}

// File is the spool, for pack.Config.Spool.
func (s *Spool) File() *os.File { return s.f }

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

// Store puts the spooled pack at quorum, if it is self-contained: it
// appends the trailer (p.Checksum) to the spool, hashes the whole with
// SHA-256 and stores it under that ID. It returns the pack's Manifest for
// refs (the push's new ref values: name -> ID), or an error wrapping
// ErrUnusable when the pack is not to be kept.
func (s *Spool) Store(ctx context.Context, b backend.Backend, p Pack, refs map[string]string) (Manifest, error) {
	switch {
	case !p.SelfContained:
		return Manifest{}, fmt.Errorf("%w: the pack needs objects it does not hold", ErrUnusable)
	case len(refs) == 0:
		return Manifest{}, fmt.Errorf("%w: the push sets no ref", ErrUnusable)
	}
	body, err := s.f.Seek(0, io.SeekEnd)
	if err != nil || body < 12 {
		return Manifest{}, fmt.Errorf("%w: spool of %d bytes: %v", ErrUnusable, body, err)
	}
	if _, err := s.f.WriteAt(p.Checksum[:], body); err != nil {
		return Manifest{}, fmt.Errorf("%w: spool: %v", ErrUnusable, err)
	}
	size := body + int64(len(p.Checksum))
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(s.f, 0, size)); err != nil {
		return Manifest{}, fmt.Errorf("%w: spool: %v", ErrUnusable, err)
	}
	oid, err := api.ParseOID(hex.EncodeToString(h.Sum(nil)))
	if err != nil {
		return Manifest{}, err
	}
	if err := b.PutStream(ctx, oid, io.NewSectionReader(s.f, 0, size), size); err != nil {
		return Manifest{}, fmt.Errorf("clonepack: storing the pack: %w", err)
	}
	return Manifest{Version: 1, Pack: oid.String(), Size: size, Objects: p.Objects, OfsDeltas: p.OfsDeltas, Refs: refs}, nil
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
