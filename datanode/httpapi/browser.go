package httpapi

import (
	"fmt"
	"mime"
	"net/url"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
)

// This file keeps a web browser from being turned against the cluster
// (docs/security.md, "Browsers and cross-site requests"). A browser adds
// HTTP basic credentials it has cached, and sends simple cross-site POSTs
// (form or text content types) without asking anyone, so:
//
//   - basic auth (a token as the password) is accepted only on the routes
//     whose table entry lists basic methods (routes.go): the status page,
//     which only reads, and Git's smart HTTP routes, whose client sends
//     the token as the password its credential helper gives; a Git POST
//     must carry an application/x-git-* content type (415 otherwise,
//     before anything is read or changed), which a cross-site page cannot
//     send without a CORS preflight, which nodes never grant;
//   - a state-changing request (any method but GET, HEAD and OPTIONS) that a
//     browser marks as cross-site (Sec-Fetch-Site, or an Origin that is not
//     this host) is refused 403, whatever its credentials;
//   - JSON routes (json in the route table: batch GET and HAS take an OID
//     list, a ref transaction its updates) take only Content-Type:
//     application/json on POST, which no cross-site form can send (415
//     otherwise). Node-to-node routes need a node's credential, which no
//     browser holds.
//
// Programs (the CLI, api/client, curl in the scripts) send neither
// Sec-Fetch-Site nor Origin, and send bearer tokens.

// safeMethod reports whether method only reads.
func safeMethod(method string) bool {
	return method == fasthttp.MethodGet || method == fasthttp.MethodHead || method == fasthttp.MethodOptions
}

// refuseCrossSite refuses (403 forbidden) a state-changing request that a
// browser sent from another site: Sec-Fetch-Site other than same-origin
// or none (typed by the user), or an Origin whose host is not the
// request's Host ("null" included).
func refuseCrossSite(ctx *fasthttp.RequestCtx) error {
	if safeMethod(string(ctx.Method())) {
		return nil
	}
	if site := string(ctx.Request.Header.Peek("Sec-Fetch-Site")); site != "" && site != "same-origin" && site != "none" {
		return fmt.Errorf("%w: a cross-site request (Sec-Fetch-Site: %s) may not change anything", api.ErrForbidden, site)
	}
	origin := string(ctx.Request.Header.Peek("Origin"))
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || !strings.EqualFold(u.Host, string(ctx.Host())) {
		return fmt.Errorf("%w: a request from origin %q may not change anything on %s", api.ErrForbidden, origin, ctx.Host())
	}
	return nil
}

// requireJSON refuses (415) a JSON route's request whose Content-Type is
// not application/json (parameters such as charset allowed).
func requireJSON(ctx *fasthttp.RequestCtx, path string) error {
	if !ctx.IsPost() || !routeAt(path).json {
		return nil
	}
	ct := string(ctx.Request.Header.ContentType())
	if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == "application/json" {
		return nil
	}
	return fmt.Errorf("%w: %s takes Content-Type: application/json, got %q", api.ErrUnsupportedMediaType, path, ct)
}
