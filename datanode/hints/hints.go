package hints

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/stratum-store/stratum/api/objid"
)

// Options bound a Queue.
type Options struct {
	// MaxPerPeer is the most hints kept for one peer; a hint beyond it is
	// dropped and counted. If 0, it defaults to 100000.
	MaxPerPeer int
	// MaxAge is how long a hint is kept; Expire drops older ones. If 0, it
	// defaults to 3h.
	MaxAge time.Duration
	// NoSync turns off the fsync of Add (tests, or a node run with --no-sync).
	NoSync bool
}

// Hint is one pending handoff: Peer should hold OID.
type Hint struct {
	Peer    string
	OID     objid.OID
	Created time.Time
}

// Queue is a durable hint queue in its own goleveldb database. Its mutex
// serialises mutations and guards the per-peer counts; it is held across the
// one leveldb write of a mutation (so a count never disagrees with the
// database) and never with another lock.
//
// Keys: "o/<peer>\x00<oid>" -> created (8 bytes, unix nanoseconds), the
// index that makes Add idempotent, and "t/<peer>\x00<created><oid>" -> "",
// the per-peer order, oldest first.
type Queue struct {
	opts    Options
	db      *leveldb.DB
	mu      sync.Mutex
	counts  map[string]int
	dropped atomic.Int64
	expired atomic.Int64
}

// Open opens (creating if needed) the queue in dir.
func Open(dir string, opts Options) (*Queue, error) {
	if opts.MaxPerPeer == 0 {
		opts.MaxPerPeer = 100000
	}
	if opts.MaxAge == 0 {
		opts.MaxAge = 3 * time.Hour
	}
	if opts.MaxPerPeer < 0 || opts.MaxAge < 0 {
		return nil, fmt.Errorf("hints: Options.MaxPerPeer and MaxAge must be >= 0, got %d and %s", opts.MaxPerPeer, opts.MaxAge)
	}
	db, err := leveldb.OpenFile(dir, &opt.Options{})
	if err != nil {
		return nil, fmt.Errorf("hints: open %s: %w", dir, err)
	}
	q := &Queue{opts: opts, db: db, counts: map[string]int{}}
	it := db.NewIterator(util.BytesPrefix([]byte("o/")), nil)
	for it.Next() {
		peer, _, ok := splitIndexKey(it.Key())
		if ok {
			q.counts[peer]++
		}
	}
	it.Release()
	if err := it.Error(); err != nil {
		db.Close()
		return nil, fmt.Errorf("hints: load %s: %w", dir, err)
	}
	return q, nil
}

// Close closes the database.
func (q *Queue) Close() error { return q.db.Close() }

func indexKey(peer string, oid objid.OID) []byte {
	return []byte("o/" + peer + "\x00" + oid.String())
}

func orderPrefix(peer string) []byte { return []byte("t/" + peer + "\x00") }

func orderKey(peer string, created int64, oid objid.OID) []byte {
	k := orderPrefix(peer)
	k = binary.BigEndian.AppendUint64(k, uint64(created))
	return append(k, oid.String()...)
}

func splitIndexKey(k []byte) (peer, oid string, ok bool) {
	i := bytes.IndexByte(k, 0)
	if i < 2 {
		return "", "", false
	}
	return string(k[2:i]), string(k[i+1:]), true
}

// Add records that peer should hold oid. It is durable when it returns
// (unless NoSync). A hint already queued is kept as it is (its age is not
// reset); a hint for a peer that has MaxPerPeer is dropped and counted.
func (q *Queue) Add(peer string, oid objid.OID) error {
	if peer == "" || bytes.IndexByte([]byte(peer), 0) >= 0 {
		return fmt.Errorf("hints: bad peer ID %q", peer)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	ik := indexKey(peer, oid)
	if ok, err := q.db.Has(ik, nil); err != nil || ok {
		return err
	}
	if q.counts[peer] >= q.opts.MaxPerPeer {
		q.dropped.Add(1)
		return nil
	}
	now := time.Now().UnixNano()
	b := new(leveldb.Batch)
	b.Put(ik, binary.BigEndian.AppendUint64(nil, uint64(now)))
	b.Put(orderKey(peer, now, oid), nil)
	if err := q.db.Write(b, &opt.WriteOptions{Sync: !q.opts.NoSync}); err != nil {
		return fmt.Errorf("hints: add: %w", err)
	}
	q.counts[peer]++
	return nil
}

// Peers lists the peers with pending hints, sorted.
func (q *Queue) Peers() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]string, 0, len(q.counts))
	for p, c := range q.counts {
		if c > 0 {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// List returns up to limit of peer's hints, oldest first.
func (q *Queue) List(peer string, limit int) []Hint {
	var out []Hint
	it := q.db.NewIterator(util.BytesPrefix(orderPrefix(peer)), nil)
	defer it.Release()
	for len(out) < limit && it.Next() {
		if h, ok := decodeOrderKey(peer, it.Key()); ok {
			out = append(out, h)
		}
	}
	return out
}

func decodeOrderKey(peer string, k []byte) (Hint, bool) {
	rest := k[len(orderPrefix(peer)):]
	if len(rest) < 8 {
		return Hint{}, false
	}
	oid, err := objid.Parse(string(rest[8:]))
	if err != nil {
		return Hint{}, false
	}
	return Hint{Peer: peer, OID: oid, Created: time.Unix(0, int64(binary.BigEndian.Uint64(rest[:8])))}, true
}

// Remove deletes the hint (peer, oid) if it is queued.
func (q *Queue) Remove(peer string, oid objid.OID) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	ik := indexKey(peer, oid)
	v, err := q.db.Get(ik, nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil
	}
	if err != nil || len(v) != 8 {
		return fmt.Errorf("hints: remove: %v (value %d bytes)", err, len(v))
	}
	b := new(leveldb.Batch)
	b.Delete(ik)
	b.Delete(orderKey(peer, int64(binary.BigEndian.Uint64(v)), oid))
	if err := q.db.Write(b, nil); err != nil {
		return fmt.Errorf("hints: remove: %w", err)
	}
	q.counts[peer]--
	return nil
}

// Expire drops every hint created before now - MaxAge and returns how many.
func (q *Queue) Expire(now time.Time) int {
	cutoff := now.Add(-q.opts.MaxAge)
	n := 0
	for _, peer := range q.Peers() {
		n += q.expirePeer(peer, cutoff)
	}
	q.expired.Add(int64(n))
	return n
}

// expirePeer removes peer's hints created before cutoff, oldest first.
func (q *Queue) expirePeer(peer string, cutoff time.Time) int {
	n := 0
	for {
		list := q.List(peer, 1024)
		for _, h := range list {
			if !h.Created.Before(cutoff) {
				return n
			}
			if q.Remove(h.Peer, h.OID) != nil {
				return n
			}
			n++
		}
		if len(list) < 1024 {
			return n
		}
	}
}

// Pending is the number of queued hints.
func (q *Queue) Pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, c := range q.counts {
		n += c
	}
	return n
}

// PendingFor is the number of hints queued for peer.
func (q *Queue) PendingFor(peer string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.counts[peer]
}

// Dropped counts the hints refused since Open because their peer had
// MaxPerPeer; Expired counts those Expire dropped since Open.
func (q *Queue) Dropped() int64 { return q.dropped.Load() }

// Expired: see Dropped.
func (q *Queue) Expired() int64 { return q.expired.Load() }
