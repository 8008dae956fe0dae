package datanode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/breaker"
	"github.com/stratum-store/stratum/datanode/requestid"
	"github.com/stratum-store/stratum/internal/retry"
)

// peers holds one keep-alive HTTP client and one circuit breaker per peer
// address. Its mutex guards only the maps and is never held during I/O or
// with a breaker's lock.
type peers struct {
	cfg      Config
	mu       sync.Mutex
	clients  map[string]*fasthttp.HostClient
	breakers map[string]*breaker.Breaker
}

func newPeers(cfg Config) *peers {
	return &peers{cfg: cfg, clients: map[string]*fasthttp.HostClient{}, breakers: map[string]*breaker.Breaker{}}
}

func (p *peers) get(addr string) (*fasthttp.HostClient, *breaker.Breaker) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.clients[addr]
	if !ok {
		c = &fasthttp.HostClient{
			Addr:                      addr,
			Name:                      "stratum-peer",
			MaxConns:                  1024,
			MaxIdleConnDuration:       p.cfg.IdleTimeout,
			MaxIdemponentCallAttempts: 1,
			DisablePathNormalizing:    true,
			MaxConnWaitTimeout:        time.Second,
			IsTLS:                     p.cfg.PeerTLS != nil,
			TLSConfig:                 p.cfg.PeerTLS,
		}
		p.clients[addr] = c
		p.breakers[addr] = breaker.New(p.cfg.BreakerThreshold, p.cfg.BreakerCooldown)
	}
	return c, p.breakers[addr]
}

// retain drops the client and breaker of every address not in keep and
// closes the dropped clients' idle connections, so the maps hold the
// current peers only, not every address ever seen. A call still running
// on a dropped client finishes; the next call builds a fresh one.
func (p *peers) retain(keep map[string]bool) (dropped int) {
	p.mu.Lock()
	var gone []*fasthttp.HostClient
	for addr, c := range p.clients {
		if !keep[addr] {
			gone = append(gone, c)
			delete(p.clients, addr)
			delete(p.breakers, addr)
		}
	}
	p.mu.Unlock()
	for _, c := range gone {
		c.CloseIdleConnections()
	}
	return len(gone)
}

// states lists every peer's breaker, sorted by address.
func (p *peers) states() []api.BreakerState {
	p.mu.Lock()
	addrs := make([]string, 0, len(p.breakers))
	bs := make(map[string]*breaker.Breaker, len(p.breakers))
	for a, b := range p.breakers {
		addrs, bs[a] = append(addrs, a), b
	}
	p.mu.Unlock()
	sort.Strings(addrs)
	out := make([]api.BreakerState, 0, len(addrs))
	for _, a := range addrs {
		s := bs[a].Snapshot()
		out = append(out, api.BreakerState{Peer: a, State: s.State, Failures: s.Failures})
	}
	return out
}

// newReplicaRequest builds a request to a peer's replica endpoint, carrying
// the ring revision (the fencing token) and this node's ID and generation.
func (n *Node) newReplicaRequest(ctx context.Context, method, addr string, oid api.OID, rev int64) *fasthttp.Request {
	return n.newPeerRequest(ctx, method, addr, api.PathReplicas+oid.String(), rev)
}

// peerURL is the URL of path on peer addr: https when the cluster runs
// TLS (a fasthttp HostClient refuses a URL whose scheme is not its own).
func (n *Node) peerURL(addr, path string) string {
	if n.cfg.PeerTLS != nil {
		return "https://" + addr + path
	}
	return "http://" + addr + path
}

// newPeerRequest builds a node-to-node request to path on addr.
func (n *Node) newPeerRequest(ctx context.Context, method, addr, path string, rev int64) *fasthttp.Request {
	req := fasthttp.AcquireRequest()
	if id := requestid.From(ctx); id != "" {
		req.Header.Set(requestid.Header, id)
	}
	req.Header.SetMethod(method)
	req.SetRequestURI(n.peerURL(addr, path))
	req.Header.Set(api.HeaderRingRevision, strconv.FormatInt(rev, 10))
	req.Header.Set(api.HeaderNode, n.cfg.ID)
	req.Header.Set(api.HeaderGeneration, n.generation)
	n.addNodeCredential(req)
	return req
}

// do runs req against addr through the peer's breaker with a deadline.
// Transport failures of a retryable request (one whose body can be sent
// again) are retried with backoff while the deadline allows. A non-2xx
// reply comes back as the api sentinel it names; a stale_generation reply
// fences this node.
func (n *Node) do(addr string, req *fasthttp.Request, resp *fasthttp.Response, timeout time.Duration, retryable bool) error {
	client, br := n.peers.get(addr)
	deadline := time.Now().Add(timeout)
	var err error
	for attempt := 0; ; attempt++ {
		if !br.Allow() {
			return fmt.Errorf("%w: %s", api.ErrPeerUnavailable, addr)
		}
		t0 := time.Now()
		err = client.DoDeadline(req, resp, deadline)
		br.Record(err != nil)
		n.metrics.replicaLatency.WithLabelValues(addr, outcome(err, resp)).Observe(time.Since(t0).Seconds())
		if err == nil || !retryable || attempt >= n.cfg.PeerRetries {
			break
		}
		wait := retry.Backoff(n.cfg.RetryBackoff, attempt+1)
		if time.Until(deadline) < wait+n.cfg.RetryBackoff {
			break
		}
		time.Sleep(wait)
	}
	if err != nil {
		return err
	}
	return n.replyError(addr, resp)
}

// outcome labels a peer call: "ok", "error" (an error reply) or "transport".
func outcome(err error, resp *fasthttp.Response) string {
	switch {
	case err != nil:
		return "transport"
	case resp.StatusCode() >= 300:
		return "error"
	}
	return "ok"
}

func (n *Node) replyError(addr string, resp *fasthttp.Response) error {
	if resp.StatusCode() < 300 {
		return nil
	}
	body := resp.Body()
	if s := resp.BodyStream(); s != nil {
		body, _ = io.ReadAll(io.LimitReader(s, 64<<10))
	}
	var err error
	if code := string(resp.Header.Peek(HeaderErrorCode)); code != "" && len(body) == 0 {
		err = &api.RemoteError{Status: resp.StatusCode(), Code: code, Message: fmt.Sprintf("peer %s: %s", addr, code)}
	} else {
		err = api.DecodeError(resp.StatusCode(), body)
	}
	if errors.Is(err, api.ErrStaleGeneration) {
		n.fence("peer " + addr + " refused this generation: " + err.Error())
	}
	return err
}

// peerCall is one node-to-node JSON call: what callPeer sends, and to
// whom. Every such call is idempotent, so transport failures are retried
// within Timeout.
type peerCall struct {
	addr    string             // the peer's address
	method  string             // fasthttp.MethodPost, ...
	path    string             // an api.Path*, with any query
	rev     int64              // the ring revision: the fencing token the peer checks
	body    any                // encoded as JSON; no body when nil
	timeout time.Duration      // for the whole call, retries included
	read    func([]byte) error // gets the reply body, which it must not keep past the call
}

// callPeer sends c through the peer's breaker and retries, and hands the
// reply body to c.read. A non-2xx reply is the sentinel it names.
func (n *Node) callPeer(ctx context.Context, c peerCall) error {
	req := n.newPeerRequest(ctx, c.method, c.addr, c.path, c.rev)
	defer fasthttp.ReleaseRequest(req)
	if c.body != nil {
		b, err := json.Marshal(c.body)
		if err != nil {
			return err
		}
		req.Header.SetContentType("application/json")
		req.SetBodyRaw(b)
	}
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if err := n.do(c.addr, req, resp, c.timeout, true); err != nil {
		return err
	}
	return c.read(resp.Body())
}
