package refs

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/httpbody"
	"github.com/stratum-store/stratum/datanode/peer"
)

// This file is the replica's side of docs/refs.md: the four internal
// messages, each answered by the ref store's fenced, synced operations; and
// refCall, which sends them.

// handleRefInternal serves begin, apply, snapshot and install. Only a
// current member of the cluster may call them (checkGeneration); the epoch
// inside each message is the fence.
func (r *Server) HandleInternal(ctx *fasthttp.RequestCtx, path string) error {
	if err := r.d.CheckCaller(ctx); err != nil {
		return err
	}
	st := r.store
	switch {
	case path == api.PathRefBegin && ctx.IsPost():
		var req api.RefBeginRequest
		if err := httpbody.DecodeJSON(ctx, maxRefBody, &req); err != nil {
			return err
		}
		v, err := st.Begin(req.Partition, req.Epoch)
		if err != nil {
			return err
		}
		r.noteFence(req.Partition, req.Epoch)
		return httpbody.WriteJSON(ctx, fasthttp.StatusOK, api.RefReplicaState{Version: v, Store: st.ID()})
	case path == api.PathRefApply && ctx.IsPost():
		var req api.RefApplyRequest
		if err := httpbody.DecodeJSON(ctx, maxRefBody, &req); err != nil {
			return err
		}
		if err := st.Apply(req.Partition, req.Epoch, req.Seq, req.Changes); err != nil {
			return err
		}
		r.noteFence(req.Partition, req.Epoch)
		return httpbody.WriteJSON(ctx, fasthttp.StatusOK, st.Version(req.Partition))
	case path == api.PathRefSnapshot && ctx.IsGet():
		id, err1 := strconv.Atoi(string(ctx.QueryArgs().Peek("partition")))
		epoch, err2 := strconv.ParseInt(string(ctx.QueryArgs().Peek("epoch")), 10, 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("%w: snapshot needs partition= and epoch=", api.ErrBadRequest)
		}
		if f := st.Floor(id); epoch < f {
			return fmt.Errorf("%w: partition %d: epoch %d < floor %d", api.ErrStaleEpoch, id, epoch, f)
		}
		snap, err := st.Snapshot(id)
		if err != nil {
			return err
		}
		return httpbody.WriteJSON(ctx, fasthttp.StatusOK, snap)
	case path == api.PathRefInstall && ctx.IsPost():
		var req api.RefInstallRequest
		if err := httpbody.DecodeJSON(ctx, maxRefBody, &req); err != nil {
			return err
		}
		if err := st.Install(req.Snapshot.Partition, req.Epoch, req.Snapshot); err != nil {
			return err
		}
		r.noteFence(req.Snapshot.Partition, req.Epoch)
		return httpbody.WriteJSON(ctx, fasthttp.StatusOK, api.RefReplicaState{Version: st.Version(req.Snapshot.Partition), Store: st.ID()})
	}
	return api.ErrRouteNotFound
}

// noteFence steps down when a message shows a newer epoch than the one this
// node serves partition id at: someone else began, or the record moved on.
func (r *Server) noteFence(id int, epoch int64) {
	ps := r.part(id)
	if a := ps.active.Load(); a != 0 && epoch > a && ps.rec.Load().Primary == r.cfg.ID {
		r.stepDown(id, "a newer epoch reached this replica", fmt.Errorf("epoch %d > %d", epoch, a))
	}
}

// call sends one ref protocol message to node and decodes its JSON
// answer into out (when out is not nil). Every message is idempotent, so
// transport failures are retried within the deadline.
func (r *Server) call(ctx context.Context, node, method, path string, body, out any) error {
	rn, ok := r.d.View().Ring.Node(node)
	if !ok {
		return fmt.Errorf("%w: %s is not in the ring", api.ErrUnknownNode, node)
	}
	return r.d.Peers.Call(ctx, peer.Call{Addr: rn.Addr, Method: method, Path: path, Rev: r.d.View().Ring.Revision(), Body: body, Timeout: r.cfg.Timeout, Read: func(b []byte) error {
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%w: %s answered %s with bad JSON: %v", api.ErrInternal, node, path, err)
		}
		return nil
	}})
}
