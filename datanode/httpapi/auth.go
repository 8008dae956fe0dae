package httpapi

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/peer"
	"github.com/stratum-store/stratum/internal/pki"
	"github.com/stratum-store/stratum/internal/retry"
)

// This file is who may do what (docs/security.md). Without Config.Auth and
// Config.TLS, everyone may do everything. With TLS, node-to-node routes
// (scopeNode in the route table, routes.go) need a verified node
// certificate. With Auth, every route but the public ones (/healthz and
// /readyz) needs a node's credential or a token whose scopes cover the
// route's scope.

// authorize refuses a request its caller may not make: 401 without valid
// credentials, 403 when a token's scopes fall short.
func (n *Router) authorize(ctx *fasthttp.RequestCtx, path string) error {
	r := routeAt(path)
	if n.cfg.TLS != nil && r.scope == scopeNode {
		if err := checkNodeCertificate(ctx); err != nil {
			return err
		}
	}
	if !n.cfg.Auth || r.scope == scopePublic {
		return nil
	}
	if n.isNode(ctx) {
		return nil // a node may do anything a client may, and more
	}
	if r.scope == scopeNode {
		return fmt.Errorf("%w: node-to-node calls need the cluster's credential", api.ErrUnauthenticated)
	}
	method := string(ctx.Method())
	tok, err := n.token(ctx, slices.Contains(r.basic, method))
	if err != nil {
		return err
	}
	if need := r.needs(ctx, method, path); !tok.Allows(need) {
		return fmt.Errorf("%w: token %s (%s) lacks the %s scope", api.ErrForbidden, tok.ID, tok.Name, need)
	}
	return nil
}

// checkNodeCertificate lets a node-to-node call through only with a
// verified node certificate (pki.NodeID) naming the node the call claims
// to come from (X-Stratum-Node): 401 without a verified certificate, 403
// for an operator's or an etcd member's certificate, or one naming
// another node.
func checkNodeCertificate(ctx *fasthttp.RequestCtx) error {
	state := ctx.TLSConnectionState()
	if !pki.Verified(state) {
		return fmt.Errorf("%w: node-to-node calls need a cluster node certificate", api.ErrUnauthenticated)
	}
	id, ok := pki.NodeID(state)
	if !ok {
		return fmt.Errorf("%w: node-to-node calls need a node certificate (URI SAN %s:<id>); this one names no node", api.ErrForbidden, pki.NodeURIScheme)
	}
	if claimed := string(ctx.Request.Header.Peek(api.HeaderNode)); claimed != id {
		return fmt.Errorf("%w: the certificate is node %s's; the call claims %s %q", api.ErrForbidden, id, api.HeaderNode, claimed)
	}
	return nil
}

// isNode reports whether the caller proved it is a cluster node: a
// verified node certificate with TLS, the cluster secret without.
func (n *Router) isNode(ctx *fasthttp.RequestCtx) bool {
	if n.cfg.TLS != nil {
		_, ok := pki.NodeID(ctx.TLSConnectionState())
		return ok
	}
	s := ctx.Request.Header.Peek(peer.HeaderClusterSecret)
	return n.secret != "" && subtle.ConstantTimeCompare(s, []byte(n.secret)) == 1
}

// token finds the request's token among the live records: a bearer
// token, or, where basic is true (the route's basic methods), the password of HTTP
// basic auth (what a browser sends after the status page's prompt;
// curl -u :TOKEN). A browser resends cached basic credentials to any
// route, even for another site's page, so other routes refuse them.
func (n *Router) token(ctx *fasthttp.RequestCtx, basic bool) (api.Token, error) {
	h := string(ctx.Request.Header.Peek(api.HeaderAuthorization))
	raw, ok := strings.CutPrefix(h, "Bearer ")
	if cred, isBasic := strings.CutPrefix(h, "Basic "); isBasic {
		if !basic {
			return api.Token{}, fmt.Errorf("%w: basic auth is accepted only on GET /ui/ and Git routes (/git/); send Authorization: Bearer <token>", api.ErrUnauthenticated)
		}
		if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred)); err == nil {
			_, raw, ok = strings.Cut(string(b), ":")
		}
	}
	if !ok {
		return api.Token{}, fmt.Errorf("%w: send Authorization: Bearer <token>", api.ErrUnauthenticated)
	}
	id, secret, err := api.ParseToken(strings.TrimSpace(raw))
	if err != nil {
		return api.Token{}, err
	}
	tokens := n.tokens.Load()
	if tokens == nil {
		return api.Token{}, fmt.Errorf("%w: this node has not loaded the tokens yet", api.ErrUnauthenticated)
	}
	tok, ok := (*tokens)[id]
	if !ok || !tok.Matches(secret) {
		return api.Token{}, fmt.Errorf("%w: unknown or revoked token", api.ErrUnauthenticated)
	}
	return tok, nil
}

// WatchTokens keeps n.tokens current until ctx is done.
func (n *Router) WatchTokens(ctx context.Context) {
	for ctx.Err() == nil {
		err := n.d.Control.WatchTokens(ctx, func(m map[string]api.Token) { n.tokens.Store(&m) })
		if ctx.Err() == nil {
			n.logger.Warn("token watch ended; restarting", "err", err)
			retry.Sleep(ctx, time.Second)
		}
	}
}
