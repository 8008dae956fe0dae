package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/stratum-store/stratum/api/objid"
)

// layout names the store's directories. Every object path is built from
// objid.OID.String(), which is validated lowercase hex: no caller-supplied
// text ever reaches a path.
type layout struct{ root string }

func (l layout) dbDir() string      { return filepath.Join(l.root, "db") }
func (l layout) tmpDir() string     { return filepath.Join(l.root, "tmp") }
func (l layout) objectsDir() string { return filepath.Join(l.root, "objects") }
func (l layout) vlogDir() string    { return filepath.Join(l.root, "vlog") }

// shard is the first byte of the OID in hex: the object's directory and
// its lock stripe.
func shard(oid objid.OID) string { return oid.String()[:2] }

func (l layout) objectPath(oid objid.OID) string {
	return filepath.Join(l.objectsDir(), shard(oid), oid.String())
}

// prepare creates the directories and empties tmp: whatever is there is a
// put that never returned.
func (l layout) prepare(sync bool) (removed int, err error) {
	for _, dir := range []string{l.root, l.objectsDir(), l.tmpDir()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return 0, fmt.Errorf("store: %w", err)
		}
	}
	if removed, err = emptyDir(l.tmpDir()); err != nil {
		return 0, err
	}
	if !sync {
		return removed, nil
	}
	for _, dir := range []string{l.tmpDir(), l.objectsDir(), l.root} {
		if err := syncDir(dir); err != nil {
			return 0, err
		}
	}
	return removed, nil
}

// ensureShard creates oid's shard directory if it is missing, durably when
// sync is set. Callers hold oid's stripe lock, so no other put can use the
// directory before its creation is durable.
func (l layout) ensureShard(oid objid.OID, sync bool) error {
	err := os.Mkdir(filepath.Dir(l.objectPath(oid)), 0o755)
	switch {
	case errors.Is(err, fs.ErrExist):
		return nil
	case err != nil:
		return err
	case sync:
		return syncDir(l.objectsDir())
	}
	return nil
}

// emptyDir removes everything inside dir.
func emptyDir(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return 0, fmt.Errorf("store: %w", err)
		}
	}
	return len(entries), nil
}

// syncDir makes the entries of dir (creations, renames) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("store: sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("store: sync dir %s: %w", dir, err)
	}
	return nil
}

// removeIfPresent removes path; a missing file is not an error.
func removeIfPresent(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
