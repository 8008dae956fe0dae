package cli

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
)

// benchHTTP sends the bench's single-object PUTs and GETs through one
// endpoint over a fasthttp client with its request and response objects
// reused, as the machine's ceiling tool does: the load generator shares
// the cores with the cluster, so every microsecond it spends per request
// is one the cluster does not get (docs/performance.md). It still checks
// every status and verifies every body read against its OID.
type benchHTTP struct {
	hc    *fasthttp.HostClient
	host  string
	token string
	query string
}

// newBenchHTTP returns a client for endpoint (http or https, with tlsConf
// for https) holding up to conns connections.
func newBenchHTTP(endpoint, token string, tlsConf *tls.Config, level api.Consistency, conns int) (*benchHTTP, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("bench: endpoint %q is not an http(s) URL", endpoint)
	}
	hc := &fasthttp.HostClient{Addr: u.Host, IsTLS: u.Scheme == "https", TLSConfig: tlsConf,
		MaxConns: conns, ReadTimeout: time.Minute, WriteTimeout: time.Minute}
	b := &benchHTTP{hc: hc, host: u.Host, query: "?" + api.QueryConsistency + "=" + string(level)}
	if token != "" {
		b.token = "Bearer " + token
	}
	return b, nil
}

// put stores data under oid and fails unless the node acknowledged it.
func (b *benchHTTP) put(oid api.OID, data []byte) error {
	req, resp := b.request(fasthttp.MethodPut, oid)
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetBodyRaw(data)
	if err := b.hc.Do(req, resp); err != nil {
		return err
	}
	if c := resp.StatusCode(); c != fasthttp.StatusOK && c != fasthttp.StatusCreated {
		return api.DecodeError(c, resp.Body())
	}
	return nil
}

// get reads oid and returns its size once its bytes hash to oid.
func (b *benchHTTP) get(oid api.OID) (int, error) {
	req, resp := b.request(fasthttp.MethodGet, oid)
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	if err := b.hc.Do(req, resp); err != nil {
		return 0, err
	}
	if c := resp.StatusCode(); c != fasthttp.StatusOK {
		return 0, api.DecodeError(c, resp.Body())
	}
	body := resp.Body()
	if err := api.Verify(oid, body); err != nil {
		return 0, fmt.Errorf("bench: GET %s: %w", oid, err)
	}
	return len(body), nil
}

// request builds a request for oid's object URL; the caller releases
// both.
func (b *benchHTTP) request(method string, oid api.OID) (*fasthttp.Request, *fasthttp.Response) {
	req := fasthttp.AcquireRequest()
	req.Header.SetMethod(method)
	req.SetRequestURI(api.PathObjects + oid.String() + b.query)
	req.Header.SetHost(b.host)
	if b.token != "" {
		req.Header.Set(api.HeaderAuthorization, b.token)
	}
	return req, fasthttp.AcquireResponse()
}
