package refs

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/httpbody"
	"github.com/stratum-store/stratum/datanode/peer"
	"github.com/stratum-store/stratum/datanode/requestid"
)

// maxRefBody bounds a ref request body (MaxRefUpdates updates of names up
// to 1 KiB fit well within it) and an internal snapshot.
const maxRefBody = 64 << 20

// handleRepos serves /v1/repos/{repo}/refs[/{ref}] on any node: the
// partition's primary answers; any other node forwards the request to it,
// and retries within RefRetryWindow while the partition has no serving
// primary (a failover), since a not_primary refusal applied nothing.
func (r *Server) HandleRepos(ctx *fasthttp.RequestCtx, path string) error {
	decoded, err := url.PathUnescape(strings.TrimPrefix(path, api.PathRepos))
	if err != nil {
		return fmt.Errorf("%w: %v", api.ErrInvalidRepo, err)
	}
	repo, ref, err := api.ParseRepoPath(decoded)
	if err != nil {
		return err
	}
	switch {
	case ctx.IsGet(), ctx.IsPost() && ref == "":
	default:
		return fmt.Errorf("%w: %s on %s", api.ErrMethodNotAllowed, ctx.Method(), path)
	}
	id, err := r.partitionOf(repo)
	if err != nil {
		return err
	}
	var body []byte
	if ctx.IsPost() {
		var release func()
		if body, release, err = httpbody.RefTxn(ctx, r.d.Bodies); err != nil { // at most httpbody.MaxJSON and MaxRefUpdates, held against the body budget
			return err
		}
		defer release()
	}
	forwarded := len(ctx.Request.Header.Peek(api.HeaderForwarded)) > 0
	deadline := time.Now().Add(r.cfg.RetryWindow)
	for {
		err = r.routeRefs(ctx, id, repo, ref, body, forwarded)
		retry := errors.Is(err, api.ErrNotPrimary) || errors.Is(err, api.ErrNoPartitions)
		if !retry || forwarded || time.Now().After(deadline) || r.d.Closing() {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// routeRefs serves the request here if this node is the named primary, or
// forwards it once.
func (r *Server) routeRefs(ctx *fasthttp.RequestCtx, id int, repo, ref string, body []byte, forwarded bool) error {
	primary, ok := r.primaryOf(id)
	switch {
	case !ok:
		return fmt.Errorf("%w: partition %d has no record yet", api.ErrNoPartitions, id)
	case primary == r.cfg.ID:
		return r.serveRefs(ctx, id, repo, ref, body)
	case forwarded:
		return fmt.Errorf("%w: partition %d: this node is not its primary (%s is)", api.ErrNotPrimary, id, primary)
	}
	return r.forwardRefs(ctx, primary, body)
}

// serveRefs answers as the partition's primary.
func (r *Server) serveRefs(ctx *fasthttp.RequestCtx, id int, repo, ref string, body []byte) error {
	ctx.Response.Header.Set(api.HeaderNode, r.cfg.ID)
	switch {
	case ctx.IsPost():
		return r.serveTxn(ctx, repo, body)
	case ref != "":
		oid, found, err := r.get(id, repo, ref)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("%w: ref %s of %s", api.ErrNotFound, ref, repo)
		}
		return httpbody.WriteJSON(ctx, fasthttp.StatusOK, api.Ref{Name: ref, OID: oid})
	}
	args := ctx.QueryArgs()
	limit := api.MaxRefListLimit
	if s := args.Peek("limit"); len(s) > 0 {
		v, err := strconv.Atoi(string(s))
		if err != nil || v < 1 || v > api.MaxRefListLimit {
			return fmt.Errorf("%w: limit must be 1..%d", api.ErrBadRequest, api.MaxRefListLimit)
		}
		limit = v
	}
	list, err := r.list(id, repo, string(args.Peek("prefix")), string(args.Peek("after")), limit)
	if err != nil {
		return err
	}
	return httpbody.WriteJSON(ctx, fasthttp.StatusOK, list)
}

func (r *Server) serveTxn(ctx *fasthttp.RequestCtx, repo string, body []byte) error {
	t, err := httpbody.DecodeRefTxn(body) // stops at MaxRefUpdates
	if err != nil {
		return err
	}
	if err := api.ValidateRefTxn(t); err != nil {
		return err
	}
	require := string(ctx.QueryArgs().Peek("require_objects")) != "false"
	res, err := r.txn(r.d.Context(ctx), repo, t, require)
	switch {
	case errors.Is(err, api.ErrRefConflict):
		r.d.CountTxn("conflict")
		return r.writeConflict(ctx, err, res)
	case errors.Is(err, api.ErrMissingObject):
		r.d.CountTxn("missing_object")
	case errors.Is(err, api.ErrNotPrimary):
		r.d.CountTxn("refused")
	}
	if err != nil {
		return err
	}
	return httpbody.WriteJSON(ctx, fasthttp.StatusOK, res)
}

// writeConflict answers 409 with the JSON error and the current values of
// the refs that did not match.
func (r *Server) writeConflict(ctx *fasthttp.RequestCtx, err error, res api.RefTxnResult) error {
	_, code := api.StatusOf(err)
	ctx.Response.Header.Set(peer.HeaderErrorCode, code)
	return httpbody.WriteJSON(ctx, fasthttp.StatusConflict, api.RefConflict{
		Error: api.ErrorDetail{Code: code, Message: err.Error()}, RefTxnResult: res})
}

// forwardRefs sends the request to the primary and copies its answer back.
// A not_primary answer comes back as api.ErrNotPrimary so the caller can
// retry; anything else is the primary's answer, verbatim.
func (r *Server) forwardRefs(ctx *fasthttp.RequestCtx, primary string, body []byte) error {
	rn, ok := r.d.View().Ring.Node(primary)
	if !ok {
		return fmt.Errorf("%w: primary %s is not in the ring", api.ErrNotPrimary, primary)
	}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.Header.SetMethodBytes(ctx.Method())
	req.SetRequestURI(r.d.Peers.URL(rn.Addr, string(ctx.Request.Header.RequestURI())))
	req.Header.Set(api.HeaderForwarded, r.cfg.ID)
	r.d.Peers.AddCredential(req) // the primary trusts this node's check of the client
	req.Header.Set(requestid.Header, requestid.From(r.d.Context(ctx)))
	if body != nil {
		req.Header.SetContentType("application/json")
		req.SetBody(body)
	}
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	client, _ := r.d.Peers.Get(rn.Addr)
	if err := client.DoTimeout(req, resp, r.cfg.Timeout+r.cfg.RetryWindow); err != nil {
		// Nothing is known of a POST that got no answer: it may have run.
		if ctx.IsPost() {
			return fmt.Errorf("%w: forwarding to primary %s: %v", api.ErrOutcomeUnknown, primary, err)
		}
		return fmt.Errorf("%w: forwarding to primary %s: %v", api.ErrNotPrimary, primary, err)
	}
	if string(resp.Header.Peek(peer.HeaderErrorCode)) == "not_primary" {
		return fmt.Errorf("%w: %s refused: %s", api.ErrNotPrimary, primary, resp.Body())
	}
	ctx.SetStatusCode(resp.StatusCode())
	ctx.SetContentTypeBytes(resp.Header.ContentType())
	for _, h := range []string{peer.HeaderErrorCode, api.HeaderNode} {
		if v := resp.Header.Peek(h); len(v) > 0 {
			ctx.Response.Header.SetBytesV(h, v)
		}
	}
	ctx.SetBody(append([]byte(nil), resp.Body()...))
	return nil
}

// get reads one ref as primary: read, then check again that this node is
// still the serving primary (docs/refs.md, Reads).
func (r *Server) get(id int, repo, name string) (string, bool, error) {
	if !r.serving(id) {
		return "", false, fmt.Errorf("%w: partition %d", api.ErrNotPrimary, id)
	}
	oid, ok, err := r.store.Get(id, repo, name)
	if err == nil && !r.serving(id) {
		err = fmt.Errorf("%w: partition %d (lost primacy during the read)", api.ErrNotPrimary, id)
	}
	return oid, ok, err
}

func (r *Server) list(id int, repo, prefix, after string, limit int) (api.RefList, error) {
	if !r.serving(id) {
		return api.RefList{}, fmt.Errorf("%w: partition %d", api.ErrNotPrimary, id)
	}
	refs, next, err := r.store.List(id, repo, prefix, after, limit)
	if err == nil && !r.serving(id) {
		err = fmt.Errorf("%w: partition %d (lost primacy during the read)", api.ErrNotPrimary, id)
	}
	return api.RefList{Repo: repo, Refs: refs, Next: next}, err
}

// checkObjects refuses a transaction whose new OIDs are not all stored
// at quorum (Deps.Stored says which error: missing_object or
// quorum_not_reached).
func (r *Server) checkObjects(t api.RefTxn) error {
	var oids []api.OID
	for _, u := range t.Updates {
		if api.IsZeroOID(u.New) {
			continue
		}
		oid, err := api.ParseOID(u.New)
		if err != nil {
			return err
		}
		oids = append(oids, oid)
	}
	if len(oids) == 0 {
		return nil
	}
	return r.d.Stored(oids)
}

// servePlan answers GET /v1/partitions/plan with the planner round that
// would run now.
func (r *Server) ServePlan(ctx *fasthttp.RequestCtx) error {
	actions, err := r.d.Control.PlanPartitions(r.d.Context(ctx))
	if err != nil {
		return err
	}
	if actions == nil {
		actions = []api.PartitionAction{}
	}
	return httpbody.WriteJSON(ctx, fasthttp.StatusOK, map[string]any{"actions": actions})
}
