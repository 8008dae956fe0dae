package datanode

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/store"
	"github.com/stratum-store/stratum/ring"
)

// handleBatch serves the batch endpoints: POST /v1/objects:has, :get, :put.
func (n *Node) handleBatch(ctx *fasthttp.RequestCtx, path string) error {
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

// reserveBatch reserves memory for a batch body: its declared length, or
// the batch maximum when the length is unknown.
func (n *Node) reserveBatch(ctx *fasthttp.RequestCtx) (release func(), err error) {
	size := int64(ctx.Request.Header.ContentLength())
	if size < 0 || size > api.MaxBatchBytes {
		size = api.MaxBatchBytes
	}
	held, err := n.bodies.reserveBody(size, api.MaxBatchBytes)
	return func() { n.bodies.release(held) }, err
}

// readFrames reads up to MaxBatchObjects small objects.
func (n *Node) readFrames(r io.Reader) ([]store.BatchItem, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, api.MaxBatchBytes+1), 64<<10)
	var items []store.BatchItem
	for {
		oid, data, code, err := api.ReadFrame(br, n.cfg.Store.LargeThreshold)
		if err == io.EOF {
			return items, nil
		}
		if err != nil {
			return nil, err
		}
		if code != "" {
			return nil, fmt.Errorf("%w: a missing-object frame in a PUT", api.ErrBadRequest)
		}
		if len(items) == api.MaxBatchObjects {
			return nil, fmt.Errorf("%w: more than %d objects in one batch", api.ErrTooLarge, api.MaxBatchObjects)
		}
		items = append(items, store.BatchItem{OID: oid, Data: data})
	}
}

func (n *Node) readOIDList(ctx *fasthttp.RequestCtx) ([]api.OID, error) {
	var list api.OIDList
	if err := json.NewDecoder(io.LimitReader(n.bodyReader(ctx), api.MaxBatchBytes)).Decode(&list); err != nil {
		return nil, fmt.Errorf("%w: body must be {\"oids\":[...]}: %v", api.ErrBadRequest, err)
	}
	if len(list.OIDs) > api.MaxBatchObjects {
		return nil, fmt.Errorf("%w: %d OIDs, at most %d per batch", api.ErrTooLarge, len(list.OIDs), api.MaxBatchObjects)
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
func (n *Node) batchPut(ctx *fasthttp.RequestCtx, level api.Consistency) error {
	if !n.Ready() {
		return fmt.Errorf("%w: this node coordinates no writes (no ring, or fenced)", api.ErrNotReady)
	}
	release, err := n.reserveBatch(ctx)
	if err != nil {
		return err
	}
	defer release()
	items, err := n.readFrames(n.bodyReader(ctx))
	if err != nil {
		return err
	}
	reply := api.BatchPutReply{Items: make([]api.BatchPutItem, len(items))}
	groups, need, rev := n.groupForWrite(items, reply.Items, level)
	n.sendGroups(groups, items, rev, reply.Items)
	for i := range reply.Items {
		it := &reply.Items[i]
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
	return n.writeJSON(ctx, fasthttp.StatusOK, reply)
}

// groupForWrite verifies each item and assigns it to its eligible write
// replicas: node ID -> item indexes.
func (n *Node) groupForWrite(items []store.BatchItem, out []api.BatchPutItem, level api.Consistency) (map[ring.Node][]int, int, int64) {
	v := n.view.Load()
	need := 0
	groups := map[ring.Node][]int{}
	for i, it := range items {
		out[i].OID = it.OID.String()
		if err := api.Verify(it.OID, it.Data); err != nil {
			out[i].Error = errorDetail(err)
			continue
		}
		for _, rn := range v.write.Replicas([]byte(it.OID.String())) {
			if v.state(rn.ID).WriteTarget() {
				groups[rn] = append(groups[rn], i)
			}
		}
	}
	need = level.Required(v.ring.ReplicationFactor())
	return groups, need, v.ring.Revision()
}

func errorDetail(err error) *api.ErrorDetail {
	_, code := api.StatusOf(err)
	return &api.ErrorDetail{Code: code, Message: err.Error()}
}

// sendGroups writes each group to its replica in parallel and records the
// acknowledgements per item.
func (n *Node) sendGroups(groups map[ring.Node][]int, items []store.BatchItem, rev int64, out []api.BatchPutItem) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for rn, idx := range groups {
		wg.Add(1)
		n.inflight.Add(1)
		go func() {
			defer wg.Done()
			defer n.inflight.Done()
			res, err := n.putGroup(rn, items, idx, rev)
			mu.Lock()
			defer mu.Unlock()
			for j, i := range idx {
				switch {
				case err != nil:
					n.logger.Warn("batch replica write failed", "replica", rn.ID, "objects", len(idx), "err", err)
				case res[j].Code == "":
					out[i].Acked = append(out[i].Acked, rn.ID)
					out[i].Created = out[i].Created || res[j].Created
				}
			}
		}()
	}
	wg.Wait()
}

func (n *Node) putGroup(rn ring.Node, items []store.BatchItem, idx []int, rev int64) ([]api.ReplicaBatchResult, error) {
	group := make([]store.BatchItem, len(idx))
	size := 0
	for j, i := range idx {
		group[j] = items[i]
		size += len(items[i].Data)
	}
	if rn.ID == n.cfg.ID {
		return n.storeBatch(group)
	}
	var body bytes.Buffer
	for _, it := range group {
		api.WriteFrame(&body, it.OID, it.Data)
	}
	req := n.newPeerRequest(fasthttp.MethodPost, rn.Addr, api.PathReplicaBatch, rev)
	defer fasthttp.ReleaseRequest(req)
	req.SetBodyRaw(body.Bytes())
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if err := n.do(rn.Addr, req, resp, n.cfg.peerTimeout(int64(size)), true); err != nil {
		return nil, err
	}
	var res []api.ReplicaBatchResult
	if err := json.Unmarshal(resp.Body(), &res); err != nil || len(res) != len(group) {
		return nil, fmt.Errorf("peer %s: bad batch reply (%d results for %d objects): %v", rn.ID, len(res), len(group), err)
	}
	return res, nil
}

func (n *Node) storeBatch(group []store.BatchItem) ([]api.ReplicaBatchResult, error) {
	res, err := n.store.PutBatch(n.life, group)
	if err != nil {
		return nil, err
	}
	out := make([]api.ReplicaBatchResult, len(res))
	for i, r := range res {
		out[i].Created = r.Created
		if r.Err != nil {
			_, out[i].Code = api.StatusOf(storeError(r.Err))
		}
	}
	return out, nil
}

// handleReplicaBatch stores a group of objects sent by a coordinator.
func (n *Node) handleReplicaBatch(ctx *fasthttp.RequestCtx) error {
	if err := n.checkPeer(ctx); err != nil {
		return err
	}
	release, err := n.reserveBatch(ctx)
	if err != nil {
		return err
	}
	defer release()
	items, err := n.readFrames(n.bodyReader(ctx))
	if err != nil {
		return err
	}
	res, err := n.storeBatch(items)
	if err != nil {
		return storeError(err)
	}
	return n.writeJSON(ctx, fasthttp.StatusOK, res)
}

// handleReplicaHas answers which of the listed OIDs this node holds.
func (n *Node) handleReplicaHas(ctx *fasthttp.RequestCtx) error {
	if err := n.checkPeer(ctx); err != nil {
		return err
	}
	oids, err := n.readOIDList(ctx)
	if err != nil {
		return err
	}
	has, err := n.store.HasMany(ctx, oids)
	if err != nil {
		return storeError(err)
	}
	return n.writeJSON(ctx, fasthttp.StatusOK, map[string][]bool{"present": has})
}

// presence asks every readable replica of every OID whether it holds a
// copy, one request per node, and returns per OID how many replicas
// answered and which of them hold it.
func (n *Node) presence(oids []api.OID) (answers []int, holders [][]ring.Node, v *view) {
	v = n.view.Load()
	groups := map[ring.Node][]int{}
	for i, oid := range oids {
		key := []byte(oid.String())
		for _, rn := range uniqueNodes(v.ring.Replicas(key), v.write.Replicas(key)) {
			if v.state(rn.ID).ReadTarget() {
				groups[rn] = append(groups[rn], i)
			}
		}
	}
	answers, holders = make([]int, len(oids)), make([][]ring.Node, len(oids))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for rn, idx := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			has, err := n.hasGroup(rn, oids, idx, v.ring.Revision())
			if err != nil {
				n.logger.Warn("batch has failed on a replica", "replica", rn.ID, "err", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for j, i := range idx {
				answers[i]++
				if has[j] {
					holders[i] = append(holders[i], rn)
				}
			}
		}()
	}
	wg.Wait()
	return answers, holders, v
}

// batchHas classifies each OID like a single read would: present once a
// replica has it and enough answered, missing once enough answered without
// it, unknown otherwise.
func (n *Node) batchHas(ctx *fasthttp.RequestCtx, level api.Consistency) error {
	oids, err := n.readOIDList(ctx)
	if err != nil {
		return err
	}
	answers, holders, v := n.presence(oids)
	need := level.Required(v.ring.ReplicationFactor())
	reply := api.HasReply{Present: []string{}, Missing: []string{}}
	for i, oid := range oids {
		switch {
		case answers[i] >= need && len(holders[i]) > 0:
			reply.Present = append(reply.Present, oid.String())
		case answers[i] >= need:
			reply.Missing = append(reply.Missing, oid.String())
		default:
			reply.Unknown = append(reply.Unknown, oid.String())
		}
	}
	return n.writeJSON(ctx, fasthttp.StatusOK, reply)
}

func uniqueNodes(a, b []ring.Node) []ring.Node {
	out := append([]ring.Node{}, a...)
	for _, rn := range b {
		dup := false
		for _, x := range out {
			dup = dup || x.ID == rn.ID
		}
		if !dup {
			out = append(out, rn)
		}
	}
	return out
}

func (n *Node) hasGroup(rn ring.Node, oids []api.OID, idx []int, rev int64) ([]bool, error) {
	group := make([]api.OID, len(idx))
	list := api.OIDList{OIDs: make([]string, len(idx))}
	for j, i := range idx {
		group[j], list.OIDs[j] = oids[i], oids[i].String()
	}
	if rn.ID == n.cfg.ID {
		return n.store.HasMany(n.life, group)
	}
	body, _ := json.Marshal(list)
	req := n.newPeerRequest(fasthttp.MethodPost, rn.Addr, api.PathReplicaHas, rev)
	defer fasthttp.ReleaseRequest(req)
	req.SetBodyRaw(body)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if err := n.do(rn.Addr, req, resp, n.cfg.PeerTimeout, true); err != nil {
		return nil, err
	}
	var out struct {
		Present []bool `json:"present"`
	}
	if err := json.Unmarshal(resp.Body(), &out); err != nil || len(out.Present) != len(group) {
		return nil, fmt.Errorf("peer %s: bad has reply: %v", rn.ID, err)
	}
	return out.Present, nil
}

// batchGet streams the objects as frames, in request order. It learns
// which replicas hold each object with one presence request per node, reads
// local copies from the store and fetches the others in one request per
// holding node; an object whose fetched copy fails verification is read
// again alone. An object that cannot be returned gets a missing frame with
// its error code, decided as a single read would decide it.
func (n *Node) batchGet(ctx *fasthttp.RequestCtx, level api.Consistency) error {
	oids, err := n.readOIDList(ctx)
	if err != nil {
		return err
	}
	answers, holders, v := n.presence(oids)
	need := level.Required(v.ring.ReplicationFactor())
	bodies := n.fetchBodies(oids, answers, holders, need, v.ring.Revision())
	life := n.life
	ctx.SetContentType("application/octet-stream")
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		for i, oid := range oids {
			data, err := bodies[i], error(nil)
			switch {
			case answers[i] < need:
				err = fmt.Errorf("%w: %d replicas answered", api.ErrQuorumNotReached, answers[i])
			case len(holders[i]) == 0:
				err = api.ErrNotFound
			case data == nil: // the batched copy was missing or bad: read it alone
				var p *payload
				if p, err = n.Get(life, oid, level); err == nil {
					data, _ = io.ReadAll(p.reader())
					p.hold(1)
					p.release()
				}
			}
			if err != nil {
				_, code := api.StatusOf(err)
				api.WriteMissingFrame(w, oid, code)
				continue
			}
			api.WriteFrame(w, oid, data)
		}
		w.Flush()
	})
	return nil
}

// fetchBodies returns the verified bytes of every object that enough
// replicas answered for and some replica holds: local copies from the
// store, the others batched per holding node. Entries it could not get
// verified stay nil.
func (n *Node) fetchBodies(oids []api.OID, answers []int, holders [][]ring.Node, need int, rev int64) [][]byte {
	bodies := make([][]byte, len(oids))
	groups := map[ring.Node][]int{}
	for i := range oids {
		if answers[i] < need || len(holders[i]) == 0 {
			continue
		}
		src := holders[i][0]
		for _, h := range holders[i] {
			if h.ID == n.cfg.ID {
				src = h
			}
		}
		groups[src] = append(groups[src], i)
	}
	var wg sync.WaitGroup
	for rn, idx := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.fetchGroup(rn, oids, idx, rev, bodies)
		}()
	}
	wg.Wait()
	return bodies
}

// fetchGroup fills bodies[i] for the objects idx held by rn. Each index is
// written by exactly one group, so no lock is needed.
func (n *Node) fetchGroup(rn ring.Node, oids []api.OID, idx []int, rev int64, bodies [][]byte) {
	if rn.ID == n.cfg.ID {
		for _, i := range idx {
			if obj, err := n.store.Get(n.life, oids[i]); err == nil && obj.Body == nil {
				bodies[i] = obj.Data
			}
		}
		return
	}
	list := api.OIDList{OIDs: make([]string, len(idx))}
	for j, i := range idx {
		list.OIDs[j] = oids[i].String()
	}
	body, _ := json.Marshal(list)
	req := n.newPeerRequest(fasthttp.MethodPost, rn.Addr, api.PathReplicaGet, rev)
	defer fasthttp.ReleaseRequest(req)
	req.SetBodyRaw(body)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if err := n.do(rn.Addr, req, resp, n.cfg.peerTimeout(int64(len(idx))*n.cfg.Store.LargeThreshold), true); err != nil {
		n.logger.Warn("batch fetch failed", "replica", rn.ID, "err", err)
		return
	}
	r := bufio.NewReader(bytes.NewReader(resp.Body()))
	for _, i := range idx {
		oid, data, code, err := api.ReadFrame(r, n.cfg.Store.LargeThreshold)
		if err != nil {
			return
		}
		if code == "" && oid == oids[i] && api.Verify(oid, data) == nil {
			bodies[i] = data
		}
	}
}

// handleReplicaGet sends this node's verified copies of the listed small
// objects as frames; large or missing ones get a missing frame.
func (n *Node) handleReplicaGet(ctx *fasthttp.RequestCtx) error {
	if err := n.checkPeer(ctx); err != nil {
		return err
	}
	oids, err := n.readOIDList(ctx)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, oid := range oids {
		obj, err := n.store.Get(ctx, oid)
		switch {
		case err != nil:
			_, code := api.StatusOf(storeError(err))
			api.WriteMissingFrame(&buf, oid, code)
		case obj.Body != nil:
			obj.Body.Close()
			api.WriteMissingFrame(&buf, oid, "too_large")
		default:
			api.WriteFrame(&buf, oid, obj.Data)
		}
	}
	ctx.SetContentType("application/octet-stream")
	ctx.SetBody(buf.Bytes())
	return nil
}
