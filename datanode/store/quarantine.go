package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/syndtr/goleveldb/leveldb"

	"github.com/stratum-store/stratum/api/objid"
)

// Quarantine takes a damaged copy out of service: its index entries are
// deleted (so the object reads as missing here and a put stores it again)
// and a large object's file is moved to Dir/quarantine/ for inspection
// rather than deleted. It refuses an intact copy.
func (s *Store) Quarantine(ctx context.Context, oid objid.OID) error {
	unlock, err := s.lockObject(ctx, oid)
	if err != nil {
		return err
	}
	defer s.maybeCheckpoint() // after unlock: a checkpoint past the marker retires it
	defer unlock()
	_, size, _, err := s.indexed(oid)
	if err != nil && !errors.Is(err, errDamagedEntry) {
		return s.indexError("quarantine", oid, err)
	}
	if s.intact(ctx, oid) {
		return fmt.Errorf("store: quarantine %s: the copy is intact", oid)
	}
	if err := s.moveToQuarantine(oid); err != nil {
		return err
	}
	b := new(leveldb.Batch)
	dropped := s.dropEntries(b, oid)
	marked := s.markRemoved(b, oid)
	if err := s.writeIndex(b); err != nil {
		return fmt.Errorf("store: quarantine %s: %w", oid, err)
	}
	dropped()
	marked()
	s.objects.Add(-1)
	s.bytes.Add(-size) // 0 for a damaged entry: its size is unknown
	s.log.Warn("damaged copy quarantined", "oid", oid)
	return nil
}

func (s *Store) moveToQuarantine(oid objid.OID) error {
	path := s.paths.objectPath(oid)
	if _, err := os.Stat(path); err != nil {
		return nil // a small object, or the file is already gone
	}
	dir := filepath.Join(s.paths.root, "quarantine")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("store: quarantine %s: %w", oid, err)
	}
	dst := filepath.Join(dir, oid.String()+"."+strconv.FormatInt(time.Now().UnixNano(), 10))
	if err := os.Rename(path, dst); err != nil {
		return fmt.Errorf("store: quarantine %s: %w", oid, err)
	}
	return nil
}
