package store

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/stratum-store/stratum/api/objid"
)

// The model of TestStoreModel: what one OID must read as after a sequence
// of operations (tombstone.go has the rules), as a pure step function,
// and a checker that finds an order of concurrent operations that
// explains both their results and the state they left.

// mstate is what the model says one OID is.
type mstate uint8

const (
	mAbsent  mstate = iota // no copy, no tombstone: ErrNotFound, not ErrDeleted
	mPresent               // an intact copy: Get returns the bytes
	mDamaged               // a copy whose bytes were damaged on disk: Get is ErrCorrupt
	mDeleted               // a tombstone: ErrDeleted
)

func (s mstate) String() string { return [...]string{"absent", "present", "damaged", "deleted"}[s] }

// mobj is the model of one OID: its state, the stamp of its copy or
// tombstone, and a tombstone's caller time.
type mobj struct {
	st    mstate
	stamp objid.Stamp
	at    int64
}

func (m mobj) String() string {
	switch m.st {
	case mAbsent:
		return "absent"
	case mDeleted:
		return fmt.Sprintf("deleted(stamp %d, at %d)", m.stamp, m.at)
	}
	return fmt.Sprintf("%s(stamp %d)", m.st, m.stamp)
}

type opKind uint8

const (
	kPut        opKind = iota // one put of any kind, small or large
	kBatch                    // this OID's items of one PutBatch, in order
	kDelete                   // Delete(stamp, at)
	kRemove                   // Remove (shed)
	kExpire                   // ExpireTombstones(before = at)
	kGet                      // Get
	kQuarantine               // Quarantine
)

// mitem is one put of an OID and its outcome. fail, if set, is the error
// the item must get whatever the state (bad bytes, too large for a batch).
type mitem struct {
	stamp   objid.Stamp
	fail    error
	created bool
	err     error
}

// mop is one operation on one OID with its recorded outcome; g is the
// goroutine that ran it.
type mop struct {
	kind    opKind
	g       int
	items   []mitem
	stamp   objid.Stamp
	at      int64
	deleted bool
	err     error
	data    []byte
}

func (o *mop) String() string {
	switch o.kind {
	case kPut, kBatch:
		var parts []string
		for _, it := range o.items {
			parts = append(parts, fmt.Sprintf("stamp %d (fail %v) -> created %t, err %v", it.stamp, it.fail, it.created, it.err))
		}
		return fmt.Sprintf("g%d %s[%s]", o.g, map[opKind]string{kPut: "put", kBatch: "batch"}[o.kind], strings.Join(parts, "; "))
	case kDelete:
		return fmt.Sprintf("g%d delete(stamp %d, at %d) -> deleted %t, err %v", o.g, o.stamp, o.at, o.deleted, o.err)
	case kExpire:
		return fmt.Sprintf("g%d expire(before %d)", o.g, o.at)
	case kGet:
		return fmt.Sprintf("g%d get -> %d bytes, err %v", o.g, len(o.data), o.err)
	case kRemove:
		return fmt.Sprintf("g%d remove -> err %v", o.g, o.err)
	}
	return fmt.Sprintf("g%d quarantine -> err %v", o.g, o.err)
}

// step applies o to m: the next state, or what in o's outcome the model
// forbids. data is the object's bytes.
func step(m mobj, o *mop, data []byte) (mobj, string) {
	switch o.kind {
	case kPut, kBatch:
		for _, it := range o.items {
			var bad string
			if m, bad = putStep(m, it); bad != "" {
				return m, bad
			}
		}
		return m, ""
	case kDelete:
		return deleteStep(m, o)
	case kRemove:
		if o.err != nil {
			return m, fmt.Sprintf("remove over %v: %v; want success", m, o.err)
		}
		if m.st == mPresent || m.st == mDamaged {
			return mobj{}, ""
		}
		return m, ""
	case kExpire:
		if m.st == mDeleted && m.at < o.at {
			return mobj{}, ""
		}
		return m, ""
	case kGet:
		return m, getProblem(m, o, data)
	}
	return quarantineStep(m, o)
}

func putStep(m mobj, it mitem) (mobj, string) {
	want := func(created bool, kind error, next mobj) (mobj, string) {
		ok := it.err == nil && it.created == created
		if kind != nil {
			ok = errors.Is(it.err, kind)
			if st, has := StampOf(it.err); kind == ErrSuperseded && (!has || st != m.stamp) {
				ok = false
			}
		}
		if !ok {
			return m, fmt.Sprintf("put stamp %d over %v: created %t, err %v; want created %t, err %v", it.stamp, m, it.created, it.err, created, kind)
		}
		return next, ""
	}
	switch {
	case it.fail != nil:
		return want(false, it.fail, m)
	case m.st == mAbsent, m.st == mDamaged:
		return want(true, nil, mobj{st: mPresent, stamp: it.stamp})
	case m.st == mPresent:
		return want(false, nil, mobj{st: mPresent, stamp: max(m.stamp, it.stamp)})
	case it.stamp > m.stamp: // over a tombstone
		return want(true, nil, mobj{st: mPresent, stamp: it.stamp})
	}
	return want(false, ErrSuperseded, m)
}

func deleteStep(m mobj, o *mop) (mobj, string) {
	want := func(deleted bool, kind error, next mobj) (mobj, string) {
		ok := o.deleted == deleted && (kind == nil && o.err == nil || kind != nil && errors.Is(o.err, kind))
		if !ok {
			return m, fmt.Sprintf("delete(stamp %d, at %d) over %v: deleted %t, err %v; want deleted %t, err %v", o.stamp, o.at, m, o.deleted, o.err, deleted, kind)
		}
		return next, ""
	}
	tomb := mobj{st: mDeleted, stamp: o.stamp, at: o.at}
	switch {
	case m.st == mAbsent:
		return want(false, nil, tomb)
	case m.st == mDeleted && m.stamp >= o.stamp:
		return want(false, nil, m)
	case m.st == mDeleted:
		return want(false, nil, tomb)
	case m.stamp >= o.stamp:
		return want(false, ErrSuperseded, m)
	}
	return want(true, nil, tomb)
}

func getProblem(m mobj, o *mop, data []byte) string {
	ok := false
	switch m.st {
	case mPresent:
		ok = o.err == nil && bytes.Equal(o.data, data)
	case mDamaged:
		ok = errors.Is(o.err, ErrCorrupt)
	case mDeleted:
		st, has := StampOf(o.err)
		ok = errors.Is(o.err, ErrDeleted) && has && st == m.stamp
	case mAbsent:
		ok = errors.Is(o.err, ErrNotFound) && !errors.Is(o.err, ErrDeleted)
	}
	if ok {
		return ""
	}
	return fmt.Sprintf("get of %v: %d bytes (equal %t), err %v", m, len(o.data), bytes.Equal(o.data, data), o.err)
}

func quarantineStep(m mobj, o *mop) (mobj, string) {
	switch {
	case m.st == mDamaged && o.err == nil:
		return mobj{}, ""
	case m.st == mPresent && o.err != nil && !errors.Is(o.err, ErrNotFound):
		return m, "" // refused: the copy is intact
	case (m.st == mAbsent || m.st == mDeleted) && errors.Is(o.err, ErrNotFound):
		return m, ""
	}
	return m, fmt.Sprintf("quarantine of %v: err %v", m, o.err)
}

// maxG bounds the goroutines of one concurrent burst.
const maxG = 8

// linearize reports whether some interleaving of seqs (each goroutine's
// operations on one OID, in program order) applied to start explains
// every recorded outcome and ends in final. Operations on one OID are
// atomic under its stripe lock, so one must exist.
func linearize(start mobj, seqs [][]*mop, data []byte, final mobj) bool {
	type key struct {
		pos [maxG]uint8
		m   mobj
	}
	seen := map[key]bool{}
	var walk func(pos [maxG]uint8, m mobj) bool
	walk = func(pos [maxG]uint8, m mobj) bool {
		k := key{pos, m}
		if seen[k] {
			return false
		}
		seen[k] = true
		done := true
		for g, seq := range seqs {
			if int(pos[g]) == len(seq) {
				continue
			}
			done = false
			next, bad := step(m, seq[pos[g]], data)
			if bad != "" {
				continue
			}
			p := pos
			p[g]++
			if walk(p, next) {
				return true
			}
		}
		return done && m == final
	}
	return walk([maxG]uint8{}, start)
}
