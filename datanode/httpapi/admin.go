package httpapi

import (
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/httpbody"
)

// handleAdmin serves GET /v1/admin/nodes and
// POST /v1/admin/nodes/{id}/drain and /v1/admin/nodes/{id}/remove[?force=true].
func (n *Router) handleAdmin(ctx *fasthttp.RequestCtx, path string) error {
	if path == api.PathAdminNodes {
		if !ctx.IsGet() {
			return fmt.Errorf("%w: %s %s", api.ErrMethodNotAllowed, ctx.Method(), path)
		}
		nodes, err := n.d.Control.NodeList(ctx)
		if err != nil {
			return fmt.Errorf("%w: control plane: %v", api.ErrNotReady, err)
		}
		return httpbody.WriteJSON(ctx, fasthttp.StatusOK, map[string]any{"nodes": nodes})
	}
	id, action, ok := strings.Cut(strings.TrimPrefix(path, api.PathAdminNodes+"/"), "/")
	if !ok || id == "" || (action != "drain" && action != "remove") {
		return fmt.Errorf("%w: %s", api.ErrRouteNotFound, path)
	}
	if err := api.ValidateNodeID(id); err != nil { // as sent: %2F and the like are refused, not decoded
		return err
	}
	if !ctx.IsPost() {
		return fmt.Errorf("%w: use POST for %s", api.ErrMethodNotAllowed, action)
	}
	var err error
	if action == "drain" {
		err = n.d.Control.Drain(ctx, id)
	} else {
		err = n.d.Control.Remove(ctx, id, string(ctx.QueryArgs().Peek("force")) == "true")
	}
	if err != nil {
		return err
	}
	n.logger.Info("admin action", "action", action, "node", id)
	return httpbody.WriteJSON(ctx, fasthttp.StatusOK, map[string]string{"node": id, "action": action, "status": "ok"})
}
