package objects

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"syscall"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/httpbody"
	"github.com/stratum-store/stratum/datanode/payload"
	"github.com/stratum-store/stratum/datanode/peer"
	"github.com/stratum-store/stratum/datanode/requestid"
	"github.com/stratum-store/stratum/datanode/store"
	"github.com/stratum-store/stratum/internal/planted"
	"github.com/stratum-store/stratum/ring"
)

// Replica protocol details that clients never see.
const (
	headerSize     = "X-Stratum-Size" // a replica's copy size, on GET and HEAD
	queryInlineMax = "inline_max"     // GET: send the body only up to this size
)

// This file holds both sides of a replica call: the coordinator's
// putReplica/getReplica/headReplica, which go straight to the local store
// when the replica is this node, and the handlers a peer serves under
// api.PathReplicas.

// PutReplica writes the copy p to rn with the write's stamp.
func (n *Server) PutReplica(ctx context.Context, rn ring.Node, oid api.OID, p *payload.Payload, rev int64, stamp api.Stamp) Result {
	res := Result{node: rn}
	if rn.ID == n.cfg.ID {
		res.created, res.Err = n.StorePut(ctx, oid, p, stamp)
		res.Err = StoreError(res.Err)
		return res
	}
	if p.File == nil {
		return n.coalescedPut(ctx, rn, rev, oid, p.Data, stamp)
	}
	req := n.peers.NewReplicaRequest(ctx, fasthttp.MethodPut, rn.Addr, oid, rev)
	req.Header.Set(api.HeaderStamp, stamp.String())
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if p.File != nil {
		req.SetBodyStream(p.Reader(), int(p.Size))
	} else {
		req.SetBodyRaw(p.Data)
	}
	res.Err = peer.WithStamp(n.peers.Do(rn.Addr, req, resp, peer.Timeout(n.cfg.PeerTimeout, n.cfg.PeerMinRate, p.Size), p.File == nil), resp)
	res.created = string(resp.Header.Peek(api.HeaderCreated)) == "true"
	return res
}

func (n *Server) StorePut(ctx context.Context, oid api.OID, p *payload.Payload, stamp api.Stamp) (bool, error) {
	if p.File != nil {
		return n.store.PutReaderStamped(ctx, oid, p.Reader(), p.Size, stamp)
	}
	return n.store.PutStamped(ctx, oid, p.Data, stamp)
}

func (n *Server) getReplica(ctx context.Context, rn ring.Node, oid api.OID, rev int64) Result {
	res := Result{node: rn}
	if rn.ID == n.cfg.ID {
		res.obj, res.Err = n.StoreGet(ctx, oid)
	} else {
		res.obj, res.Err = n.FetchRemote(ctx, rn, oid, rev)
	}
	if res.obj != nil {
		res.size, res.Stamp = res.obj.Size, res.obj.Stamp
	} else {
		res.Stamp = StampOf(res.Err)
	}
	return res
}

// StoreGet reads the local copy into a payload. Large copies are re-verified
// while they are spooled, so a copy damaged between the store's check and
// the read is never served.
func (n *Server) StoreGet(ctx context.Context, oid api.OID) (*payload.Payload, error) {
	obj, stamp, err := n.LocalCopy(ctx, oid)
	if err != nil {
		return nil, err
	}
	if obj.Body == nil {
		return &payload.Payload{Data: obj.Data, Size: obj.Size, Stamp: stamp}, nil
	}
	defer obj.Body.Close()
	p, err := payload.Read(obj.Body, oid, obj.Size, obj.Size, 0, n.spoolDir)
	if p != nil {
		p.Stamp = stamp
	}
	return p, err
}

// LocalCopy returns the verified local copy of oid and its stamp, or an
// error in the wire contract's terms (api.ErrDeleted with the tombstone's
// stamp, api.ErrNotFound, ...).
func (n *Server) LocalCopy(ctx context.Context, oid api.OID) (store.Object, api.Stamp, error) {
	e, err := n.store.Meta(ctx, oid)
	if err == nil && e.Deleted {
		err = &store.StampError{Kind: store.ErrDeleted, Stamp: e.Stamp, Deleted: true}
	}
	if err != nil {
		return store.Object{}, 0, StoreError(err)
	}
	obj, err := n.store.Get(ctx, oid)
	return obj, e.Stamp, StoreError(err)
}

// inlineMax is the largest copy a replica sends in answer to the first GET;
// for a larger one it answers with its size only, and the coordinator asks
// again with a deadline that fits that size.
const inlineMax = 1 << 20

// FetchRemote GETs a peer's copy, streaming it, and verifies it against oid.
func (n *Server) FetchRemote(ctx context.Context, rn ring.Node, oid api.OID, rev int64) (*payload.Payload, error) {
	p, size, err := n.fetchRemoteOnce(ctx, rn, oid, rev, inlineMax)
	if err == nil && p == nil {
		p, _, err = n.fetchRemoteOnce(ctx, rn, oid, rev, size)
	}
	return p, err
}

// fetchRemoteOnce asks for the copy if it is at most max bytes. It returns a
// nil payload and the size when the copy is larger.
func (n *Server) fetchRemoteOnce(ctx context.Context, rn ring.Node, oid api.OID, rev, max int64) (*payload.Payload, int64, error) {
	req := n.peers.NewReplicaRequest(ctx, fasthttp.MethodGet, rn.Addr, oid, rev)
	defer fasthttp.ReleaseRequest(req)
	req.URI().QueryArgs().Set(queryInlineMax, strconv.FormatInt(max, 10))
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	resp.StreamBody = true
	if err := n.peers.Do(rn.Addr, req, resp, peer.Timeout(n.cfg.PeerTimeout, n.cfg.PeerMinRate, max), true); err != nil {
		return nil, 0, peer.WithStamp(err, resp)
	}
	stamp, _ := api.ParseStamp(string(resp.Header.Peek(api.HeaderStamp)))
	size, err := strconv.ParseInt(string(resp.Header.Peek(headerSize)), 10, 64)
	if err != nil {
		return nil, 0, fmt.Errorf("peer %s: bad %s header: %w", rn.ID, headerSize, err)
	}
	if size > max {
		return nil, size, nil
	}
	p, err := n.readRemoteBody(resp, rn, oid, size)
	if p != nil {
		p.Stamp = stamp
	}
	return p, size, err
}

func (n *Server) readRemoteBody(resp *fasthttp.Response, rn ring.Node, oid api.OID, size int64) (*payload.Payload, error) {
	body := resp.BodyStream()
	if body == nil {
		body = bytes.NewReader(resp.Body())
	}
	p, err := payload.Read(body, oid, size, size, n.cfg.Store.LargeThreshold, n.spoolDir)
	if errors.Is(err, api.ErrDigestMismatch) {
		n.logger.Error("peer served a copy that fails verification", "oid", oid, "peer", rn.ID)
		return nil, fmt.Errorf("%w: copy on %s fails verification", api.ErrNotFound, rn.ID)
	}
	return p, err
}

func (n *Server) headReplica(ctx context.Context, rn ring.Node, oid api.OID, rev int64) Result {
	res := Result{node: rn}
	if rn.ID == n.cfg.ID {
		var e store.Entry
		e, res.Err = n.store.Meta(ctx, oid)
		if res.Err == nil && e.Deleted {
			res.Err = &store.StampError{Kind: store.ErrDeleted, Stamp: e.Stamp, Deleted: true}
		}
		res.size, res.Stamp, res.Err = e.Size, e.Stamp, StoreError(res.Err)
		return res
	}
	req := n.peers.NewReplicaRequest(ctx, fasthttp.MethodHead, rn.Addr, oid, rev)
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	resp.SkipBody = true
	res.Err = peer.WithStamp(n.peers.Do(rn.Addr, req, resp, n.cfg.PeerTimeout, true), resp)
	res.Stamp, _ = api.ParseStamp(string(resp.Header.Peek(api.HeaderStamp)))
	if res.Err == nil {
		res.size, res.Err = strconv.ParseInt(string(resp.Header.Peek(headerSize)), 10, 64)
	}
	return res
}

// StoreError translates the store's sentinels into the wire contract's.
// A corrupt copy counts as missing: it is logged by the store, never served.
func StoreError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrDeleted):
		return fmt.Errorf("%w: %w", api.ErrDeleted, err)
	case errors.Is(err, store.ErrSuperseded):
		return fmt.Errorf("%w: %w", api.ErrSuperseded, err)
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrCorrupt):
		return fmt.Errorf("%w: %v", api.ErrNotFound, err)
	case errors.Is(err, store.ErrTooLarge):
		return fmt.Errorf("%w: %v", api.ErrTooLarge, err)
	case errors.Is(err, store.ErrSizeMismatch), errors.Is(err, store.ErrBadValue):
		return fmt.Errorf("%w: %v", api.ErrBadRequest, err)
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("%w: %v", api.ErrNoSpace, err)
	}
	return err
}

// CheckPeer admits a node-to-node call: current ring, current generation.
func (n *Server) CheckPeer(ctx *fasthttp.RequestCtx) error {
	if n.fenced() {
		return fmt.Errorf("%w: this replica's generation is fenced; it takes no writes", api.ErrNotReady)
	}
	if err := n.checkFence(ctx); err != nil {
		return err
	}
	return n.d.CheckCaller(ctx)
}

// checkFence refuses a replica call made with an older ring than ours, and
// asks for a reload when the caller's ring is newer.
func (n *Server) checkFence(ctx *fasthttp.RequestCtx) error {
	rev, err := strconv.ParseInt(string(ctx.Request.Header.Peek(api.HeaderRingRevision)), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: missing or bad %s header", api.ErrBadRequest, api.HeaderRingRevision)
	}
	cur := n.Ring()
	switch {
	case cur == nil:
		return fmt.Errorf("%w: no ring yet", api.ErrNotReady)
	case rev < cur.Revision() && !planted.NoRingFence:
		return fmt.Errorf("%w: request used ring revision %d, this node has %d", api.ErrStaleRing, rev, cur.Revision())
	case rev > cur.Revision():
		n.d.Refresh()
	}
	return nil
}

// HandleReplica serves PUT, GET and HEAD of this node's own copy.
func (n *Server) HandleReplica(ctx *fasthttp.RequestCtx, oid api.OID) error {
	if err := n.CheckPeer(ctx); err != nil {
		return err
	}
	switch string(ctx.Method()) {
	case fasthttp.MethodPut:
		return n.replicaPut(ctx, oid)
	case fasthttp.MethodGet:
		return n.serveLocal(ctx, oid)
	case fasthttp.MethodHead:
		size, err := n.localStat(ctx, oid)
		if err != nil {
			return err
		}
		ctx.Response.Header.Set(headerSize, strconv.FormatInt(size, 10))
		// Without a Content-Length the fasthttp client reads the answer
		// as a body that ends at close and drops the connection: every
		// HEAD then dialled anew (a quarter of a GET's CPU, 2026-12-04).
		ctx.Response.Header.SetContentLength(int(size))
		return nil
	case fasthttp.MethodDelete:
		return n.replicaDelete(ctx, oid)
	}
	return api.ErrMethodNotAllowed
}

func (n *Server) replicaPut(ctx *fasthttp.RequestCtx, oid api.OID) error {
	size := int64(ctx.Request.Header.ContentLength())
	if size < 0 {
		return fmt.Errorf("%w: replica PUT needs a Content-Length", api.ErrBadRequest)
	}
	held, err := n.bodies.ReserveBody(size, n.cfg.Store.LargeThreshold)
	if err != nil {
		return err
	}
	defer n.bodies.Release(held)
	stamp, err := api.ParseStamp(string(ctx.Request.Header.Peek(api.HeaderStamp)))
	if err != nil {
		return err
	}
	n.clock.Observe(stamp)
	created, err := n.store.PutReaderStamped(n.RequestContext(ctx), oid, httpbody.Reader(ctx), size, stamp)
	if err != nil {
		return StoreError(err)
	}
	n.logger.Debug("replica write", "request_id", requestid.Of(ctx), "oid", oid, "created", created)
	ctx.Response.Header.Set(api.HeaderCreated, strconv.FormatBool(created))
	ctx.SetStatusCode(fasthttp.StatusCreated)
	if !created {
		ctx.SetStatusCode(fasthttp.StatusOK)
	}
	return nil
}

// serveLocal sends this node's verified copy, with its size in headerSize;
// a corrupt copy is a 404. A copy larger than the caller's inline_max is
// answered with its size alone.
func (n *Server) serveLocal(ctx *fasthttp.RequestCtx, oid api.OID) error {
	max, err := strconv.ParseInt(string(ctx.QueryArgs().Peek(queryInlineMax)), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: bad %s", api.ErrBadRequest, queryInlineMax)
	}
	size, err := n.localStat(ctx, oid)
	if err != nil {
		return err
	}
	ctx.Response.Header.Set(headerSize, strconv.FormatInt(size, 10))
	if size > max {
		return nil
	}
	obj, err := n.store.Get(n.life, oid)
	if err != nil {
		return StoreError(err)
	}
	if obj.Body != nil {
		ctx.SetBodyStream(obj.Body, int(obj.Size))
	} else {
		ctx.SetBody(obj.Data)
	}
	return nil
}

// localStat answers a peer's HEAD or GET with this node's entry: the size
// (and the stamp, in api.HeaderStamp) of its copy, or 404 deleted with the
// tombstone's stamp, or 404 not_found.
func (n *Server) localStat(ctx *fasthttp.RequestCtx, oid api.OID) (int64, error) {
	e, err := n.store.Meta(n.life, oid)
	if err == nil && e.Deleted {
		err = &store.StampError{Kind: store.ErrDeleted, Stamp: e.Stamp, Deleted: true}
	}
	if err != nil {
		return 0, StoreError(err)
	}
	if e.Stamp != 0 {
		ctx.Response.Header.Set(api.HeaderStamp, e.Stamp.String())
	}
	return e.Size, nil
}

// StampOf returns the stamp an error names (a local store's or a peer's),
// or 0.
func StampOf(err error) api.Stamp {
	if se, ok := errors.AsType[*peer.StampedError](err); ok {
		return se.Stamp
	}
	st, _ := store.StampOf(err)
	return st
}
