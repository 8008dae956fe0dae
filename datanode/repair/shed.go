package repair

import (
	"context"
	"errors"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/clusterview"
	"github.com/stratum-store/stratum/datanode/store"
	"github.com/stratum-store/stratum/internal/planted"
	"github.com/stratum-store/stratum/internal/retry"
	"github.com/stratum-store/stratum/ring"
)

// Shedding: the last step of a move (docs/repair.md, "Deletes during
// moves"). After a ring change (a join, a drain, a removal) a node may hold
// copies the view no longer places on it. Each is settled here by sending
// it, with its stamp, to every node of its write placement (N of them, none
// DOWN), under this node's ring revision. An owner's answer says what it
// holds now:
//
//   - acknowledged: a verified copy. The owner's store reads and verifies
//     the copy it has, and replaces a damaged one with this one, so an
//     index entry whose bytes rotted is never taken for a copy.
//   - superseded: a tombstone at least as new as this copy. The object is
//     deleted: the tombstone is applied here (buryHere), so this node
//     neither keeps nor ever pushes the old copy again.
//   - anything else: unknown; the copy stays for a later round.
//
// The copy is removed (without a tombstone: the object is not deleted)
// once all N owners acknowledged. So a copy leaves a node only when N
// others hold verified copies, or as a delete, and a crash at any point
// leaves at worst a spare copy, settled on the next round.
//
// Memory: the store is walked once, a page of OIDs at a time (rangePages),
// and copies are read and sent a group at a time (aeChunk objects,
// aeChunkBytes bytes); nothing grows with the store.

// shedRound goes once over the local copies the view does not place here.
// It returns how many it removed or buried, and how many it still keeps
// (waiting for an owner's confirmation).
func (n *Server) shedRound(ctx context.Context) (removed, kept int, err error) {
	v := n.view()
	if v.Ring == nil || n.fenced() {
		return 0, 0, nil
	}
	s := &shedder{n: n, v: v, pace: time.Second / time.Duration(n.cfg.AntiEntropyRate)}
	misplaced := func(oid api.OID) bool { return !placedOn(v.Write, oid, n.cfg.ID) }
	err = n.rangePages(ctx, misplaced, func(page []api.OID) bool {
		for _, oid := range page {
			if !n.holdWhilePaused(ctx) {
				return false
			}
			s.add(ctx, oid)
		}
		return true
	})
	s.flush(ctx)
	if err == nil {
		err = ctx.Err()
	}
	if s.removed > 0 || s.buried > 0 || s.kept > 0 {
		n.logger.Info("shed copies placed elsewhere", "removed", s.removed, "buried", s.buried, "kept", s.kept)
	}
	n.shedKept.Store(int64(s.kept))
	return s.removed + s.buried, s.kept, err
}

// rangePage is how many OIDs rangePages hands over at a time.
const rangePage = 256

// rangePages walks the local copies in OID order and hands fn those that
// keep selects, at most rangePage at a time, until fn returns false. The
// store's iterator is held only while a page is read, never while fn
// works, so a long walk (a throttled shed round, a drain pass) neither
// grows with the store nor pins old index files.
func (n *Server) rangePages(ctx context.Context, keep func(api.OID) bool, fn func([]api.OID) bool) error {
	from := ""
	for {
		var page []api.OID
		scanned := false
		err := n.store.RangeEntriesFrom(ctx, false, from, "", func(e store.Entry) bool {
			scanned = true
			from = e.OID.String() + "\x00" // strictly after it
			if keep(e.OID) {
				page = append(page, e.OID)
			}
			return len(page) < rangePage
		})
		switch {
		case err != nil:
			return err
		case len(page) > 0 && !fn(page):
			return ctx.Err()
		case !scanned:
			return nil
		}
	}
}

func placedOn(r *ring.Ring, oid api.OID, id string) bool {
	for _, rn := range r.Replicas([]byte(oid.String())) {
		if rn.ID == id {
			return true
		}
	}
	return false
}

// shedder holds one round's group of small copies being settled and its
// counts.
type shedder struct {
	n     *Server
	v     *clusterview.View
	pace  time.Duration
	items []store.BatchItem
	size  int

	removed, buried, kept int
}

// add reads the local copy of oid and settles it: a large one alone, a
// small one with its group.
func (s *shedder) add(ctx context.Context, oid api.OID) {
	obj, stamp, err := s.n.obj.LocalCopy(ctx, oid)
	switch {
	case errors.Is(err, api.ErrDeleted):
		return // deleted meanwhile: nothing to shed
	case err != nil:
		s.kept++ // unreadable here: the scrubber deals with it
		return
	case obj.Body != nil:
		obj.Body.Close()
		s.settleLarge(ctx, oid)
		return
	}
	s.items = append(s.items, store.BatchItem{OID: oid, Data: obj.Data, Stamp: stamp})
	if s.size += len(obj.Data); len(s.items) >= aeChunk || s.size >= aeChunkBytes {
		s.flush(ctx)
	}
}

// owners lists the write placement of oid that takes writes now.
func (s *shedder) owners(oid api.OID) []ring.Node {
	var out []ring.Node
	for _, rn := range s.v.Write.Replicas([]byte(oid.String())) {
		if s.v.State(rn.ID).WriteTarget() {
			out = append(out, rn)
		}
	}
	return out
}

// flush sends the group to its owners, one batch per owner, and settles
// each copy by their answers.
func (s *shedder) flush(ctx context.Context) {
	if len(s.items) == 0 {
		return
	}
	items := s.items
	s.items, s.size = nil, 0
	groups := map[ring.Node][]int{}
	for i, it := range items {
		for _, rn := range s.owners(it.OID) {
			groups[rn] = append(groups[rn], i)
		}
	}
	verdicts := make([]shedVerdict, len(items))
	for rn, idx := range groups {
		if !s.n.holdWhilePaused(ctx) {
			break
		}
		res, err := s.n.obj.PutGroup(ctx, rn, items, idx, s.v.Ring.Revision())
		for j, i := range idx {
			if err == nil {
				verdicts[i].answer(res[j].Code, res[j].Stamp)
			}
		}
		retry.Sleep(ctx, s.pace*time.Duration(len(idx)))
	}
	for i, it := range items {
		s.settle(ctx, it.OID, verdicts[i])
	}
}

// settleLarge sends a large copy to each owner alone (copyTo, which
// buries it here on a refusal for a newer tombstone) and settles it.
func (s *shedder) settleLarge(ctx context.Context, oid api.OID) {
	var vd shedVerdict
	for _, rn := range s.owners(oid) {
		err := s.n.copyTo(ctx, rn, oid, s.v.Ring.Revision())
		if errors.Is(err, errBuried) {
			s.buried++
			return
		}
		if err == nil {
			vd.confirmed++
		}
		retry.Sleep(ctx, s.pace)
	}
	s.settle(ctx, oid, vd)
}

// settle removes the copy once N owners confirmed theirs, or buries it
// under the newest tombstone an owner holds; otherwise it is kept.
func (s *shedder) settle(ctx context.Context, oid api.OID, vd shedVerdict) {
	switch {
	case vd.tomb != 0:
		if err := s.n.buryHere(ctx, oid, vd.tomb); errors.Is(err, errBuried) {
			s.buried++
			return
		}
	case vd.confirmed >= s.v.Ring.ReplicationFactor():
		if s.n.store.Remove(ctx, oid) == nil {
			s.removed++
			return
		}
	}
	s.kept++
}

// shedVerdict is what the owners of one copy answered: how many hold a
// verified copy, and the newest tombstone one holds (0: none).
type shedVerdict struct {
	confirmed int
	tomb      api.Stamp
}

// answer records one owner's answer to the push of a copy.
func (vd *shedVerdict) answer(code string, stamp api.Stamp) {
	switch {
	case code == "":
		vd.confirmed++
	case code == "superseded" && planted.OldOwnerDeletes:
		// a negative control only (internal/planted): the refused push
		// counts as delivered, and the copy stays
	case code == "superseded":
		vd.tomb = max(vd.tomb, stamp)
	}
}
