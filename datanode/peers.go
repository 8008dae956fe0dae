package datanode

import (
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
)

// peers holds one keep-alive HTTP client per peer address. Its mutex guards
// only the map and is never held during I/O.
type peers struct {
	idle    time.Duration
	mu      sync.Mutex
	clients map[string]*fasthttp.HostClient
}

func newPeers(idle time.Duration) *peers {
	return &peers{idle: idle, clients: make(map[string]*fasthttp.HostClient)}
}

func (p *peers) client(addr string) *fasthttp.HostClient {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.clients[addr]
	if !ok {
		c = &fasthttp.HostClient{
			Addr:                          addr,
			Name:                          "stratum-peer",
			MaxConns:                      1024,
			MaxIdleConnDuration:           p.idle,
			MaxIdemponentCallAttempts:     1,
			DisableHeaderNamesNormalizing: false,
			DisablePathNormalizing:        true,
			MaxConnWaitTimeout:            time.Second,
		}
		p.clients[addr] = c
	}
	return c
}

// newReplicaRequest builds a request to a peer's replica endpoint, carrying
// the ring revision (the fencing token) and this node's generation.
func (n *Node) newReplicaRequest(method, addr string, oid api.OID, rev int64) *fasthttp.Request {
	req := fasthttp.AcquireRequest()
	req.Header.SetMethod(method)
	req.SetRequestURI("http://" + addr + api.PathReplicas + oid.String())
	req.Header.Set(api.HeaderRingRevision, strconv.FormatInt(rev, 10))
	req.Header.Set(api.HeaderGeneration, n.generation)
	return req
}

// do runs req against addr with a deadline and returns the error carried by
// a non-2xx reply, decoded back into the api sentinels.
func (n *Node) do(addr string, req *fasthttp.Request, resp *fasthttp.Response, timeout time.Duration) error {
	if err := n.peers.client(addr).DoTimeout(req, resp, timeout); err != nil {
		return err
	}
	if resp.StatusCode() < 300 {
		return nil
	}
	body := resp.Body()
	if s := resp.BodyStream(); s != nil {
		body, _ = io.ReadAll(io.LimitReader(s, 64<<10))
	}
	if code := string(resp.Header.Peek(HeaderErrorCode)); code != "" && len(body) == 0 {
		return &api.RemoteError{Status: resp.StatusCode(), Code: code, Message: fmt.Sprintf("peer %s: %s", addr, code)}
	}
	return api.DecodeError(resp.StatusCode(), body)
}
