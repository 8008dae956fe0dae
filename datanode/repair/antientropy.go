package repair

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/clusterview"
	"github.com/stratum-store/stratum/datanode/peer"
	"github.com/stratum-store/stratum/datanode/store"
	"github.com/stratum-store/stratum/internal/retry"
	"github.com/stratum-store/stratum/ring"
)

// Anti-entropy: every AntiEntropyInterval the node compares, with each
// peer in the ring in turn, digests of the OIDs the ring places on both
// (aedigest.go), lists the buckets that differ on both sides and copies
// the set differences: it pushes the objects the peer lacks with the
// replica batch PUT and pulls those it lacks with the replica batch GET.
// Only verified bytes move: pushed copies are read through the store's
// verifying Get, pulled ones are verified against their OID before they
// are stored (and again by the store).

// aeChunk bounds one push or pull request: objects, and bytes of a push.
const (
	aeChunk      = 64
	aeChunkBytes = 8 << 20
)

// AntiEntropyLoop runs a round every AntiEntropyInterval until ctx is
// done, each complete round followed by a shed round (shed.go). A round
// that could not sync with some peer (one unreachable but not DOWN) is
// followed by a shed round too, but only every shedAfterIncomplete such
// rounds in a row: shedding confirms every copy with its N owners itself,
// so it is safe after any round, and one unreachable peer then holds back
// only the copies it owns instead of every move in the cluster; the
// spacing keeps a cluster with a flapping peer from offering every
// misplaced copy again after each short round.
func (n *Server) AntiEntropyLoop(ctx context.Context) {
	if n.cfg.AntiEntropyInterval <= 0 {
		return
	}
	incomplete := 0
	retry.Every(ctx, n.cfg.AntiEntropyInterval, func() {
		if n.antiEntropyRound(ctx) {
			incomplete = 0
			n.shedRound(ctx) // a complete round first: owners have what they should
			return
		}
		if incomplete++; incomplete%shedAfterIncomplete == 0 && !n.draining.Load() && !n.aeBusy() && ctx.Err() == nil {
			n.shedRound(ctx)
		}
	})
}

// shedAfterIncomplete is how many incomplete anti-entropy rounds in a row
// are followed by one shed round.
const shedAfterIncomplete = 5

// aeBusy reports foreground load: more than half the body memory budget
// in use. A round is skipped (or cut short) then.
func (n *Server) aeBusy() bool { return n.bodies.Used() > n.bodies.Max()/2 }

// antiEntropyRound syncs with every readable peer of the ring once. A
// fenced or draining node takes no part (the drain moves its objects). It
// reports whether the round went through every peer without an error.
func (n *Server) antiEntropyRound(ctx context.Context) bool {
	v := n.view()
	if v.Ring == nil || n.fenced() || n.draining.Load() || n.aeBusy() {
		return false
	}
	complete := true
	n.repair.begin()
	defer n.repair.end()
	pace := time.Second / time.Duration(n.cfg.AntiEntropyRate)
	for _, rn := range v.Ring.Nodes() {
		if rn.ID == n.cfg.ID || !v.State(rn.ID).ReadTarget() {
			continue
		}
		if !n.holdWhilePaused(ctx) || n.aeBusy() {
			return false
		}
		pushed, pulled, err := n.syncPeer(ctx, v, rn, pace)
		complete = complete && err == nil
		if pushed+pulled > 0 || err != nil {
			n.logger.Info("anti-entropy", "peer", rn.ID, "pushed", pushed, "pulled", pulled, "err", err)
		}
	}
	n.metrics.AERounds.Inc()
	n.aeLastRound.Store(time.Now().UnixNano())
	return complete
}

// syncPeer compares digests with rn and copies the differences of the
// buckets that differ, aeListBuckets at a time.
func (n *Server) syncPeer(ctx context.Context, v *clusterview.View, rn ring.Node, pace time.Duration) (pushed, pulled int, err error) {
	rev := v.Ring.Revision()
	mine, err := n.localDigests(ctx, v, rn.ID)
	if err != nil {
		return 0, 0, err
	}
	theirs, err := n.remoteDigests(rn, rev)
	if err != nil {
		return 0, 0, err
	}
	differ := mine.differ(theirs)
	for len(differ) > 0 && ctx.Err() == nil && !n.aeBusy() {
		group := differ[:min(aeListBuckets, len(differ))]
		differ = differ[len(group):]
		p, l, err := n.syncBuckets(ctx, v, rn, group, pace)
		pushed, pulled = pushed+p, pulled+l
		if err != nil {
			return pushed, pulled, err
		}
	}
	return pushed, pulled, ctx.Err()
}

// syncBuckets lists a group of buckets on both sides a page at a time
// (bucketDiff) and copies each page's differences.
func (n *Server) syncBuckets(ctx context.Context, v *clusterview.View, rn ring.Node, group []int, pace time.Duration) (pushed, pulled int, err error) {
	rev := v.Ring.Revision()
	for after, more := "", true; more && ctx.Err() == nil && !n.aeBusy(); {
		var d aeDiff
		d, after, more, err = n.bucketDiff(ctx, v, rn, group, after)
		if err != nil {
			return pushed, pulled, err
		}
		d.push = forWriteOwner(v, d.push, rn.ID)
		d.pull = forWriteOwner(v, d.pull, n.cfg.ID)
		n.repair.found.Add(int64(len(d.push) + len(d.pull) + len(d.bury) + len(d.buryHere)))
		k, err := n.aePush(ctx, rn, d.push, rev, pace)
		pushed += k
		if err == nil {
			k, err = n.obj.SendTombstones(ctx, rn, d.bury, rev)
			pushed += k
			n.countAE("push", k, 0)
		}
		if err != nil {
			return pushed, pulled, err
		}
		k, err = n.aePull(ctx, rn, d.pull, rev, pace)
		pulled += k
		if err == nil {
			k, err = n.obj.SendTombstones(ctx, n.d.Self(), d.buryHere, rev)
			pulled += k
			n.countAE("pull", k, 0)
		}
		if err != nil {
			return pushed, pulled, err
		}
	}
	return pushed, pulled, ctx.Err()
}

// aeListPage is how many entries one side lists per page of a bucket
// group.
const aeListPage = api.AEListMaxPage

// bucketDiff lists a page of the buckets after after on both sides and
// compares them (diffEntries) up to the smaller of the two pages' last
// OIDs, so each side's page covers the same OIDs. It returns where the
// next page starts and whether there is one.
func (n *Server) bucketDiff(ctx context.Context, v *clusterview.View, rn ring.Node, buckets []int, after string) (d aeDiff, next string, more bool, err error) {
	theirs, theirMore, err := n.remoteList(rn, v.Ring.Revision(), buckets, after, aeListPage)
	if err != nil {
		return aeDiff{}, "", false, err
	}
	mine, myMore, err := n.localList(ctx, v, rn.ID, buckets, after, aeListPage)
	if err != nil {
		return aeDiff{}, "", false, err
	}
	mine, theirs, next, more = pageBound(mine, myMore, theirs, theirMore)
	return diffEntries(mine, theirs), next, more, nil
}

// pageBound cuts two sorted pages at the smaller of their last OIDs when
// either is full, so both cover the same OIDs, and says where the next
// page starts.
func pageBound(mine []api.AEEntry, myMore bool, theirs []api.AEEntry, theirMore bool) ([]api.AEEntry, []api.AEEntry, string, bool) {
	var bound string
	switch {
	case myMore && theirMore:
		bound = min(mine[len(mine)-1].OID, theirs[len(theirs)-1].OID)
	case myMore:
		bound = mine[len(mine)-1].OID
	case theirMore:
		bound = theirs[len(theirs)-1].OID
	default:
		return mine, theirs, "", false
	}
	upTo := func(es []api.AEEntry) []api.AEEntry {
		i, _ := slices.BinarySearchFunc(es, bound, func(e api.AEEntry, b string) int { return strings.Compare(e.OID, b) })
		for i < len(es) && es[i].OID == bound {
			i++
		}
		return es[:i]
	}
	return upTo(mine), upTo(theirs), bound, true
}

// aePush sends rn the local copies of oids, small ones in batches, large
// ones alone. A copy that does not read back verified here is skipped (the
// scrubber deals with it). It returns how many rn acknowledged.
func (n *Server) aePush(ctx context.Context, rn ring.Node, entries []api.AEEntry, rev int64, pace time.Duration) (int, error) {
	sent := 0
	var items []store.BatchItem
	size := 0
	flush := func() error {
		if len(items) == 0 {
			return nil
		}
		k, err := n.pushBatch(ctx, rn, items, rev)
		sent += k
		retry.Sleep(ctx, pace*time.Duration(len(items)))
		items, size = nil, 0
		return err
	}
	for _, e := range entries {
		if !n.holdWhilePaused(ctx) {
			return sent, ctx.Err()
		}
		oid, _ := api.ParseOID(e.OID)
		obj, stamp, err := n.obj.LocalCopy(ctx, oid)
		switch {
		case err != nil:
			continue
		case obj.Body != nil:
			obj.Body.Close()
			if err := n.copyTo(ctx, rn, oid, rev); errors.Is(err, errBuried) {
				continue // deleted meanwhile: no copy sent
			} else if err != nil {
				return sent, err
			}
			sent++
			n.countAE("push", 1, obj.Size)
			retry.Sleep(ctx, pace)
			continue
		}
		items = append(items, store.BatchItem{OID: oid, Data: obj.Data, Stamp: stamp})
		if size += len(obj.Data); len(items) >= aeChunk || size >= aeChunkBytes {
			if err := flush(); err != nil {
				return sent, err
			}
		}
	}
	return sent, flush()
}

func (n *Server) pushBatch(ctx context.Context, rn ring.Node, items []store.BatchItem, rev int64) (int, error) {
	idx := make([]int, len(items))
	for i := range idx {
		idx[i] = i
	}
	res, err := n.obj.PutGroup(ctx, rn, items, idx, rev)
	if err != nil {
		return 0, err
	}
	k, bytes := 0, int64(0)
	for i, r := range res {
		if r.Code == "" {
			k++
			bytes += int64(len(items[i].Data))
		}
	}
	n.countAE("push", k, bytes)
	return k, nil
}

// aePull fetches oids from rn aeChunk at a time, verifies each copy
// against its OID and stores the ones that verify. It returns how many
// were stored.
func (n *Server) aePull(ctx context.Context, rn ring.Node, entries []api.AEEntry, rev int64, pace time.Duration) (int, error) {
	oids := make([]api.OID, len(entries))
	for i, e := range entries {
		oids[i], _ = api.ParseOID(e.OID)
	}
	got := 0
	for len(oids) > 0 && n.holdWhilePaused(ctx) {
		chunk := oids[:min(aeChunk, len(oids))]
		oids = oids[len(chunk):]
		k, err := n.pullChunk(ctx, rn, chunk, rev)
		got += k
		if err != nil {
			return got, err
		}
		retry.Sleep(ctx, pace*time.Duration(len(chunk)))
	}
	return got, ctx.Err()
}

func (n *Server) pullChunk(ctx context.Context, rn ring.Node, chunk []api.OID, rev int64) (int, error) {
	items, large, err := n.fetchVerified(ctx, rn, chunk, rev)
	if err != nil {
		return 0, err
	}
	k, bytes := 0, int64(0)
	if len(items) > 0 {
		res, err := n.obj.StoreBatch(items)
		if err != nil {
			return 0, err
		}
		for i, r := range res {
			if r.Code == "" && r.Created { // a concurrent round may have stored it first
				k++
				bytes += int64(len(items[i].Data))
			}
		}
	}
	for _, oid := range large {
		p, err := n.obj.FetchRemote(ctx, rn, oid, rev) // verified against the OID
		if err != nil {
			continue
		}
		p.Hold(1)
		created, err := n.obj.StorePut(ctx, oid, p, p.Stamp)
		p.Release()
		if err == nil && created {
			k++
			bytes += p.Size
		}
	}
	n.countAE("pull", k, bytes)
	return k, nil
}

// fetchVerified asks rn's replica batch GET for chunk and returns the
// small copies that verify against their OID, and the OIDs rn holds as
// large objects (fetched alone). Copies rn no longer has, or whose bytes
// do not verify, are left out.
func (n *Server) fetchVerified(ctx context.Context, rn ring.Node, chunk []api.OID, rev int64) (items []store.BatchItem, large []api.OID, err error) {
	idx := make([]int, len(chunk))
	for i := range idx {
		idx[i] = i
	}
	timeout := peer.Timeout(n.cfg.PeerTimeout, n.cfg.PeerMinRate, int64(len(chunk))*n.cfg.Store.LargeThreshold)
	c := peer.Call{Addr: rn.Addr, Path: api.PathReplicaGet, Rev: rev, Timeout: timeout}
	c.Read = func(body []byte) error {
		r := bufio.NewReader(bytes.NewReader(body))
		for _, want := range chunk {
			f, err := api.ReadStampedFrame(r, n.cfg.Store.LargeThreshold)
			switch {
			case err != nil:
				return err
			case f.OID != want:
				return fmt.Errorf("peer %s: frame for %s, want %s", rn.ID, f.OID, want)
			case f.Code == "too_large":
				large = append(large, f.OID)
			case f.Code != "":
			case api.Verify(f.OID, f.Data) != nil:
				n.logger.Warn("anti-entropy: peer sent a copy that does not verify", "peer", rn.ID, "oid", f.OID)
			default:
				items = append(items, store.BatchItem{OID: f.OID, Data: f.Data, Stamp: f.Stamp})
			}
		}
		return nil
	}
	err = n.obj.PostOIDs(ctx, c, chunk, idx)
	return items, large, err
}

// countAE records k objects moved in direction "push" or "pull".
func (n *Server) countAE(direction string, k int, bytes int64) {
	if k <= 0 {
		return
	}
	n.metrics.AEObjects.WithLabelValues(direction).Add(float64(k))
	n.metrics.AEBytes.WithLabelValues(direction).Add(float64(bytes))
	n.repair.copied.Add(int64(k))
	if direction == "push" {
		n.aePushed.Add(int64(k))
	} else {
		n.aePulled.Add(int64(k))
	}
}

// forWriteOwner keeps the entries whose copies belong on node id: those the
// write ring places there while id takes writes. A draining node (or one
// that only reads place there) is never sent a copy: its copies are on
// their way out, and a copy sent to it would have to be shed again, so a
// drain would never finish. Tombstones are not filtered: a former owner
// must still learn of a delete (docs/repair.md, "Deletes during moves").
func forWriteOwner(v *clusterview.View, entries []api.AEEntry, id string) []api.AEEntry {
	if !v.State(id).WriteTarget() {
		return nil
	}
	kept := entries[:0:0]
	for _, e := range entries {
		if v.Write.Owns(id, []byte(e.OID)) {
			kept = append(kept, e)
		}
	}
	return kept
}
