package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/clusterview"
	"github.com/stratum-store/stratum/datanode/httpbody"
)

// serveReadyz is 200 while the node serves every advertised API
// (Readiness). Losing etcd keeps it 200 (a load balancer must not take the
// whole cluster out) and says so in the body.
func (n *Router) serveReadyz(ctx *fasthttp.RequestCtx) error {
	if err := n.Readiness(); err != nil {
		return err
	}
	return httpbody.WriteJSON(ctx, fasthttp.StatusOK, map[string]string{"status": "ready", "control_plane": n.controlPlaneWord()})
}

// Readiness is nil when the node is ready (docs/operations.md, Readiness):
// it has a ring, is not fenced, and the ref partitions do not hold it back
// (refs.Server.Ready). Otherwise it says why, wrapping api.ErrNotReady.
func (n *Router) Readiness() error {
	switch {
	case n.Fenced():
		return fmt.Errorf("%w: fenced: generation %s was replaced or declared DOWN; restart the process", api.ErrNotReady, n.generation)
	case !n.Ready():
		return fmt.Errorf("%w: node %s has no ring yet", api.ErrNotReady, n.cfg.ID)
	}
	if err := n.refs.Ready(); err != nil {
		return fmt.Errorf("%w: node %s: %v", api.ErrNotReady, n.cfg.ID, err)
	}
	return nil
}

func (n *Router) controlPlaneWord() string {
	if n.ControlPlaneOK() {
		return "ok"
	}
	return "unreachable"
}

func (n *Router) serveRing(ctx *fasthttp.RequestCtx) error {
	r := n.Ring()
	if r == nil {
		return fmt.Errorf("%w: no ring yet", api.ErrNotReady)
	}
	doc := api.RingDoc{Revision: r.Revision(), ReplicationFactor: r.ReplicationFactor(), VNodes: r.Config().VNodes}
	for _, rn := range r.Nodes() {
		doc.Nodes = append(doc.Nodes, api.RingNode{ID: rn.ID, Addr: rn.Addr, Zone: rn.Zone})
	}
	return httpbody.WriteJSON(ctx, fasthttp.StatusOK, doc)
}

// Status describes this node.
func (n *Router) Status() api.StatusDoc {
	st := n.store.Stats()
	doc := api.StatusDoc{Version: 1, ID: n.cfg.ID, Addr: n.self.Addr, Zone: n.cfg.Zone, Generation: n.generation,
		Ready: n.Ready(), Fenced: n.Fenced(), ControlPlane: n.controlPlaneWord(), Objects: st.Objects, Bytes: st.Bytes,
		BodyMemory: n.bodies.Used(), HintsPending: n.hints.Pending(), HintsDropped: n.hints.Dropped(), HintsExpired: n.hints.Expired()}
	if ls, err := n.store.ValueLogStats(); err == nil {
		doc.ValueLogBytes, doc.ValueLogLiveBytes = ls.Bytes, ls.LiveBytes
	}
	n.rep.FillStatus(&doc)
	if r := n.Ring(); r != nil {
		doc.RingRevision = r.Revision()
	}
	return doc
}

// Cluster describes every node as the control plane records it, or, when
// etcd cannot be reached, as this node's cached view has it.
func (n *Router) Cluster(ctx context.Context) api.ClusterDoc {
	v := n.view()
	doc := api.ClusterDoc{Version: 1, Coordinator: n.cfg.ID, ControlPlane: "ok", Breakers: n.peers.States()}
	if v.Ring != nil {
		doc.RingRevision, doc.ReplicationFactor = v.Ring.Revision(), v.Ring.ReplicationFactor()
	}
	doc.Partitions = n.refs.Summary()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	nodes, err := n.d.Control.NodeList(cctx)
	if err == nil {
		doc.Nodes = nodes
	} else {
		doc.ControlPlane = "unreachable"
		doc.Nodes = cachedNodes(v)
	}
	n.addRisk(&doc)
	return doc
}

// addRisk asks every node for its status, in parallel with a one-second
// deadline, and fills in the repair progress and the data at risk.
func (n *Router) addRisk(doc *api.ClusterDoc) {
	doc.Repair = map[string]api.RepairProgress{}
	doc.AtRisk = api.AtRisk{NodesNotLive: []string{}, RepairPaused: n.rep.Paused()}
	if p := doc.Partitions; p != nil {
		doc.AtRisk.UnderReplicatedPartitions = p.UnderReplicated
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, ns := range doc.Nodes {
		if !ns.Live && doc.ControlPlane == "ok" {
			doc.AtRisk.NodesNotLive = append(doc.AtRisk.NodesNotLive, ns.ID)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, ok := n.PeerStatus(ns)
			if !ok {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			doc.Repair[ns.ID] = st.Repair
			doc.AtRisk.UnderReplicatedObjects += st.Repair.Remaining
			doc.AtRisk.HintsPending += st.HintsPending
		}()
	}
	wg.Wait()
}

// PeerStatus reads one node's /v1/status (this node's without a call).
func (n *Router) PeerStatus(ns api.NodeStatus) (api.StatusDoc, bool) {
	if ns.ID == n.cfg.ID {
		return n.Status(), true
	}
	if ns.Addr == "" {
		return api.StatusDoc{}, false
	}
	client, _ := n.peers.Get(ns.Addr)
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(n.peers.URL(ns.Addr, api.PathStatus))
	n.peers.AddCredential(req)
	var st api.StatusDoc
	if err := client.DoTimeout(req, resp, time.Second); err != nil || resp.StatusCode() != fasthttp.StatusOK ||
		json.Unmarshal(resp.Body(), &st) != nil {
		return st, false
	}
	return st, true
}

func cachedNodes(v *clusterview.View) []api.NodeStatus {
	var out []api.NodeStatus
	if v.Ring != nil {
		for _, rn := range v.Ring.Nodes() {
			m := v.Members[rn.ID]
			out = append(out, api.NodeStatus{ID: rn.ID, Addr: rn.Addr, Zone: rn.Zone, InRing: true,
				State: v.State(rn.ID), Generation: m.Generation, Drained: m.Drained})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
