package datanode

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
func (n *Node) handleRepos(ctx *fasthttp.RequestCtx, path string) error {
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
	id, err := n.refs.partitionOf(repo)
	if err != nil {
		return err
	}
	var body []byte
	if ctx.IsPost() {
		var release func()
		if body, release, err = httpbody.RefTxn(ctx, n.bodies); err != nil { // at most httpbody.MaxJSON and MaxRefUpdates, held against the body budget
			return err
		}
		defer release()
	}
	forwarded := len(ctx.Request.Header.Peek(api.HeaderForwarded)) > 0
	deadline := time.Now().Add(n.cfg.RefRetryWindow)
	for {
		err = n.routeRefs(ctx, id, repo, ref, body, forwarded)
		retry := errors.Is(err, api.ErrNotPrimary) || errors.Is(err, api.ErrNoPartitions)
		if !retry || forwarded || time.Now().After(deadline) || n.closing.Load() {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// routeRefs serves the request here if this node is the named primary, or
// forwards it once.
func (n *Node) routeRefs(ctx *fasthttp.RequestCtx, id int, repo, ref string, body []byte, forwarded bool) error {
	primary, ok := n.refs.primaryOf(id)
	switch {
	case !ok:
		return fmt.Errorf("%w: partition %d has no record yet", api.ErrNoPartitions, id)
	case primary == n.cfg.ID:
		return n.serveRefs(ctx, id, repo, ref, body)
	case forwarded:
		return fmt.Errorf("%w: partition %d: this node is not its primary (%s is)", api.ErrNotPrimary, id, primary)
	}
	return n.forwardRefs(ctx, primary, body)
}

// serveRefs answers as the partition's primary.
func (n *Node) serveRefs(ctx *fasthttp.RequestCtx, id int, repo, ref string, body []byte) error {
	ctx.Response.Header.Set(api.HeaderNode, n.cfg.ID)
	switch {
	case ctx.IsPost():
		return n.serveTxn(ctx, repo, body)
	case ref != "":
		oid, found, err := n.refs.get(id, repo, ref)
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
	list, err := n.refs.list(id, repo, string(args.Peek("prefix")), string(args.Peek("after")), limit)
	if err != nil {
		return err
	}
	return httpbody.WriteJSON(ctx, fasthttp.StatusOK, list)
}

func (n *Node) serveTxn(ctx *fasthttp.RequestCtx, repo string, body []byte) error {
	t, err := httpbody.DecodeRefTxn(body) // stops at MaxRefUpdates
	if err != nil {
		return err
	}
	if err := api.ValidateRefTxn(t); err != nil {
		return err
	}
	require := string(ctx.QueryArgs().Peek("require_objects")) != "false"
	res, err := n.refs.txn(n.requestContext(ctx), repo, t, require)
	switch {
	case errors.Is(err, api.ErrRefConflict):
		n.metrics.refTxns.WithLabelValues("conflict").Inc()
		return n.writeConflict(ctx, err, res)
	case errors.Is(err, api.ErrMissingObject):
		n.metrics.refTxns.WithLabelValues("missing_object").Inc()
	case errors.Is(err, api.ErrNotPrimary):
		n.metrics.refTxns.WithLabelValues("refused").Inc()
	}
	if err != nil {
		return err
	}
	return httpbody.WriteJSON(ctx, fasthttp.StatusOK, res)
}

// writeConflict answers 409 with the JSON error and the current values of
// the refs that did not match.
func (n *Node) writeConflict(ctx *fasthttp.RequestCtx, err error, res api.RefTxnResult) error {
	_, code := api.StatusOf(err)
	ctx.Response.Header.Set(peer.HeaderErrorCode, code)
	return httpbody.WriteJSON(ctx, fasthttp.StatusConflict, api.RefConflict{
		Error: api.ErrorDetail{Code: code, Message: err.Error()}, RefTxnResult: res})
}

// forwardRefs sends the request to the primary and copies its answer back.
// A not_primary answer comes back as api.ErrNotPrimary so the caller can
// retry; anything else is the primary's answer, verbatim.
func (n *Node) forwardRefs(ctx *fasthttp.RequestCtx, primary string, body []byte) error {
	rn, ok := n.view.Load().Ring.Node(primary)
	if !ok {
		return fmt.Errorf("%w: primary %s is not in the ring", api.ErrNotPrimary, primary)
	}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.Header.SetMethodBytes(ctx.Method())
	req.SetRequestURI(n.peers.URL(rn.Addr, string(ctx.Request.Header.RequestURI())))
	req.Header.Set(api.HeaderForwarded, n.cfg.ID)
	n.peers.AddCredential(req) // the primary trusts this node's check of the client
	req.Header.Set(requestid.Header, requestid.From(n.requestContext(ctx)))
	if body != nil {
		req.Header.SetContentType("application/json")
		req.SetBody(body)
	}
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	client, _ := n.peers.Get(rn.Addr)
	if err := client.DoTimeout(req, resp, n.cfg.RefTimeout+n.cfg.RefRetryWindow); err != nil {
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
func (r *refs) get(id int, repo, name string) (string, bool, error) {
	if !r.serving(id) {
		return "", false, fmt.Errorf("%w: partition %d", api.ErrNotPrimary, id)
	}
	oid, ok, err := r.store.Get(id, repo, name)
	if err == nil && !r.serving(id) {
		err = fmt.Errorf("%w: partition %d (lost primacy during the read)", api.ErrNotPrimary, id)
	}
	return oid, ok, err
}

func (r *refs) list(id int, repo, prefix, after string, limit int) (api.RefList, error) {
	if !r.serving(id) {
		return api.RefList{}, fmt.Errorf("%w: partition %d", api.ErrNotPrimary, id)
	}
	refs, next, err := r.store.List(id, repo, prefix, after, limit)
	if err == nil && !r.serving(id) {
		err = fmt.Errorf("%w: partition %d (lost primacy during the read)", api.ErrNotPrimary, id)
	}
	return api.RefList{Repo: repo, Refs: refs, Next: next}, err
}

// checkObjects refuses a transaction whose new OIDs are not all stored at
// quorum: 422 missing_object when enough replicas answered and fewer than
// a quorum hold a copy newer than every tombstone seen (a deleted object
// is missing), 503 quorum_not_reached when too few answered to say.
func (n *Node) checkObjects(t api.RefTxn) error {
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
	pres, v := n.presence(oids)
	need := api.Quorum.Required(v.Ring.ReplicationFactor())
	for i, oid := range oids {
		switch p := pres[i]; {
		case p.answers < need:
			return fmt.Errorf("%w: cannot tell whether %s is stored (%d of %d replicas answered)", api.ErrQuorumNotReached, oid, p.answers, need)
		case p.deleted():
			return fmt.Errorf("%w: %s was deleted", api.ErrMissingObject, oid)
		case len(p.holders()) < need:
			return fmt.Errorf("%w: %s is on %d replicas, quorum is %d", api.ErrMissingObject, oid, len(p.holders()), need)
		}
	}
	return nil
}

// servePlan answers GET /v1/partitions/plan with the planner round that
// would run now.
func (n *Node) servePlan(ctx *fasthttp.RequestCtx) error {
	actions, err := n.cfg.Control.PlanPartitions(n.requestContext(ctx))
	if err != nil {
		return err
	}
	if actions == nil {
		actions = []api.PartitionAction{}
	}
	return httpbody.WriteJSON(ctx, fasthttp.StatusOK, map[string]any{"actions": actions})
}
