package objects

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/clusterview"
	"github.com/stratum-store/stratum/datanode/httpbody"
	"github.com/stratum-store/stratum/datanode/peer"
	"github.com/stratum-store/stratum/datanode/requestid"
	"github.com/stratum-store/stratum/internal/planted"
	"github.com/stratum-store/stratum/ring"
)

// Deletes (docs/consistency.md, "Deletes"). A delete is a write of a
// tombstone: stamped like a put, fanned out to the object's write replicas
// and acknowledged at the requested level; replicas that miss it get a
// hint, and anti-entropy resolves a copy against a newer tombstone in the
// tombstone's favour. Every repair path sends copies with their stamps, so
// a copy older than a tombstone is refused wherever the tombstone is.

// Delete replaces the object's copies with tombstones at the given
// consistency. A replica holding a copy with a newer stamp (a write this
// node had not seen) makes it go out once more above that stamp: a DELETE
// that follows a PUT removes the object.
func (n *Server) Delete(ctx context.Context, oid api.OID, level api.Consistency) (api.DeleteReceipt, error) {
	if n.fenced() {
		return api.DeleteReceipt{}, fmt.Errorf("%w: this node's generation is fenced; it coordinates no writes", api.ErrNotReady)
	}
	rec, err := retrySuperseded(ctx, n, func(stamp api.Stamp) (api.DeleteReceipt, error) {
		return n.deleteOnce(ctx, oid, level, stamp)
	})
	n.metrics.Deletes.WithLabelValues(map[bool]string{true: "acked", false: "failed"}[err == nil]).Inc()
	return rec, err
}

func (n *Server) deleteOnce(ctx context.Context, oid api.OID, level api.Consistency, stamp api.Stamp) (api.DeleteReceipt, error) {
	pl, err := n.writePlacement(oid, level)
	if err != nil {
		return api.DeleteReceipt{}, err
	}
	v, targets, down, need := pl.view, pl.targets, pl.down, pl.need
	results := n.fanOut(targets, func(rn ring.Node) Result {
		res := n.DeleteReplica(ctx, rn, oid, stamp, v.Ring.Revision())
		if hintable(res.Err) {
			n.Hint(rn.ID, oid) // delivered as a tombstone (handoff.go)
		}
		return res
	})
	for _, id := range down {
		n.Hint(id, oid)
	}
	n.buryElsewhere(v, oid, stamp, targets, down)
	t := n.tally(oid, "delete", results, len(targets), down, need)
	if err := t.err(level, need, len(targets)+len(down)); err != nil {
		return api.DeleteReceipt{}, err
	}
	return api.DeleteReceipt{
		OID: oid.String(), Deleted: true, Existed: t.created, Consistency: level, Required: need,
		Acked: t.acked, Failed: t.failed, RingRevision: v.Ring.Revision(),
	}, nil
}

// buryElsewhere sends the tombstone, in the background and without
// counting it towards the delete's level, to the nodes that may still hold
// a copy though the write placement leaves them out: a DRAINING owner
// under the ring, and the owners under the earlier rings the view keeps
// (view.former) that are still in the ring. A failure is logged only: such
// a node settles its copy itself when its drain or shedding pushes it and
// an owner answers with the tombstone (shed.go, drain.go).
func (n *Server) buryElsewhere(v *clusterview.View, oid api.OID, stamp api.Stamp, targets []ring.Node, down []string) {
	if planted.OldOwnerDeletes { // a negative control only (internal/planted)
		return
	}
	for _, rn := range formerPlaces(v, []byte(oid.String()), targets, down) {
		if !n.inflight.Add() {
			return
		}
		go func() {
			defer n.inflight.Done()
			res := n.DeleteReplica(requestid.With(n.life, "delete-former-owner"), rn, oid, stamp, v.Ring.Revision())
			if res.Err != nil && !errors.Is(res.Err, api.ErrSuperseded) {
				n.logger.Info("tombstone not delivered to a former owner; its drain or shedding settles it", "oid", oid, "node", rn.ID, "err", res.Err)
			}
		}()
	}
}

// formerPlaces lists the readable ring nodes that the ring or an earlier
// ring of the view places key on, other than the write targets and the
// DOWN ones, with their current addresses.
func formerPlaces(v *clusterview.View, key []byte, targets []ring.Node, down []string) []ring.Node {
	var out []ring.Node
	add := func(rn ring.Node) {
		now, member := v.Ring.Node(rn.ID)
		if member && v.State(rn.ID).ReadTarget() && !slices.Contains(down, rn.ID) &&
			!slices.ContainsFunc(targets, clusterview.SameID(rn)) && !slices.ContainsFunc(out, clusterview.SameID(rn)) {
			out = append(out, now)
		}
	}
	for _, rn := range v.Ring.Replicas(key) {
		add(rn)
	}
	for _, r := range v.Former {
		for _, rn := range r.Replicas(key) {
			add(rn)
		}
	}
	return out
}

// DeleteReplica writes oid's tombstone with stamp on rn. created reports
// that rn removed a copy.
func (n *Server) DeleteReplica(ctx context.Context, rn ring.Node, oid api.OID, stamp api.Stamp, rev int64) Result {
	res := Result{node: rn}
	if rn.ID == n.cfg.ID {
		res.created, res.Err = n.store.Delete(ctx, oid, stamp, n.clock.Running())
		res.Err = StoreError(res.Err)
		return res
	}
	req := n.peers.NewReplicaRequest(ctx, fasthttp.MethodDelete, rn.Addr, oid, rev)
	defer fasthttp.ReleaseRequest(req)
	req.Header.Set(api.HeaderStamp, stamp.String())
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	res.Err = peer.WithStamp(n.peers.Do(rn.Addr, req, resp, n.cfg.PeerTimeout, true), resp)
	res.created = string(resp.Header.Peek(api.HeaderCreated)) == "true"
	return res
}

// replicaDelete serves a coordinator's DELETE of this node's copy.
func (n *Server) replicaDelete(ctx *fasthttp.RequestCtx, oid api.OID) error {
	stamp, err := api.ParseStamp(string(ctx.Request.Header.Peek(api.HeaderStamp)))
	if err != nil {
		return err
	}
	if stamp == 0 {
		return fmt.Errorf("%w: a replica delete needs %s", api.ErrBadRequest, api.HeaderStamp)
	}
	n.clock.Observe(stamp)
	existed, err := n.store.Delete(n.RequestContext(ctx), oid, stamp, n.clock.Running())
	if err != nil {
		return StoreError(err)
	}
	ctx.Response.Header.Set(api.HeaderCreated, strconv.FormatBool(existed))
	return nil
}

// applyTombstones applies tombstones sent by a peer (anti-entropy), each
// only over an older stamp.
func (n *Server) applyTombstones(ctx context.Context, entries []api.AEEntry) ([]api.ReplicaBatchResult, error) {
	out := make([]api.ReplicaBatchResult, len(entries))
	for i, e := range entries {
		oid, err := api.ParseOID(e.OID)
		if err != nil {
			return nil, err
		}
		if e.Stamp == 0 {
			return nil, fmt.Errorf("%w: tombstone of %s without a stamp", api.ErrBadRequest, oid)
		}
		n.clock.Observe(e.Stamp)
		existed, err := n.store.Delete(ctx, oid, e.Stamp, n.clock.Running())
		out[i].Created = existed
		if err != nil {
			_, out[i].Code = api.StatusOf(StoreError(err))
			out[i].Stamp = StampOf(err)
		}
	}
	return out, nil
}

// HandleReplicaDelete serves POST /internal/v1/replica-delete.
func (n *Server) HandleReplicaDelete(ctx *fasthttp.RequestCtx) error {
	if err := n.CheckPeer(ctx); err != nil {
		return err
	}
	var req api.ReplicaDeleteRequest
	body, err := httpbody.ReadLimited(httpbody.Reader(ctx), api.MaxBatchBytes)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return fmt.Errorf("%w: bad replica delete: %v", api.ErrBadRequest, err)
	}
	if len(req.Entries) > api.MaxBatchObjects {
		return fmt.Errorf("%w: more than %d tombstones", api.ErrTooLarge, api.MaxBatchObjects)
	}
	res, err := n.applyTombstones(n.life, req.Entries)
	if err != nil {
		return err
	}
	return httpbody.WriteJSON(ctx, fasthttp.StatusOK, res)
}

// SendTombstones applies entries on rn and returns how many it holds now
// (applied, or superseded by something newer there).
func (n *Server) SendTombstones(ctx context.Context, rn ring.Node, entries []api.AEEntry, rev int64) (int, error) {
	if len(entries) == 0 {
		return 0, nil
	}
	var res []api.ReplicaBatchResult
	var err error
	if rn.ID == n.cfg.ID {
		res, err = n.applyTombstones(ctx, entries)
	} else {
		err = n.peers.Call(ctx, peer.Call{Addr: rn.Addr, Method: fasthttp.MethodPost, Path: api.PathReplicaDelete, Rev: rev,
			Body: api.ReplicaDeleteRequest{Entries: entries}, Timeout: n.cfg.PeerTimeout, Read: func(b []byte) error {
				return json.Unmarshal(b, &res)
			}})
	}
	if err != nil {
		return 0, err
	}
	k := 0
	for _, r := range res {
		if r.Code == "" || r.Code == "superseded" {
			k++
		}
	}
	return k, nil
}

// repairTombstone sends, in the background, the tombstone a read found to
// the nodes it found still holding an older copy: owners, and former
// owners (a read also asks those) that are still in the ring.
func (n *Server) repairTombstone(oid api.OID, stamp api.Stamp, holders []ring.Node) {
	r := n.Ring()
	for _, rn := range holders {
		_, member := clusterview.RingNode(r, rn.ID)
		if planted.OldOwnerDeletes { // a negative control only: owners alone
			member = r.Owns(rn.ID, []byte(oid.String()))
		}
		if !member || !n.inflight.Add() {
			continue
		}
		go func() {
			defer n.inflight.Done()
			res := n.DeleteReplica(requestid.With(n.life, "read-repair"), rn, oid, stamp, r.Revision())
			if res.Err != nil && !errors.Is(res.Err, api.ErrSuperseded) {
				n.logger.Warn("tombstone repair failed", "oid", oid, "replica", rn.ID, "err", res.Err)
			}
			n.metrics.ReadRepairs.WithLabelValues(outcomeWord(res.Err)).Inc()
		}()
	}
}
