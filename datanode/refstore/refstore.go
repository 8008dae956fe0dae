// Package refstore keeps one data node's copy of the ref tables of the
// partitions it replicates, in its own goleveldb database. It knows nothing
// of HTTP or etcd: it enforces the two local rules of the replication
// protocol in docs/refs.md and makes every change durable before it returns.
//
//  1. Fencing. Each partition has a floor: the highest epoch this replica
//     has been told about (by Begin, Apply or Install). Anything carrying an
//     older epoch is refused with refdata.ErrStaleEpoch. Raising the floor is
//     synced to disk, so a restart does not forget a fence.
//  2. Order. Each partition has a version (epoch, seq, txn) naming its
//     state, txn being refdata.TxnID of the last transaction's changes.
//     Apply accepts only the next sequence number, or the very same
//     transaction again (same epoch, seq and changes: a retry, which
//     changes nothing). A gap, or other changes at the version already
//     held, is refdata.ErrOutOfSync and the primary must catch this replica up
//     with a snapshot (Install) instead.
//
// Every mutation is one leveldb batch written with Sync, so after a crash a
// partition is at the version before or after a change, never in between.
//
// # Layout
//
//	f<pid:4>                  floor, int64 big-endian
//	v<pid:4>                  version: epoch int64, seq uint64, big-endian, then txn (text; absent in stores written before it)
//	r<pid:4><repo>\x00<name>  the OID the ref points at (text)
//
// Repository names cannot contain a NUL byte (refdata.ValidateRepo), so the key
// of one repository's refs is an unambiguous prefix.
package refstore

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/stratum-store/stratum/api/refdata"
)

// Store is one node's ref tables. It is safe for concurrent use: mutations
// are serialised by one mutex; reads go straight to leveldb, whose batches
// are atomic, so a reader sees a partition before or after a change.
type Store struct {
	id   string
	db   *leveldb.DB
	wo   *opt.WriteOptions
	mu   sync.Mutex // serialises mutations and guards meta
	meta map[int]meta
}

type meta struct {
	floor   int64
	version refdata.Version
}

// Options tune Open.
type Options struct {
	// NoSync skips fsync: for tests of logic only, never for a real node.
	NoSync bool
}

// Open opens or creates the ref store in dir and loads every partition's
// floor and version.
func Open(dir string, o Options) (*Store, error) {
	db, err := leveldb.OpenFile(dir, &opt.Options{})
	if err != nil {
		return nil, fmt.Errorf("refstore: open %s: %w", dir, err)
	}
	s := &Store{db: db, wo: &opt.WriteOptions{Sync: !o.NoSync}, meta: map[int]meta{}}
	if err := s.loadID(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.loadMeta(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// loadID reads the store's random identity, creating it with a new store.
// A wiped or replaced directory gets a new one, which is how the primary
// tells a member that lost its disk from one that is in sync.
func (s *Store) loadID() error {
	v, err := s.db.Get([]byte("id"), nil)
	if err == nil {
		s.id = string(v)
		return nil
	}
	if err != leveldb.ErrNotFound {
		return fmt.Errorf("refstore: read id: %w", err)
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	s.id = hex.EncodeToString(b[:])
	if err := s.db.Put([]byte("id"), []byte(s.id), &opt.WriteOptions{Sync: true}); err != nil {
		return fmt.Errorf("refstore: write id: %w", err)
	}
	return nil
}

// ID is the store's random identity, fixed when it was created.
func (s *Store) ID() string { return s.id }

func (s *Store) loadMeta() error {
	for _, tag := range []byte{'f', 'v'} {
		it := s.db.NewIterator(util.BytesPrefix([]byte{tag}), nil)
		for it.Next() {
			k, v := it.Key(), it.Value()
			if len(k) != 5 {
				continue
			}
			p := int(binary.BigEndian.Uint32(k[1:]))
			m := s.meta[p]
			switch {
			case tag == 'f' && len(v) == 8:
				m.floor = int64(binary.BigEndian.Uint64(v))
			case tag == 'v' && len(v) >= 16:
				m.version = refdata.Version{Epoch: int64(binary.BigEndian.Uint64(v)), Seq: binary.BigEndian.Uint64(v[8:16]), Txn: string(v[16:])}
			default:
				it.Release()
				return fmt.Errorf("refstore: bad meta record %q", k)
			}
			s.meta[p] = m
		}
		it.Release()
		if err := it.Error(); err != nil {
			return fmt.Errorf("refstore: load meta: %w", err)
		}
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Floor returns the highest epoch partition p has been fenced at.
func (s *Store) Floor(p int) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.meta[p].floor
}

// Version returns the version of partition p's state here.
func (s *Store) Version(p int) refdata.Version {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.meta[p].version
}

// Begin raises partition p's floor to epoch, so nothing older is accepted
// from now on, and returns the local version. An epoch below the floor is
// refused: a newer primary has already fenced this replica.
func (s *Store) Begin(p int, epoch int64) (refdata.Version, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.meta[p]
	if epoch < m.floor {
		return m.version, fmt.Errorf("%w: partition %d: epoch %d < floor %d", refdata.ErrStaleEpoch, p, epoch, m.floor)
	}
	if epoch > m.floor {
		b := new(leveldb.Batch)
		b.Put(floorKey(p), be64(uint64(epoch)))
		if err := s.db.Write(b, s.wo); err != nil {
			return m.version, fmt.Errorf("refstore: begin: %w", err)
		}
		m.floor = epoch
		s.meta[p] = m
	}
	return m.version, nil
}

// Apply makes one replicated transaction durable: the changes, the new
// version (epoch, seq, refdata.TxnID(changes)) and the raised floor, in one
// synced batch. The same transaction again is a retry and changes nothing;
// other changes at the version held are refused with refdata.ErrOutOfSync.
func (s *Store) Apply(p int, epoch int64, seq uint64, changes []refdata.Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.meta[p]
	v := refdata.Version{Epoch: epoch, Seq: seq, Txn: refdata.TxnID(changes)}
	switch {
	case epoch < m.floor:
		return fmt.Errorf("%w: partition %d: epoch %d < floor %d", refdata.ErrStaleEpoch, p, epoch, m.floor)
	case m.version == v:
		return nil // a retry of what is already here
	case m.version.Epoch == epoch && m.version.Seq == seq:
		return fmt.Errorf("%w: partition %d: version (%d, %d) holds transaction %.12s, not %.12s", refdata.ErrOutOfSync, p, epoch, seq, m.version.Txn, v.Txn)
	case seq != m.version.Seq+1:
		return fmt.Errorf("%w: partition %d: at %d, got seq %d", refdata.ErrOutOfSync, p, m.version.Seq, seq)
	}
	b := new(leveldb.Batch)
	for _, c := range changes {
		if refdata.IsZeroOID(c.OID) || c.OID == "" {
			b.Delete(refKey(p, c.Repo, c.Name))
		} else {
			b.Put(refKey(p, c.Repo, c.Name), []byte(c.OID))
		}
	}
	next := meta{floor: max(m.floor, epoch), version: v}
	putMeta(b, p, next)
	if err := s.db.Write(b, s.wo); err != nil {
		return fmt.Errorf("refstore: apply: %w", err)
	}
	s.meta[p] = next
	return nil
}

// Snapshot returns partition p's whole state and its version.
// The version and the leveldb snapshot are taken together under the mutex;
// the iteration runs outside it.
func (s *Store) Snapshot(p int) (refdata.Snapshot, error) {
	s.mu.Lock()
	snap := refdata.Snapshot{Partition: p, Version: s.meta[p].version, Refs: []refdata.Change{}}
	ls, err := s.db.GetSnapshot()
	s.mu.Unlock()
	if err != nil {
		return snap, fmt.Errorf("refstore: snapshot: %w", err)
	}
	defer ls.Release()
	it := ls.NewIterator(util.BytesPrefix(partPrefix(p)), nil)
	defer it.Release()
	for it.Next() {
		repo, name, ok := splitRefKey(it.Key())
		if !ok {
			return snap, fmt.Errorf("refstore: bad ref key %q", it.Key())
		}
		snap.Refs = append(snap.Refs, refdata.Change{Repo: repo, Name: name, OID: string(it.Value())})
	}
	return snap, it.Error()
}

// Install replaces partition p's state with snap in one synced batch,
// fenced by epoch: a primary catching this replica up, or a new primary
// adopting the most advanced state during its takeover.
func (s *Store) Install(p int, epoch int64, snap refdata.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.meta[p]
	if epoch < m.floor {
		return fmt.Errorf("%w: partition %d: epoch %d < floor %d", refdata.ErrStaleEpoch, p, epoch, m.floor)
	}
	b := new(leveldb.Batch)
	it := s.db.NewIterator(util.BytesPrefix(partPrefix(p)), nil)
	for it.Next() {
		b.Delete(append([]byte(nil), it.Key()...))
	}
	it.Release()
	if err := it.Error(); err != nil {
		return fmt.Errorf("refstore: install: %w", err)
	}
	for _, c := range snap.Refs {
		if !refdata.IsZeroOID(c.OID) && c.OID != "" {
			b.Put(refKey(p, c.Repo, c.Name), []byte(c.OID))
		}
	}
	next := meta{floor: max(m.floor, epoch), version: snap.Version}
	putMeta(b, p, next)
	if err := s.db.Write(b, s.wo); err != nil {
		return fmt.Errorf("refstore: install: %w", err)
	}
	s.meta[p] = next
	return nil
}

// Get reads one ref.
func (s *Store) Get(p int, repo, name string) (oid string, ok bool, err error) {
	v, err := s.db.Get(refKey(p, repo, name), nil)
	if err == leveldb.ErrNotFound {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("refstore: get: %w", err)
	}
	return string(v), true, nil
}

// List returns up to limit refs of repo whose names start with prefix and
// sort after after, from one consistent leveldb snapshot, and the name to
// continue from when there are more.
func (s *Store) List(p int, repo, prefix, after string, limit int) (refs []refdata.Ref, next string, err error) {
	snap, err := s.db.GetSnapshot()
	if err != nil {
		return nil, "", fmt.Errorf("refstore: list: %w", err)
	}
	defer snap.Release()
	rng := util.BytesPrefix(refKey(p, repo, prefix))
	if after != "" && after >= prefix {
		rng.Start = append(refKey(p, repo, after), 0)
	}
	it := snap.NewIterator(rng, nil)
	defer it.Release()
	refs = []refdata.Ref{}
	for it.Next() {
		_, name, _ := splitRefKey(it.Key())
		if len(refs) == limit {
			return refs, refs[len(refs)-1].Name, it.Error()
		}
		refs = append(refs, refdata.Ref{Name: name, OID: string(it.Value())})
	}
	return refs, "", it.Error()
}

// Partitions returns the partitions this store has any state for.
func (s *Store) Partitions() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]int, 0, len(s.meta))
	for p := range s.meta {
		out = append(out, p)
	}
	return out
}

func floorKey(p int) []byte   { return append([]byte{'f'}, be32(uint32(p))...) }
func versionKey(p int) []byte { return append([]byte{'v'}, be32(uint32(p))...) }
func partPrefix(p int) []byte { return append([]byte{'r'}, be32(uint32(p))...) }

func refKey(p int, repo, name string) []byte {
	k := make([]byte, 0, 5+len(repo)+1+len(name))
	k = append(k, partPrefix(p)...)
	k = append(k, repo...)
	k = append(k, 0)
	return append(k, name...)
}

func splitRefKey(k []byte) (repo, name string, ok bool) {
	if len(k) < 6 {
		return "", "", false
	}
	for i := 5; i < len(k); i++ {
		if k[i] == 0 {
			return string(k[5:i]), string(k[i+1:]), true
		}
	}
	return "", "", false
}

func putMeta(b *leveldb.Batch, p int, m meta) {
	b.Put(floorKey(p), be64(uint64(m.floor)))
	v := make([]byte, 16, 16+len(m.version.Txn))
	binary.BigEndian.PutUint64(v, uint64(m.version.Epoch))
	binary.BigEndian.PutUint64(v[8:], m.version.Seq)
	b.Put(versionKey(p), append(v, m.version.Txn...))
}

func be32(x uint32) []byte { b := make([]byte, 4); binary.BigEndian.PutUint32(b, x); return b }
func be64(x uint64) []byte { b := make([]byte, 8); binary.BigEndian.PutUint64(b, x); return b }
