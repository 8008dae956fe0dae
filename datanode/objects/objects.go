package objects

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/httpbody"
	"github.com/stratum-store/stratum/datanode/payload"
	"github.com/stratum-store/stratum/datanode/requestid"
)

// HandleObject serves the public object API: PUT, GET, HEAD and DELETE of
// /v1/objects/{oid}, coordinated across the object's replicas.
func (n *Server) HandleObject(ctx *fasthttp.RequestCtx, oid api.OID) error {
	rctx := n.RequestContext(ctx)
	level, err := api.ParseConsistency(string(ctx.QueryArgs().Peek(api.QueryConsistency)))
	if err != nil {
		return err
	}
	if !n.d.Ready() {
		return fmt.Errorf("%w: node %s has no ring or no live registration", api.ErrNotReady, n.cfg.ID)
	}
	switch string(ctx.Method()) {
	case fasthttp.MethodPut:
		return n.handlePut(ctx, rctx, oid, level)
	case fasthttp.MethodGet:
		return n.handleGet(ctx, rctx, oid, level)
	case fasthttp.MethodHead:
		size, err := n.Head(rctx, oid, level)
		if err != nil {
			return err
		}
		n.objectHeaders(ctx, oid, size)
		ctx.Response.SkipBody = true
		ctx.Response.Header.SetContentLength(int(size))
		return nil
	}
	if ctx.IsDelete() {
		rec, err := n.Delete(rctx, oid, level)
		if err != nil {
			n.countQuorumFailure("delete", err)
			return err
		}
		return httpbody.WriteJSON(ctx, fasthttp.StatusOK, rec)
	}
	ctx.Response.Header.Set("Allow", "PUT, GET, HEAD, DELETE")
	return fmt.Errorf("%w: %s on an object; use PUT, GET, HEAD or DELETE", api.ErrMethodNotAllowed, ctx.Method())
}

func (n *Server) handlePut(ctx *fasthttp.RequestCtx, rctx context.Context, oid api.OID, level api.Consistency) error {
	size := int64(ctx.Request.Header.ContentLength())
	held, err := n.bodies.ReserveBody(size, n.cfg.Store.LargeThreshold)
	if err != nil {
		return err
	}
	p, err := payload.Read(httpbody.Reader(ctx), oid, size, n.cfg.Store.MaxObjectSize, n.cfg.Store.LargeThreshold, n.spoolDir)
	if err != nil {
		n.bodies.Release(held)
		return err
	}
	p.Free = func() { n.bodies.Release(held) } // after the last background replica write
	p.Hold(1)
	defer p.Release()
	rec, err := n.Put(rctx, oid, p, level)
	if err != nil {
		n.countQuorumFailure("put", err)
		return err
	}
	status := fasthttp.StatusOK
	if rec.Created {
		status = fasthttp.StatusCreated
	}
	return httpbody.WriteJSON(ctx, status, rec)
}

func (n *Server) handleGet(ctx *fasthttp.RequestCtx, rctx context.Context, oid api.OID, level api.Consistency) error {
	p, err := n.Get(rctx, oid, level)
	if err != nil {
		n.countQuorumFailure("get", err)
		return err
	}
	n.objectHeaders(ctx, oid, p.Size)
	if p.File != nil {
		p.Hold(1)
		ctx.SetBodyStream(&releasingReader{Reader: p.Reader(), p: p}, int(p.Size))
		return nil
	}
	ctx.SetBody(p.Data)
	return nil
}

func (n *Server) objectHeaders(ctx *fasthttp.RequestCtx, oid api.OID, size int64) {
	ctx.Response.Header.Set("ETag", `"`+oid.String()+`"`)
	ctx.Response.Header.Set(headerSize, strconv.FormatInt(size, 10))
	ctx.SetContentType("application/octet-stream")
}

// RequestContext is the context coordinated work runs under: the node's
// lifetime (not the RequestCtx, which fasthttp recycles while replica calls
// may still run) plus the request's ID.
func (n *Server) RequestContext(ctx *fasthttp.RequestCtx) context.Context {
	return requestid.With(n.life, requestid.Of(ctx))
}

// releasingReader releases a spooled payload when fasthttp closes the body
// stream after sending it.
type releasingReader struct {
	io.Reader
	p *payload.Payload
}

// Close releases the payload.
func (r *releasingReader) Close() error {
	r.p.Release()
	return nil
}

// countQuorumFailure counts a coordinated request that missed its level.
func (n *Server) countQuorumFailure(op string, err error) {
	if errors.Is(err, api.ErrQuorumNotReached) {
		n.metrics.QuorumFailures.WithLabelValues(op).Inc()
	}
}
