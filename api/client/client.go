// Package client is the Go client of stratum's HTTP API, used by the CLI,
// the tests and other programs. It talks to one endpoint (any data node
// coordinates any request) and turns error replies back into the api
// sentinel errors, so callers use errors.Is(err, api.ErrNotFound).
//
//	c, err := client.New(client.Config{Endpoint: "http://127.0.0.1:9001"})
//	rec, err := c.PutBytes(ctx, data, api.SHA256, api.Quorum)
//	body, err := c.GetBytes(ctx, api.MustParseOID(rec.OID), api.Quorum)
//
// Every body the client returns has been verified against its OID: a reader
// from Get fails with api.ErrDigestMismatch at the end if the bytes are wrong.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stratum-store/stratum/api"
)

// Config configures a Client.
type Config struct {
	// Endpoint is the base URL of any data node, e.g. "http://127.0.0.1:9001". Required.
	Endpoint string
	// Timeout bounds each request, body included; default 5 minutes.
	Timeout time.Duration
	// HTTPClient, if set, is used instead of a new one.
	HTTPClient *http.Client
	// Token, if set, is sent as "Authorization: Bearer <Token>" on every
	// request (nodes with auth on; docs/security.md). Ignored with
	// HTTPClient.
	Token string
	// TLS configures https endpoints (e.g. pki.TrustConfig with the
	// cluster's CA); nil uses the system's roots. Ignored with HTTPClient.
	TLS *tls.Config
	// RingAware sends each object request straight to a replica of the
	// object (one hop instead of two), using the ring fetched from Endpoint
	// and refreshed whenever a reply carries a newer ring revision. Other
	// requests, and object requests when no replica answers, go to Endpoint.
	RingAware bool
}

// Validate checks the configuration; an error names the field and the rule.
func (c Config) Validate() error {
	u, err := url.Parse(c.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("client: Config.Endpoint must be an http(s)://host:port URL, got %q", c.Endpoint)
	}
	return nil
}

// Client calls one stratum endpoint, or the replicas of each object when
// ring-aware. It is safe for concurrent use.
type Client struct {
	base   string
	http   *http.Client
	router *router // nil unless RingAware
}

// bearer adds the token to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set(api.HeaderAuthorization, b.token)
	return b.next.RoundTrip(req)
}

// scheme is the endpoint's scheme, which every node of the cluster uses.
func (c *Client) scheme() string {
	if strings.HasPrefix(c.base, "https://") {
		return "https"
	}
	return "http"
}

// New returns a client for cfg.Endpoint.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	hc := cfg.HTTPClient
	if hc == nil {
		timeout := cfg.Timeout
		if timeout == 0 {
			timeout = 5 * time.Minute
		}
		var rt http.RoundTripper = &http.Transport{
			MaxIdleConns: 1024, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second,
			TLSClientConfig: cfg.TLS, ForceAttemptHTTP2: false,
		}
		if cfg.Token != "" {
			rt = bearer{token: "Bearer " + cfg.Token, next: rt}
		}
		hc = &http.Client{Timeout: timeout, Transport: rt}
	}
	c := &Client{base: strings.TrimRight(cfg.Endpoint, "/"), http: hc}
	if cfg.RingAware {
		c.router = &router{c: c}
	}
	return c, nil
}

// Put uploads size bytes from body under oid. A ring-aware client tries
// the next replica when one cannot be reached, if body is an io.Seeker.
func (c *Client) Put(ctx context.Context, oid api.OID, body io.Reader, size int64, level api.Consistency) (api.Receipt, error) {
	var rec api.Receipt
	err := c.routed(ctx, oid, func(base string) (*http.Request, error) {
		if s, ok := body.(io.Seeker); ok {
			if _, err := s.Seek(0, io.SeekStart); err != nil {
				return nil, err
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.objectURL(base, oid, level), io.NopCloser(body))
		if err == nil {
			req.ContentLength = size
		}
		return req, err
	}, func(resp *http.Response) error {
		return json.NewDecoder(resp.Body).Decode(&rec)
	})
	return rec, err
}

// PutBytes computes data's OID under algo and uploads it.
func (c *Client) PutBytes(ctx context.Context, data []byte, algo api.Algorithm, level api.Consistency) (api.Receipt, error) {
	oid, err := api.Digest(algo, data)
	if err != nil {
		return api.Receipt{}, err
	}
	return c.Put(ctx, oid, bytes.NewReader(data), int64(len(data)), level)
}

// Get returns a reader over the object and its size. The reader verifies
// the bytes against oid and fails at the end if they do not match; the
// caller closes it.
func (c *Client) Get(ctx context.Context, oid api.OID, level api.Consistency) (io.ReadCloser, int64, error) {
	resp, err := c.sendObject(ctx, http.MethodGet, oid, level)
	if err != nil {
		return nil, 0, err
	}
	return &verifyingReader{body: resp.Body, oid: oid, h: api.NewHasher(oid.Algorithm())}, resp.ContentLength, nil
}

// GetBytes reads a whole object into memory, verified.
func (c *Client) GetBytes(ctx context.Context, oid api.OID, level api.Consistency) ([]byte, error) {
	body, _, err := c.Get(ctx, oid, level)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return io.ReadAll(body)
}

// Head returns the object's size, or an error wrapping api.ErrNotFound.
func (c *Client) Head(ctx context.Context, oid api.OID, level api.Consistency) (int64, error) {
	resp, err := c.sendObject(ctx, http.MethodHead, oid, level)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.ContentLength, nil
}

// Delete deletes the object at the given consistency: its copies are
// replaced by tombstones, and a later Put stores it again.
func (c *Client) Delete(ctx context.Context, oid api.OID, level api.Consistency) (api.DeleteReceipt, error) {
	var rec api.DeleteReceipt
	err := c.routed(ctx, oid, func(base string) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodDelete, c.objectURL(base, oid, level), nil)
	}, func(resp *http.Response) error {
		return json.NewDecoder(resp.Body).Decode(&rec)
	})
	return rec, err
}

// Ring returns the ring the endpoint uses.
func (c *Client) Ring(ctx context.Context) (api.RingDoc, error) {
	var doc api.RingDoc
	err := c.getJSON(ctx, api.PathRing, &doc)
	return doc, err
}

// Cluster returns the cluster as the endpoint sees it.
func (c *Client) Cluster(ctx context.Context) (api.ClusterDoc, error) {
	var doc api.ClusterDoc
	err := c.getJSON(ctx, api.PathCluster, &doc)
	return doc, err
}

// Status returns the endpoint node's own status.
func (c *Client) Status(ctx context.Context) (api.StatusDoc, error) {
	var doc api.StatusDoc
	err := c.getJSON(ctx, api.PathStatus, &doc)
	return doc, err
}

func (c *Client) objectURL(base string, oid api.OID, level api.Consistency) string {
	return base + api.PathObjects + oid.String() + "?" + api.QueryConsistency + "=" + string(level)
}

// sendObject sends a bodiless object request, routed, and returns the
// successful response with its body open.
func (c *Client) sendObject(ctx context.Context, method string, oid api.OID, level api.Consistency) (*http.Response, error) {
	var out *http.Response
	err := c.routed(ctx, oid, func(base string) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, method, c.objectURL(base, oid, level), nil)
	}, func(resp *http.Response) error {
		out = resp
		return errKeepBody
	})
	if errors.Is(err, errKeepBody) {
		return out, nil
	}
	return nil, err
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	return c.doJSON(req, v)
}

func (c *Client) doJSON(req *http.Request, v any) error {
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("client: decoding reply from %s: %w", c.base, err)
	}
	return nil
}

// do sends req and turns a non-2xx reply into an error wrapping the api
// sentinel named by its code.
func (c *Client) do(req *http.Request) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &transportError{fmt.Errorf("client: %s %s: %w", req.Method, req.URL.Redacted(), err)}
	}
	if c.router != nil {
		c.router.observe(resp.Header.Get(api.HeaderRingRevision))
	}
	if resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if code := resp.Header.Get("X-Stratum-Error"); code != "" && len(body) == 0 {
		return nil, &api.RemoteError{Status: resp.StatusCode, Code: code, Message: code}
	}
	return nil, api.DecodeError(resp.StatusCode, body)
}

// verifyingReader hashes what it reads and fails at EOF on a mismatch.
type verifyingReader struct {
	body io.ReadCloser
	oid  api.OID
	h    *api.Hasher
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.body.Read(p)
	v.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		if cerr := api.Check(v.oid, v.h); cerr != nil {
			return n, cerr
		}
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.body.Close() }

// Nodes lists every node with its membership state (GET /v1/admin/nodes).
func (c *Client) Nodes(ctx context.Context) ([]api.NodeStatus, error) {
	var doc struct {
		Nodes []api.NodeStatus `json:"nodes"`
	}
	err := c.getJSON(ctx, api.PathAdminNodes, &doc)
	return doc.Nodes, err
}

// NodeAction runs "drain" or "remove" on node id (POST /v1/admin/nodes/{id}/{action}).
func (c *Client) NodeAction(ctx context.Context, id, action string, force bool) error {
	u := c.base + api.PathAdminNodes + "/" + url.PathEscape(id) + "/" + action
	if force {
		u += "?force=true"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	var out map[string]string
	return c.doJSON(req, &out)
}

// RepairProgress returns the endpoint node's repair and rebalance progress.
func (c *Client) RepairProgress(ctx context.Context) (api.RepairProgress, error) {
	var p api.RepairProgress
	err := c.getJSON(ctx, api.PathAdminRebalance, &p)
	return p, err
}

// SetRepairPaused pauses or resumes repair and rebalancing cluster-wide.
func (c *Client) SetRepairPaused(ctx context.Context, paused bool) error {
	action := "resume"
	if paused {
		action = "pause"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+api.PathAdminRebalance+"/"+action, nil)
	if err != nil {
		return err
	}
	var out map[string]bool
	return c.doJSON(req, &out)
}
