package datanode

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
)

// handleInfo serves the routes that are not about one object: health,
// readiness, the ring, this node's status and the cluster's.
func (n *Node) handleInfo(ctx *fasthttp.RequestCtx, path string) error {
	if !ctx.IsGet() && !ctx.IsHead() {
		switch path {
		case api.PathHealthz, api.PathReadyz, api.PathRing, api.PathStatus, api.PathCluster:
			return fmt.Errorf("%w: %s %s", api.ErrMethodNotAllowed, ctx.Method(), path)
		}
	}
	switch path {
	case api.PathHealthz:
		return n.writeJSON(ctx, fasthttp.StatusOK, map[string]string{"status": "ok"})
	case api.PathReadyz:
		if !n.Ready() {
			return fmt.Errorf("%w: node %s has no ring or no live registration", api.ErrNotReady, n.cfg.ID)
		}
		return n.writeJSON(ctx, fasthttp.StatusOK, map[string]string{"status": "ready"})
	case api.PathRing:
		return n.serveRing(ctx)
	case api.PathStatus:
		return n.writeJSON(ctx, fasthttp.StatusOK, n.Status())
	case api.PathCluster:
		doc, err := n.Cluster(ctx)
		if err != nil {
			return err
		}
		return n.writeJSON(ctx, fasthttp.StatusOK, doc)
	}
	return fmt.Errorf("%w: %s", api.ErrRouteNotFound, path)
}

func (n *Node) serveRing(ctx *fasthttp.RequestCtx) error {
	r := n.ring.Load()
	if r == nil {
		return fmt.Errorf("%w: no ring yet", api.ErrNotReady)
	}
	doc := api.RingDoc{Revision: r.Revision(), ReplicationFactor: r.ReplicationFactor(), VNodes: r.Config().VNodes}
	for _, rn := range r.Nodes() {
		doc.Nodes = append(doc.Nodes, api.RingNode{ID: rn.ID, Addr: rn.Addr, Zone: rn.Zone})
	}
	return n.writeJSON(ctx, fasthttp.StatusOK, doc)
}

// Status describes this node.
func (n *Node) Status() api.StatusDoc {
	st := n.store.Stats()
	doc := api.StatusDoc{Version: 1, ID: n.cfg.ID, Addr: n.self.Addr, Zone: n.cfg.Zone, Generation: n.generation,
		Ready: n.Ready(), Objects: st.Objects, Bytes: st.Bytes}
	if r := n.ring.Load(); r != nil {
		doc.RingRevision = r.Revision()
	}
	return doc
}

// Cluster describes every node in the ring or alive, as this node sees it.
func (n *Node) Cluster(ctx context.Context) (api.ClusterDoc, error) {
	r := n.ring.Load()
	if r == nil {
		return api.ClusterDoc{}, fmt.Errorf("%w: no ring yet", api.ErrNotReady)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	live, err := n.cfg.Control.LiveNodes(cctx)
	if err != nil {
		return api.ClusterDoc{}, fmt.Errorf("%w: control plane: %v", api.ErrNotReady, err)
	}
	doc := api.ClusterDoc{Version: 1, RingRevision: r.Revision(), ReplicationFactor: r.ReplicationFactor(), Coordinator: n.cfg.ID}
	for _, rn := range r.Nodes() {
		gen, ok := live[rn.ID]
		doc.Nodes = append(doc.Nodes, api.NodeStatus{ID: rn.ID, Addr: rn.Addr, Zone: rn.Zone, InRing: true, Live: ok, Generation: gen})
		delete(live, rn.ID)
	}
	for id, gen := range live {
		doc.Nodes = append(doc.Nodes, api.NodeStatus{ID: id, Live: true, Generation: gen})
	}
	sort.Slice(doc.Nodes, func(i, j int) bool { return doc.Nodes[i].ID < doc.Nodes[j].ID })
	return doc, nil
}
