package client

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/ring"
)

// router holds the ring of a ring-aware client. The ring is immutable and
// swapped whole; a refresh runs at most once at a time.
type router struct {
	c          *Client
	ring       atomic.Pointer[ring.Ring]
	mu         sync.Mutex // serialises refreshes; never held with another lock
	lastFailed atomic.Int64
}

// transportError marks a request that got no answer at all: the next
// replica may be tried.
type transportError struct{ error }

func (e *transportError) Unwrap() error { return e.error }

// errKeepBody tells routed that the caller took the response body.
var errKeepBody = errors.New("client: response kept")

// bases returns where to send a request for oid: the object's replicas in
// ring order, then the configured endpoint.
func (r *router) bases(ctx context.Context, oid api.OID) []string {
	cur := r.ring.Load()
	if cur == nil {
		cur = r.refresh(ctx)
	}
	var out []string
	if cur != nil {
		for _, n := range cur.Replicas([]byte(oid.String())) {
			out = append(out, r.c.scheme()+"://"+n.Addr)
		}
	}
	return append(out, r.c.base)
}

// refresh loads the ring from the endpoint; failures are retried at most
// once a second.
func (r *router) refresh(ctx context.Context) *ring.Ring {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Now().UnixNano()-r.lastFailed.Load() < int64(time.Second) {
		return r.ring.Load()
	}
	doc, err := r.c.Ring(ctx)
	if err == nil {
		var nodes []ring.Node
		for _, n := range doc.Nodes {
			nodes = append(nodes, ring.Node{ID: n.ID, Addr: n.Addr, Zone: n.Zone})
		}
		var rg *ring.Ring
		if rg, err = ring.New(doc.Revision, nodes, ring.Config{Replicas: doc.ReplicationFactor, VNodes: doc.VNodes}); err == nil {
			if cur := r.ring.Load(); cur == nil || cur.Revision() < rg.Revision() {
				r.ring.Store(rg)
			}
			return r.ring.Load()
		}
	}
	r.lastFailed.Store(time.Now().UnixNano())
	return r.ring.Load()
}

// observe refreshes the ring in the background when a reply says the
// cluster has a newer one.
func (r *router) observe(header string) {
	rev, err := strconv.ParseInt(header, 10, 64)
	if err != nil {
		return
	}
	if cur := r.ring.Load(); cur != nil && cur.Revision() < rev && r.mu.TryLock() {
		r.mu.Unlock()
		go r.refresh(context.Background())
	}
}

// routed sends the request built by build to each base in turn until one
// answers; handle reads a successful response (return errKeepBody to keep
// its body open).
func (c *Client) routed(ctx context.Context, oid api.OID, build func(base string) (*http.Request, error), handle func(*http.Response) error) error {
	bases := []string{c.base}
	if c.router != nil {
		bases = c.router.bases(ctx, oid)
	}
	var err error
	for _, base := range bases {
		var req *http.Request
		if req, err = build(base); err != nil {
			return err
		}
		var resp *http.Response
		resp, err = c.do(req)
		if _, transport := errors.AsType[*transportError](err); transport && ctx.Err() == nil {
			continue
		}
		if err != nil {
			return err
		}
		err = handle(resp)
		if !errors.Is(err, errKeepBody) {
			resp.Body.Close()
		}
		return err
	}
	return err
}

// RingRevision is the revision of the ring a ring-aware client routes by
// (0 before it has one, or when not ring-aware).
func (c *Client) RingRevision() int64 {
	if c.router == nil {
		return 0
	}
	if r := c.router.ring.Load(); r != nil {
		return r.Revision()
	}
	return 0
}
