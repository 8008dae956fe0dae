package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/httpbody"
	"github.com/stratum-store/stratum/datanode/objects"
	"github.com/stratum-store/stratum/datanode/peer"
	"github.com/stratum-store/stratum/datanode/requestid"
)

// writeBuffer is each connection's response buffer. fasthttp's default,
// 4 KiB, split a 4 KiB object and its header into two socket writes (and
// the client's two reads); at 8 KiB one write carries both, which raised
// 4 KiB GETs 11-18 % (docs/performance.md, "One write per answer").
const writeBuffer = 8 << 10

func (n *Router) NewServer() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:                      n.handle,
		ErrorHandler:                 n.handleTransportError,
		Name:                         "stratum",
		ReadTimeout:                  n.cfg.HeaderTimeout,
		HeaderReceived:               n.bodyDeadline,
		WriteTimeout:                 n.cfg.RequestTimeout,
		IdleTimeout:                  n.cfg.IdleTimeout,
		MaxRequestBodySize:           int(n.cfg.Store.MaxObjectSize),
		ReadBufferSize:               n.cfg.MaxHeaderBytes, // bounds the request line and header
		WriteBufferSize:              writeBuffer,
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		Logger:                       fasthttpLogger{n.logger},
	}
}

// bodyDeadline gives a request's body its time once the header is in:
// HeaderTimeout plus its length at MinBodyRate, at most RequestTimeout
// (a chunked body, whose length is unknown, gets RequestTimeout). The
// server's ReadTimeout (HeaderTimeout) covered the header alone.
func (n *Router) bodyDeadline(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	d := n.cfg.RequestTimeout
	if l := h.ContentLength(); l >= 0 {
		d = min(d, n.cfg.HeaderTimeout+time.Duration(float64(l)/float64(n.cfg.MinBodyRate)*float64(time.Second)))
	}
	return fasthttp.RequestConfig{ReadTimeout: d}
}

// handle routes on the raw request path through the route table
// (routes.go): fasthttp normalises ctx.Path() (decoding %2f and resolving
// ".."), and an OID must be judged as sent.
func (n *Router) handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	path := rawPath(ctx)
	id := requestid.Incoming(ctx)
	requestid.Set(ctx, id)
	if err := n.admit(ctx, path); err != nil {
		n.writeError(ctx, err)
		if r := routeAt(path); r.refused != nil {
			r.refused(ctx, err) // a browser's or git's challenge
		}
		return
	}
	if counted(path) {
		if n.active.Add(1) > int64(n.cfg.MaxInflight) {
			n.active.Add(-1)
			n.metrics.Observe(routeOf(path), string(ctx.Method()), fasthttp.StatusTooManyRequests, time.Since(start))
			n.writeError(ctx, fmt.Errorf("%w: %d requests in flight, the limit is %d; retry later", api.ErrBusy, n.cfg.MaxInflight, n.cfg.MaxInflight))
			ctx.Response.Header.Set(requestid.Header, id)
			ctx.SetConnectionClose()
			return
		}
		defer n.active.Add(-1)
	}
	defer func() {
		status := ctx.Response.StatusCode()
		ctx.Response.Header.Set(requestid.Header, id)
		n.metrics.Observe(routeOf(path), string(ctx.Method()), status, time.Since(start))
		n.logger.Debug("request", "method", string(ctx.Method()), "path", path, "status", status,
			"request_id", id, "took", time.Since(start))
	}()
	if r := n.Ring(); r != nil {
		ctx.Response.Header.Set(api.HeaderRingRevision, strconv.FormatInt(r.Revision(), 10))
	}
	if err := routeFor(string(ctx.Method()), path).serve(n, ctx, path); err != nil {
		n.writeError(ctx, err)
	}
}

// admit runs the checks a request passes before it is routed: not a
// cross-site change (browser.go), its credentials (auth.go), and a JSON
// content type on JSON routes.
func (n *Router) admit(ctx *fasthttp.RequestCtx, path string) error {
	if err := refuseCrossSite(ctx); err != nil {
		return err
	}
	if err := n.authorize(ctx, path); err != nil {
		return err
	}
	return requireJSON(ctx, path)
}

func rawPath(ctx *fasthttp.RequestCtx) string {
	uri := string(ctx.Request.Header.RequestURI())
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		uri = uri[:i]
	}
	if strings.HasPrefix(uri, "http://") || strings.HasPrefix(uri, "https://") {
		if i := strings.IndexByte(uri[8:], '/'); i >= 0 {
			uri = uri[8+i:]
		}
	}
	return uri
}

func (n *Router) withOID(ctx *fasthttp.RequestCtx, s string, h func(*fasthttp.RequestCtx, api.OID) error) error {
	oid, err := api.ParseOID(s)
	if err != nil {
		return err
	}
	ctx.Response.Header.Set(api.HeaderNode, n.cfg.ID)
	return h(ctx, oid)
}

func (n *Router) writeError(ctx *fasthttp.RequestCtx, err error) {
	status, body := api.EncodeError(err)
	_, code := api.StatusOf(err)
	if status >= 500 {
		n.errors.add(string(ctx.Method()) + " " + rawPath(ctx) + ": " + err.Error())
		n.logger.Error("request failed", "method", string(ctx.Method()), "path", rawPath(ctx), "err", err)
	}
	ctx.Response.Reset()
	ctx.Response.Header.Set(peer.HeaderErrorCode, code)
	if st := objects.StampOf(err); st != 0 {
		ctx.Response.Header.Set(api.HeaderStamp, st.String())
	}
	n.logger.Debug("request failed", "request_id", requestid.Of(ctx), "code", code, "err", err)
	ctx.Response.Header.Set(api.HeaderNode, n.cfg.ID)
	if r := n.Ring(); r != nil {
		ctx.Response.Header.Set(api.HeaderRingRevision, strconv.FormatInt(r.Revision(), 10))
	}
	ctx.SetContentType("application/json")
	ctx.SetStatusCode(status)
	ctx.SetBody(body)
}

// handleTransportError answers requests fasthttp rejected before routing,
// with the JSON error body: an oversized body is 413 too_large, not a bare 400.
func (n *Router) handleTransportError(ctx *fasthttp.RequestCtx, err error) {
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		n.writeError(ctx, errors.Join(api.ErrTooLarge, err))
		return
	}
	var small *fasthttp.ErrSmallBuffer
	if errors.As(err, &small) || errors.Is(err, fasthttp.ErrSmallReadBuffer) {
		n.writeError(ctx, fmt.Errorf("%w: request line and header exceed %d bytes", api.ErrTooLarge, n.cfg.MaxHeaderBytes))
		ctx.SetConnectionClose()
		return
	}
	if httpbody.IsTimeout(err) {
		n.writeError(ctx, errors.Join(api.ErrRequestTimeout, err))
		ctx.SetConnectionClose()
		return
	}
	n.writeError(ctx, errors.Join(api.ErrBadRequest, err))
}

// fasthttpLogger sends fasthttp's own messages to the node's logger.
type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Warn("fasthttp", "msg", strings.TrimSpace(fmt.Sprintf(format, args...)))
}
