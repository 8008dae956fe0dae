package objects

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/httpbody"
	"github.com/stratum-store/stratum/datanode/peer"
	"github.com/stratum-store/stratum/datanode/requestid"
	"github.com/stratum-store/stratum/datanode/store"
	"github.com/stratum-store/stratum/ring"
)

// HandleBatch serves the batch endpoints: POST /v1/objects:has, :get, :put.
func (n *Server) HandleBatch(ctx *fasthttp.RequestCtx, path string) error {
	if !ctx.IsPost() {
		return fmt.Errorf("%w: use POST for %s", api.ErrMethodNotAllowed, path)
	}
	level, err := api.ParseConsistency(string(ctx.QueryArgs().Peek(api.QueryConsistency)))
	if err != nil {
		return err
	}
	if n.Ring() == nil {
		return fmt.Errorf("%w: no ring yet", api.ErrNotReady)
	}
	switch path {
	case api.PathBatchPut:
		return n.batchPut(ctx, level)
	case api.PathBatchHas:
		return n.batchHas(ctx, level)
	case api.PathBatchGet:
		return n.batchGet(ctx, level)
	}
	return fmt.Errorf("%w: %s", api.ErrRouteNotFound, path)
}

// readBatchBody reserves memory for a batch body (its declared length, or
// the batch maximum when the length is unknown) and reads its frames;
// value frames (api.WriteValueFrame) only if fromPeer. The caller calls
// release once it no longer holds the items.
func (n *Server) readBatchBody(ctx *fasthttp.RequestCtx, fromPeer bool) (items []store.BatchItem, release func(), err error) {
	size := int64(ctx.Request.Header.ContentLength())
	if size < 0 || size > api.MaxBatchBytes {
		size = api.MaxBatchBytes
	}
	held, err := n.bodies.ReserveBody(size, api.MaxBatchBytes)
	if err != nil {
		return nil, nil, err
	}
	release = func() { n.bodies.Release(held) }
	if items, err = n.readFrames(httpbody.Reader(ctx), fromPeer); err != nil {
		release()
		return nil, nil, err
	}
	return items, release, nil
}

// frameReaders holds the 64 KiB buffered readers of readFrames. Every
// replica batch (a coalesced group of a few small writes) is read through
// one; a fresh one per request was a third of the bytes a node allocated
// under a PUT load, all of them zeroed (docs/performance.md, "Pooled frame
// readers and a paired scale run"). Reuse is safe because
// api.ReadStampedFrame copies each object's bytes out of the buffer.
var frameReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}

// readFrames reads up to MaxBatchObjects small objects. A value frame
// becomes an item with Value (and no Data) when values are allowed.
func (n *Server) readFrames(r io.Reader, values bool) ([]store.BatchItem, error) {
	br := frameReaders.Get().(*bufio.Reader)
	br.Reset(io.LimitReader(r, api.MaxBatchBytes+1))
	defer func() {
		br.Reset(nil) // drop the request's reader before the buffer waits in the pool
		frameReaders.Put(br)
	}()
	limit := n.cfg.Store.LargeThreshold
	if values {
		limit++ // an object of LargeThreshold bytes stored raw is a value one byte longer
	}
	var items []store.BatchItem
	for {
		f, err := api.ReadStampedFrame(br, limit)
		if err == io.EOF {
			return items, nil
		}
		if err != nil {
			return nil, err
		}
		if f.Code != "" {
			return nil, fmt.Errorf("%w: a missing-object frame in a PUT", api.ErrBadRequest)
		}
		if len(items) == api.MaxBatchObjects {
			return nil, fmt.Errorf("%w: more than %d objects in one batch", api.ErrTooLarge, api.MaxBatchObjects)
		}
		switch {
		case f.Value && !values:
			return nil, fmt.Errorf("%w: value frames are for replica batches between nodes", api.ErrBadRequest)
		case f.Value:
			items = append(items, store.BatchItem{OID: f.OID, Value: f.Data, Stamp: f.Stamp})
		default:
			items = append(items, store.BatchItem{OID: f.OID, Data: f.Data, Stamp: f.Stamp})
		}
	}
}

func (n *Server) readOIDList(ctx *fasthttp.RequestCtx) ([]api.OID, error) {
	list, err := httpbody.OIDList(ctx, n.bodies) // held against the body budget, stops at MaxBatchObjects
	if err != nil {
		return nil, err
	}
	oids := make([]api.OID, len(list.OIDs))
	for i, s := range list.OIDs {
		oid, err := api.ParseOID(s)
		if err != nil {
			return nil, fmt.Errorf("oid %d: %w", i, err)
		}
		oids[i] = oid
	}
	return oids, nil
}

// batchPut verifies every object, groups the objects by replica, sends each
// replica its whole group in one request (one synced write there), and
// reports each object as stored once enough replicas acknowledged it.
func (n *Server) batchPut(ctx *fasthttp.RequestCtx, level api.Consistency) error {
	if !n.d.Ready() {
		return fmt.Errorf("%w: this node coordinates no writes (no ring, or fenced)", api.ErrNotReady)
	}
	items, release, err := n.readBatchBody(ctx, false)
	if err != nil {
		return err
	}
	defer release()
	return httpbody.WriteJSON(ctx, fasthttp.StatusOK, n.putItems(n.RequestContext(ctx), items, level))
}

// WriteMany is a batch PUT in process: it stores objs (each at most the
// store's LargeThreshold) at level as POST /v1/objects:put would, and
// returns the first object that failed, with its reason (wrapping the
// api sentinel of its code), or nil once every object reached level.
// It is for callers inside the node that checked the caller's write
// scope themselves (the Git gateway's pushes). The objects' bytes are
// held against the node's body budget, as a batch PUT's body is (a
// refusal wraps api.ErrBusy). ctx gives only the request ID: as a batch
// PUT's, the replica calls outlive the caller, each bounded by the peer
// deadline, so the caller should not start a batch once it gave up.
func (n *Server) WriteMany(ctx context.Context, objs []BatchObject, level api.Consistency) error {
	if !n.d.Ready() {
		return fmt.Errorf("%w: this node coordinates no writes (no ring, or fenced)", api.ErrNotReady)
	}
	if n.Ring() == nil {
		return fmt.Errorf("%w: no ring yet", api.ErrNotReady)
	}
	items := make([]store.BatchItem, len(objs))
	var size int64
	for i, o := range objs {
		if int64(len(o.Data)) > n.cfg.Store.LargeThreshold {
			return fmt.Errorf("%w: %s is %d bytes, the batch limit per object is %d", api.ErrTooLarge, o.OID, len(o.Data), n.cfg.Store.LargeThreshold)
		}
		items[i] = store.BatchItem{OID: o.OID, Data: o.Data}
		size += int64(len(o.Data))
	}
	// Held against the node's body budget as the batch PUT's body would
	// be: the encoded values and the replicas' request bodies are built
	// from it.
	held, err := n.bodies.ReserveBody(size, api.MaxBatchBytes)
	if err != nil {
		return err
	}
	defer n.bodies.Release(held)
	reply := n.putItems(requestid.With(n.life, requestid.From(ctx)), items, level)
	for i, it := range reply.Items {
		if it.Error != nil {
			return fmt.Errorf("storing %s: %w", objs[i].OID, &api.RemoteError{Code: it.Error.Code, Message: it.Error.Message})
		}
	}
	return nil
}

// BatchObject is one object of WriteMany.
type BatchObject struct {
	OID  api.OID
	Data []byte
}

// putItems verifies items, writes each to its replicas and judges each
// against level: the reply of a batch PUT.
func (n *Server) putItems(ctx context.Context, items []store.BatchItem, level api.Consistency) api.BatchPutReply {
	reply := api.BatchPutReply{Items: make([]api.BatchPutItem, len(items))}
	groups, need, rev := n.groupForWrite(items, reply.Items, level)
	n.sendGroups(ctx, groups, items, rev, reply.Items)
	replicas := n.Ring().ReplicationFactor()
	for i := range reply.Items {
		it := &reply.Items[i]
		// every replica has answered: fewer than N acknowledgements is degraded
		it.Degraded = it.Error == nil && degraded(len(it.Acked), 0, len(it.Failed), replicas)
		if it.Error == nil && len(it.Acked) < need {
			_, body := api.EncodeError(fmt.Errorf("%w: %d of %d acknowledged", api.ErrQuorumNotReached, len(it.Acked), need))
			var eb api.ErrorBody
			json.Unmarshal(body, &eb)
			it.Error = &eb.Error
		}
		if it.Error != nil {
			reply.Failed++
		} else {
			reply.Stored++
		}
	}
	return reply
}

// groupForWrite verifies each item, encodes it once for all its replicas
// (store.BatchItem.Value: each replica decodes and verifies it, which
// costs about a quarter of encoding it again), and assigns it to its eligible
// write replicas: node ID -> item indexes.
func (n *Server) groupForWrite(items []store.BatchItem, out []api.BatchPutItem, level api.Consistency) (map[ring.Node][]int, int, int64) {
	v := n.view()
	need := 0
	groups := map[ring.Node][]int{}
	stamp := n.clock.Now() // the client's frames carry no stamp that counts
	for i, it := range items {
		items[i].Stamp = stamp
		out[i].OID = it.OID.String()
		if err := api.Verify(it.OID, it.Data); err != nil {
			out[i].Error = errorDetail(err)
			continue
		}
		items[i].Verified = true // this node's own copy is not hashed again
		items[i].Value = n.store.Encode(it.Data)
		for _, rn := range v.Write.Replicas([]byte(it.OID.String())) {
			if v.State(rn.ID).WriteTarget() {
				groups[rn] = append(groups[rn], i)
			} else {
				n.Hint(rn.ID, it.OID) // a DOWN replica: handed off when it is back
				out[i].Failed = append(out[i].Failed, rn.ID)
			}
		}
	}
	need = level.Required(v.Ring.ReplicationFactor())
	return groups, need, v.Ring.Revision()
}

func errorDetail(err error) *api.ErrorDetail {
	_, code := api.StatusOf(err)
	return &api.ErrorDetail{Code: code, Message: err.Error()}
}

// sendGroups writes each group to its replica in parallel and records the
// acknowledgements per item.
func (n *Server) sendGroups(ctx context.Context, groups map[ring.Node][]int, items []store.BatchItem, rev int64, out []api.BatchPutItem) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for rn, idx := range groups {
		wg.Add(1)
		tracked := n.inflight.Add()
		go func() {
			defer wg.Done()
			var res []api.ReplicaBatchResult
			var err error
			if tracked {
				defer n.inflight.Done()
				res, err = n.PutGroup(ctx, rn, items, idx, rev)
			} else {
				err = fmt.Errorf("%w: node is shutting down", api.ErrNotReady)
			}
			if err != nil {
				n.logger.Warn("batch replica write failed", "replica", rn.ID, "objects", len(idx), "err", err)
				n.hintAll(rn.ID, items, idx, err)
			}
			mu.Lock()
			defer mu.Unlock()
			for j, i := range idx {
				if err == nil && res[j].Code == "" {
					out[i].Acked = append(out[i].Acked, rn.ID)
					out[i].Created = out[i].Created || res[j].Created
				} else {
					out[i].Failed = append(out[i].Failed, rn.ID)
				}
			}
		}()
	}
	wg.Wait()
}

func (n *Server) PutGroup(ctx context.Context, rn ring.Node, items []store.BatchItem, idx []int, rev int64) ([]api.ReplicaBatchResult, error) {
	group := make([]store.BatchItem, len(idx))
	size := 0
	for j, i := range idx {
		group[j] = items[i]
		size += max(len(items[i].Data), len(items[i].Value))
	}
	if rn.ID == n.cfg.ID {
		return n.StoreBatch(group)
	}
	body := make([]byte, 0, size+len(group)*api.MaxFrameHeader)
	for _, it := range group {
		if it.Value != nil {
			body = api.AppendValueFrame(body, it.OID, it.Value, it.Stamp)
		} else {
			body = api.AppendStampedFrame(body, it.OID, it.Data, it.Stamp)
		}
	}
	req := n.peers.NewRequest(ctx, fasthttp.MethodPost, rn.Addr, api.PathReplicaBatch, rev)
	defer fasthttp.ReleaseRequest(req)
	req.SetBodyRaw(body)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if err := n.peers.Do(rn.Addr, req, resp, peer.Timeout(n.cfg.PeerTimeout, n.cfg.PeerMinRate, int64(size)), true); err != nil {
		return nil, err
	}
	var res []api.ReplicaBatchResult
	if err := json.Unmarshal(resp.Body(), &res); err != nil || len(res) != len(group) {
		return nil, fmt.Errorf("peer %s: bad batch reply (%d results for %d objects): %v", rn.ID, len(res), len(group), err)
	}
	return res, nil
}

func (n *Server) StoreBatch(group []store.BatchItem) ([]api.ReplicaBatchResult, error) {
	res, err := n.store.PutBatch(n.life, group)
	if err != nil {
		return nil, err
	}
	out := make([]api.ReplicaBatchResult, len(res))
	for i, r := range res {
		out[i].Created = r.Created
		if r.Err != nil {
			_, out[i].Code = api.StatusOf(StoreError(r.Err))
			out[i].Stamp, _ = store.StampOf(r.Err)
		}
	}
	return out, nil
}

// HandleReplicaBatch stores a group of objects sent by a coordinator.
func (n *Server) HandleReplicaBatch(ctx *fasthttp.RequestCtx) error {
	if err := n.CheckPeer(ctx); err != nil {
		return err
	}
	items, release, err := n.readBatchBody(ctx, true)
	if err != nil {
		return err
	}
	defer release()
	for _, it := range items {
		n.clock.Observe(it.Stamp)
	}
	res, err := n.StoreBatch(items)
	if err != nil {
		return StoreError(err)
	}
	return httpbody.WriteCompactJSON(ctx, fasthttp.StatusOK, res)
}
