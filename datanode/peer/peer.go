// Package peer is a data node's client of the other data nodes: one
// keep-alive HTTP client and one circuit breaker per peer address, the
// headers every node-to-node call carries (the ring revision that fences
// it, the caller's node ID and generation, its credential and the request
// ID), retries of calls that got no answer, and the translation of an
// error reply back into the api sentinel it names.
//
//	c := peer.New(peer.Options{ID: "n1", Generation: gen, ...})
//	err := c.Call(ctx, peer.Call{Addr: addr, Method: "POST", Path: api.PathReplicaHas,
//		Rev: rev, Body: list, Timeout: time.Second, Read: decode})
//
// # Caveats
//
// A reply that says stale_generation means another process of this node's
// ID replaced it: Options.Fence is called, and the node must stop
// coordinating. Only calls whose body can be sent again are retried; a
// call that timed out may still have run on the peer.
package peer

import (
	"context"
	"crypto/tls"
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

// HeaderErrorCode repeats an error reply's code in a header, so replies
// without a body (HEAD) still say what went wrong.
const HeaderErrorCode = "X-Stratum-Error"

// HeaderClusterSecret carries the cluster secret a node presents to its
// peers when the cluster runs without TLS.
const HeaderClusterSecret = "X-Stratum-Cluster-Secret"

// Options configure a Client. Every field is set by the data node from its
// Config; none has a default here.
type Options struct {
	ID, Generation   string        // this node's, sent on every call
	TLS              *tls.Config   // nil: plain HTTP
	Secret           string        // the cluster secret ("" with TLS: the client certificate proves the node)
	IdleTimeout      time.Duration // closes idle keep-alive connections
	BreakerThreshold int           // consecutive transport failures that open a breaker
	BreakerCooldown  time.Duration // until an open breaker lets one probe through
	Retries          int           // retries of a call that got no answer at all
	RetryBackoff     time.Duration // doubled with full jitter per retry
	// Fence is called when a peer refuses this node's generation.
	Fence func(reason string)
	// Observe, when set, is told each call's peer, outcome (Outcome) and
	// duration.
	Observe func(addr, outcome string, took time.Duration)
}

// Client calls the other data nodes. Its mutex guards only the maps and is
// never held during I/O or with a breaker's lock.
type Client struct {
	o        Options
	mu       sync.Mutex
	clients  map[string]*fasthttp.HostClient
	breakers map[string]*breaker.Breaker
}

// New returns a client with no connections yet.
func New(o Options) *Client {
	return &Client{o: o, clients: map[string]*fasthttp.HostClient{}, breakers: map[string]*breaker.Breaker{}}
}

// Get returns addr's HTTP client and breaker, making them on first use.
func (c *Client) Get(addr string) (*fasthttp.HostClient, *breaker.Breaker) {
	c.mu.Lock()
	defer c.mu.Unlock()
	hc, ok := c.clients[addr]
	if !ok {
		hc = &fasthttp.HostClient{
			Addr:                      addr,
			Name:                      "stratum-peer",
			MaxConns:                  1024,
			MaxIdleConnDuration:       c.o.IdleTimeout,
			MaxIdemponentCallAttempts: 1,
			DisablePathNormalizing:    true,
			MaxConnWaitTimeout:        time.Second,
			IsTLS:                     c.o.TLS != nil,
			TLSConfig:                 c.o.TLS,
		}
		c.clients[addr] = hc
		c.breakers[addr] = breaker.New(c.o.BreakerThreshold, c.o.BreakerCooldown)
	}
	return hc, c.breakers[addr]
}

// Retain drops the client and breaker of every address not in keep and
// closes the dropped clients' idle connections, so the maps hold the
// current peers only, not every address ever seen. A call still running
// on a dropped client finishes; the next call builds a fresh one.
func (c *Client) Retain(keep map[string]bool) (dropped int) {
	c.mu.Lock()
	var gone []*fasthttp.HostClient
	for addr, hc := range c.clients {
		if !keep[addr] {
			gone = append(gone, hc)
			delete(c.clients, addr)
			delete(c.breakers, addr)
		}
	}
	c.mu.Unlock()
	for _, hc := range gone {
		hc.CloseIdleConnections()
	}
	return len(gone)
}

// States lists every peer's breaker, sorted by address.
func (c *Client) States() []api.BreakerState {
	c.mu.Lock()
	addrs := make([]string, 0, len(c.breakers))
	bs := make(map[string]*breaker.Breaker, len(c.breakers))
	for a, b := range c.breakers {
		addrs, bs[a] = append(addrs, a), b
	}
	c.mu.Unlock()
	sort.Strings(addrs)
	out := make([]api.BreakerState, 0, len(addrs))
	for _, a := range addrs {
		s := bs[a].Snapshot()
		out = append(out, api.BreakerState{Peer: a, State: s.State, Failures: s.Failures})
	}
	return out
}

// Open reports whether addr's breaker is open: the peer failed recently
// and is not being called.
func (c *Client) Open(addr string) bool {
	_, b := c.Get(addr)
	return b.Snapshot().State == breaker.Open
}

// URL is the URL of path on peer addr: https when the cluster runs TLS (a
// fasthttp HostClient refuses a URL whose scheme is not its own).
func (c *Client) URL(addr, path string) string {
	if c.o.TLS != nil {
		return "https://" + addr + path
	}
	return "http://" + addr + path
}

// AddCredential marks a node-to-node request as this node's: the cluster
// secret without TLS, whether or not this node has auth on (with TLS the
// client certificate does it).
func (c *Client) AddCredential(req *fasthttp.Request) {
	if c.o.Secret != "" {
		req.Header.Set(HeaderClusterSecret, c.o.Secret)
	}
}

// NewRequest builds a node-to-node request to path on addr, carrying the
// ring revision rev (the fencing token) and this node's ID, generation
// and credential. The caller releases it.
func (c *Client) NewRequest(ctx context.Context, method, addr, path string, rev int64) *fasthttp.Request {
	req := fasthttp.AcquireRequest()
	if id := requestid.From(ctx); id != "" {
		req.Header.Set(requestid.Header, id)
	}
	req.Header.SetMethod(method)
	req.SetRequestURI(c.URL(addr, path))
	req.Header.Set(api.HeaderRingRevision, strconv.FormatInt(rev, 10))
	req.Header.Set(api.HeaderNode, c.o.ID)
	req.Header.Set(api.HeaderGeneration, c.o.Generation)
	c.AddCredential(req)
	return req
}

// NewReplicaRequest builds a request to a peer's replica endpoint for oid.
func (c *Client) NewReplicaRequest(ctx context.Context, method, addr string, oid api.OID, rev int64) *fasthttp.Request {
	return c.NewRequest(ctx, method, addr, api.PathReplicas+oid.String(), rev)
}

// Do runs req against addr through the peer's breaker with a deadline.
// Transport failures of a retryable request (one whose body can be sent
// again) are retried with backoff while the deadline allows. A non-2xx
// reply comes back as the api sentinel it names; a stale_generation reply
// fences this node.
func (c *Client) Do(addr string, req *fasthttp.Request, resp *fasthttp.Response, timeout time.Duration, retryable bool) error {
	client, br := c.Get(addr)
	deadline := time.Now().Add(timeout)
	var err error
	for attempt := 0; ; attempt++ {
		if !br.Allow() {
			return fmt.Errorf("%w: %s", api.ErrPeerUnavailable, addr)
		}
		t0 := time.Now()
		err = client.DoDeadline(req, resp, deadline)
		br.Record(err != nil)
		if c.o.Observe != nil {
			c.o.Observe(addr, Outcome(err, resp), time.Since(t0))
		}
		if err == nil || !retryable || attempt >= c.o.Retries {
			break
		}
		wait := retry.Backoff(c.o.RetryBackoff, attempt+1)
		if time.Until(deadline) < wait+c.o.RetryBackoff {
			break
		}
		time.Sleep(wait)
	}
	if err != nil {
		return err
	}
	return c.replyError(addr, resp)
}

// Timeout is the deadline for one call moving size bytes: base for up to
// 1 MiB, plus a second for every minRate bytes (Config.PeerMinRate).
func Timeout(base time.Duration, minRate, size int64) time.Duration {
	if size <= 1<<20 {
		return base
	}
	return base + time.Duration(size/minRate+1)*time.Second
}

// Outcome labels a peer call: "ok", "error" (an error reply) or "transport".
func Outcome(err error, resp *fasthttp.Response) string {
	switch {
	case err != nil:
		return "transport"
	case resp.StatusCode() >= 300:
		return "error"
	}
	return "ok"
}

func (c *Client) replyError(addr string, resp *fasthttp.Response) error {
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
	if errors.Is(err, api.ErrStaleGeneration) && c.o.Fence != nil {
		c.o.Fence("peer " + addr + " refused this generation: " + err.Error())
	}
	return err
}

// Call is one node-to-node JSON call: what Client.Call sends, and to
// whom. Every such call is idempotent, so transport failures are retried
// within Timeout.
type Call struct {
	Addr   string // the peer's address
	Method string // fasthttp.MethodPost, ...
	Path   string // an api.Path*, with any query
	Rev    int64  // the ring revision: the fencing token the peer checks
	Body   any    // encoded as JSON; no body when nil
	// Raw, when not nil, is sent as the body instead of Body, with
	// ContentType.
	Raw         []byte
	ContentType string
	Timeout     time.Duration      // for the whole call, retries included
	Read        func([]byte) error // gets the reply body, which it must not keep past the call
}

// Call sends c through the peer's breaker and retries, and hands the
// reply body to c.Read. A non-2xx reply is the sentinel it names.
func (c *Client) Call(ctx context.Context, call Call) error {
	req := c.NewRequest(ctx, call.Method, call.Addr, call.Path, call.Rev)
	defer fasthttp.ReleaseRequest(req)
	switch {
	case call.Raw != nil:
		req.Header.SetContentType(call.ContentType)
		req.SetBodyRaw(call.Raw)
	case call.Body != nil:
		b, err := json.Marshal(call.Body)
		if err != nil {
			return err
		}
		req.Header.SetContentType("application/json")
		req.SetBodyRaw(b)
	}
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if err := c.Do(call.Addr, req, resp, call.Timeout, true); err != nil {
		return err
	}
	return call.Read(resp.Body())
}

// StampedError is an error that names a stamp: a peer's error reply that
// named one (deleted, superseded: what the peer holds), or a read's
// verdict that the newest copy is a tombstone of that stamp. A node's
// error reply repeats the stamp in api.HeaderStamp.
type StampedError struct {
	Err   error
	Stamp api.Stamp
}

func (e *StampedError) Error() string { return e.Err.Error() + " (stamp " + e.Stamp.String() + ")" }
func (e *StampedError) Unwrap() error { return e.Err }

// WithStamp attaches the stamp of a peer's error reply to err.
func WithStamp(err error, resp *fasthttp.Response) error {
	if err == nil {
		return nil
	}
	st, perr := api.ParseStamp(string(resp.Header.Peek(api.HeaderStamp)))
	if perr != nil || st == 0 {
		return err
	}
	return &StampedError{Err: err, Stamp: st}
}
