package httpapi

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/git/smarthttp"
	"github.com/stratum-store/stratum/datanode/httpbody"
	"github.com/stratum-store/stratum/datanode/objects"
	"github.com/stratum-store/stratum/datanode/refs"
	"github.com/stratum-store/stratum/datanode/repair"
)

// The route table: every path the node serves is one entry of routes,
// and the router (handle), the access check (authorize, requireJSON), the
// in-flight limit (counted) and the metric labeller (routeOf) all read
// it, so a new route is one entry, and no rule can name a path the router
// does not serve. Adding a route: write its handler, add its entry here
// before any entry whose path would also match it, and say who may call
// it (scope) and how its requests are labelled (label).

// routeMatch is how a route's path matches a request's raw path.
type routeMatch int

const (
	exact   routeMatch = iota // the path itself
	prefix                    // any path that starts with it
	subtree                   // the path itself, or any path under path + "/"
)

// Scopes a route may need besides the token scopes (api.Scope*).
const (
	scopeByMethod = ""       // write for PUT, DELETE and POST, read for the rest
	scopePublic   = "public" // anyone: health checks must answer a load balancer
	scopeNode     = "node"   // node-to-node: a node's credential only, never a token
)

// route is one entry of the route table.
type route struct {
	path    string
	match   routeMatch
	methods []string // the methods it serves; nil: any (the handler answers 405). Another method falls through to later entries.
	serve   func(n *Router, ctx *fasthttp.RequestCtx, path string) error

	scope    string                                             // what a caller needs: scopeByMethod, scopePublic, scopeNode or an api.Scope*
	scopeFor func(ctx *fasthttp.RequestCtx, path string) string // when set, the scope depends on the request (Git: fetch or push)
	basic    []string                                           // the methods that take HTTP basic auth (browser.go)
	json     bool                                               // its POST bodies are JSON: Content-Type application/json required (browser.go)
	refused  func(ctx *fasthttp.RequestCtx, err error)          // adds what its client needs to a refusal by admit

	uncounted bool                     // not counted toward MaxInflight: it must answer under load
	label     string                   // the metric label: "" is the path
	labelFor  func(path string) string // when set, the label depends on the path (never an unbounded part of it)
}

var (
	get     = []string{fasthttp.MethodGet}
	post    = []string{fasthttp.MethodPost}
	getHead = []string{fasthttp.MethodGet, fasthttp.MethodHead}
)

// routes is the table, in the order the router tries it: the first entry
// whose path matches and whose methods include the request's serves it;
// a path no entry matches is 404.
var routes = []route{
	{path: api.PathObjects, match: prefix, serve: oidRoute(api.PathObjects, partOID(objs, (*objects.Server).HandleObject))},
	{path: api.PathBatchPut, serve: part(objs, (*objects.Server).HandleBatch), scope: api.ScopeWrite},
	{path: api.PathBatchGet, serve: part(objs, (*objects.Server).HandleBatch), scope: api.ScopeRead, json: true},
	{path: api.PathBatchHas, serve: part(objs, (*objects.Server).HandleBatch), scope: api.ScopeRead, json: true},
	{path: api.PathReplicaBatch, methods: post, serve: noPath(partNoPath(objs, (*objects.Server).HandleReplicaBatch)), scope: scopeNode},
	{path: api.PathReplicaHas, methods: post, serve: noPath(partNoPath(objs, (*objects.Server).HandleReplicaHas)), scope: scopeNode},
	{path: api.PathReplicaDelete, methods: post, serve: noPath(partNoPath(objs, (*objects.Server).HandleReplicaDelete)), scope: scopeNode},
	{path: api.PathReplicaGet, methods: post, serve: noPath(partNoPath(objs, (*objects.Server).HandleReplicaGet)), scope: scopeNode},
	{path: api.PathAEDigest, methods: post, serve: noPath(partNoPath(rep, (*repair.Server).HandleAEDigest)), scope: scopeNode},
	{path: api.PathAEList, methods: post, serve: noPath(partNoPath(rep, (*repair.Server).HandleAEList)), scope: scopeNode},
	{path: api.PathReplicas, match: prefix, serve: oidRoute(api.PathReplicas, partOID(objs, (*objects.Server).HandleReplica)), scope: scopeNode},
	{path: smarthttp.PathPrefix, match: prefix, serve: (*Router).serveGit, scopeFor: gitNeeds, // gitroutes.go
		basic: []string{fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodPost}, refused: gitText, labelFor: gitRouteLabel},
	{path: api.PathRepos, match: prefix, serve: part(refServer, (*refs.Server).HandleRepos), json: true},
	{path: "/internal/v1/refs/", match: prefix, serve: part(refServer, (*refs.Server).HandleInternal), scope: scopeNode},
	{path: api.PathPartitions, methods: get, serve: servePartitions},
	{path: api.PathPartitionPlan, methods: get, serve: noPath(partNoPath(refServer, (*refs.Server).ServePlan))},
	{path: "/ui/", serve: noPath((*Router).serveUI), basic: getHead, refused: basicChallenge},
	{path: "/ui", serve: noPath((*Router).serveUI), basic: getHead, refused: basicChallenge, label: "/ui/"},
	{path: "/metrics", serve: serveMetrics, uncounted: true},
	{path: "/debug/pprof/", match: prefix, serve: servePprof},
	{path: api.PathAdminNodes, match: subtree, serve: (*Router).handleAdmin, scope: api.ScopeAdmin},
	{path: api.PathAdminRebalance, match: subtree, serve: part(rep, (*repair.Server).HandleRebalance), scope: api.ScopeAdmin},
	{path: api.PathAdmin, match: prefix, serve: notFound, scope: api.ScopeAdmin, label: "other"},
	{path: api.PathHealthz, serve: readOnly(serveHealthz), scope: scopePublic, uncounted: true},
	{path: api.PathReadyz, serve: readOnly(noPath((*Router).serveReadyz)), scope: scopePublic, uncounted: true},
	{path: api.PathRing, serve: readOnly(noPath((*Router).serveRing))},
	{path: api.PathStatus, serve: readOnly(serveStatus)},
	{path: api.PathCluster, serve: readOnly(serveCluster)},
	{path: "/internal/", match: prefix, serve: notFound, scope: scopeNode, label: "other"},
}

// unrouted is the entry of a path that no route matches.
var unrouted = route{serve: notFound, label: "other"}

func (r *route) matches(path string) bool {
	switch r.match {
	case prefix:
		return strings.HasPrefix(path, r.path)
	case subtree:
		return path == r.path || strings.HasPrefix(path, r.path+"/")
	}
	return path == r.path
}

// routeFor is the route that serves method on path (unrouted if none).
func routeFor(method, path string) *route {
	for i := range routes {
		r := &routes[i]
		if r.matches(path) && (r.methods == nil || slices.Contains(r.methods, method)) {
			return r
		}
	}
	return &unrouted
}

// routeAt is the first route whose path matches, whatever the method: its
// access rules and label hold for every request to the path, so a request
// with a method no route serves is refused or labelled as its path's.
func routeAt(path string) *route {
	for i := range routes {
		if routes[i].matches(path) {
			return &routes[i]
		}
	}
	return &unrouted
}

// needs is the scope a request to the route needs.
func (r *route) needs(ctx *fasthttp.RequestCtx, method, path string) string {
	switch {
	case r.scopeFor != nil:
		return r.scopeFor(ctx, path)
	case r.scope != scopeByMethod:
		return r.scope
	case method == fasthttp.MethodPut || method == fasthttp.MethodDelete || method == fasthttp.MethodPost:
		return api.ScopeWrite
	}
	return api.ScopeRead
}

// counted reports whether a request counts toward MaxInflight: client
// requests do; node-to-node calls and the health and metrics endpoints,
// which must answer under load, do not.
func counted(path string) bool {
	r := routeAt(path)
	return r.scope != scopeNode && !r.uncounted
}

// routeOf names a raw path's route for metric labels (bounded cardinality:
// OIDs, repositories and node IDs never become labels).
func routeOf(path string) string {
	r := routeAt(path)
	switch {
	case r.labelFor != nil:
		return r.labelFor(path)
	case r.label != "":
		return r.label
	}
	return r.path
}

// Adapters from the handlers' own signatures to the table's. A handler
// of one of the node's parts (package objects, refs) is adapted with
// part, partNoPath or partOID and the selector of that part.

func objs(n *Router) *objects.Server   { return n.obj }
func refServer(n *Router) *refs.Server { return n.refs }
func rep(n *Router) *repair.Server     { return n.rep }

func part[P any](sel func(*Router) P, h func(P, *fasthttp.RequestCtx, string) error) func(*Router, *fasthttp.RequestCtx, string) error {
	return func(n *Router, ctx *fasthttp.RequestCtx, path string) error { return h(sel(n), ctx, path) }
}

func partNoPath[P any](sel func(*Router) P, h func(P, *fasthttp.RequestCtx) error) func(*Router, *fasthttp.RequestCtx) error {
	return func(n *Router, ctx *fasthttp.RequestCtx) error { return h(sel(n), ctx) }
}

func partOID[P any](sel func(*Router) P, h func(P, *fasthttp.RequestCtx, api.OID) error) func(*Router, *fasthttp.RequestCtx, api.OID) error {
	return func(n *Router, ctx *fasthttp.RequestCtx, oid api.OID) error { return h(sel(n), ctx, oid) }
}

func noPath(h func(*Router, *fasthttp.RequestCtx) error) func(*Router, *fasthttp.RequestCtx, string) error {
	return func(n *Router, ctx *fasthttp.RequestCtx, _ string) error { return h(n, ctx) }
}

// oidRoute serves paths under under that end in an OID, parsed as sent.
func oidRoute(under string, h func(*Router, *fasthttp.RequestCtx, api.OID) error) func(*Router, *fasthttp.RequestCtx, string) error {
	return func(n *Router, ctx *fasthttp.RequestCtx, path string) error {
		return n.withOID(ctx, strings.TrimPrefix(path, under), func(ctx *fasthttp.RequestCtx, oid api.OID) error { return h(n, ctx, oid) })
	}
}

// readOnly answers 405 to any method but GET and HEAD.
func readOnly(h func(*Router, *fasthttp.RequestCtx, string) error) func(*Router, *fasthttp.RequestCtx, string) error {
	return func(n *Router, ctx *fasthttp.RequestCtx, path string) error {
		if !ctx.IsGet() && !ctx.IsHead() {
			return fmt.Errorf("%w: %s %s", api.ErrMethodNotAllowed, ctx.Method(), path)
		}
		return h(n, ctx, path)
	}
}

func notFound(_ *Router, _ *fasthttp.RequestCtx, path string) error {
	return fmt.Errorf("%w: %s", api.ErrRouteNotFound, path)
}

// gitNeeds is the scope a Git route needs (gitScope, gitroutes.go).
func gitNeeds(ctx *fasthttp.RequestCtx, path string) string {
	scope, _ := gitScope(ctx, path)
	return scope
}

// basicChallenge makes a browser prompt for credentials: a read token is
// the password.
func basicChallenge(ctx *fasthttp.RequestCtx, err error) {
	if errors.Is(err, api.ErrUnauthenticated) {
		ctx.Response.Header.Set("WWW-Authenticate", `Basic realm="stratum: a read token as the password"`)
	}
}

// The small handlers that live in the table alone.

func serveHealthz(n *Router, ctx *fasthttp.RequestCtx, _ string) error {
	return httpbody.WriteJSON(ctx, fasthttp.StatusOK, map[string]string{"status": "ok"})
}

func serveStatus(n *Router, ctx *fasthttp.RequestCtx, _ string) error {
	return httpbody.WriteJSON(ctx, fasthttp.StatusOK, n.Status())
}

func serveCluster(n *Router, ctx *fasthttp.RequestCtx, _ string) error {
	return httpbody.WriteJSON(ctx, fasthttp.StatusOK, n.Cluster(ctx))
}

func servePartitions(n *Router, ctx *fasthttp.RequestCtx, _ string) error {
	return httpbody.WriteJSON(ctx, fasthttp.StatusOK, n.refs.Report())
}

func serveMetrics(n *Router, ctx *fasthttp.RequestCtx, _ string) error {
	n.metrics.handler(ctx)
	return nil
}

// servePprof serves the profiles only with Config.Pprof; without it the
// path is not found.
func servePprof(n *Router, ctx *fasthttp.RequestCtx, path string) error {
	if !n.cfg.Pprof {
		return notFound(n, ctx, path)
	}
	pprofhandler.PprofHandler(ctx)
	return nil
}
