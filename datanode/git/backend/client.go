package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/api/client"
)

// DefaultMaxBatchObject is the largest object Put sends in a batch when
// ClientConfig.MaxBatchObject is zero: the store's default large-object
// threshold, above which a node refuses an object in a batch.
const DefaultMaxBatchObject = 1 << 20

// ClientConfig configures a Client.
type ClientConfig struct {
	// Endpoint is the URL of the data node the client calls, normally the
	// node serving the Git request itself. Required.
	Endpoint string
	// Token is the caller's API token, sent as a bearer token on every
	// call so the node authorises each one as it would the caller's own
	// API call; "" when auth is off.
	Token string
	// Transport carries the calls. Share one across clients so that
	// connections are pooled; nil uses a new one. It must not present a
	// node's client certificate: a node certificate would make every call
	// a node's, whatever the caller may do.
	Transport http.RoundTripper
	// Timeout bounds each call; default 5 minutes.
	Timeout time.Duration
	// MaxBatchObject is the largest object sent in a batch PUT (the
	// node's large-object threshold); larger objects are put alone. If
	// zero, DefaultMaxBatchObject.
	MaxBatchObject int64
}

// Client is the Backend of a data node: it calls the node's own object and
// ref APIs (api/client) with the caller's token, at quorum, so Git traffic
// is authorised, replicated, verified and repaired exactly as API traffic
// is. It holds no state and is safe for concurrent use.
type Client struct {
	c        *client.Client
	maxBatch int64
}

// NewClient returns a Client for cfg.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.MaxBatchObject == 0 {
		cfg.MaxBatchObject = DefaultMaxBatchObject
	}
	if cfg.MaxBatchObject < 0 {
		return nil, fmt.Errorf("backend: ClientConfig.MaxBatchObject must be >= 0, got %d", cfg.MaxBatchObject)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Minute
	}
	rt := cfg.Transport
	if rt == nil {
		rt = &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}
	}
	if cfg.Token != "" {
		rt = bearer{token: "Bearer " + cfg.Token, next: rt}
	}
	c, err := client.New(client.Config{Endpoint: cfg.Endpoint, HTTPClient: &http.Client{Timeout: cfg.Timeout, Transport: rt}})
	if err != nil {
		return nil, err
	}
	return &Client{c: c, maxBatch: cfg.MaxBatchObject}, nil
}

// bearer adds the caller's token to every call.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set(api.HeaderAuthorization, b.token)
	return b.next.RoundTrip(req)
}

// Refs implements Backend, reading every page of the listing.
func (c *Client) Refs(ctx context.Context, repo string) ([]Ref, error) {
	var out []Ref
	after := ""
	for {
		page, err := c.c.ListRefs(ctx, repo, "", after, 0)
		if err != nil {
			return nil, fmt.Errorf("listing the refs of %s: %w", repo, err)
		}
		out = append(out, page.Refs...)
		if page.Next == "" {
			return out, nil
		}
		after = page.Next
	}
}

// Get implements Backend with batch GETs, MaxBatchObjects at a time: first
// at `one`, which the serving node answers from its own copies without
// asking its peers (Git objects are immutable and verified on read, and a
// ref that reaches one was accepted only once it was stored at quorum);
// what that pass did not return is asked again at quorum, whose answer
// stands. An object stored as a large object (answered too_large in a
// batch) is read alone.
func (c *Client) Get(ctx context.Context, oids []api.OID, fn func(api.OID, []byte, error)) error {
	for len(oids) > 0 {
		n := min(len(oids), api.MaxBatchObjects)
		var again []api.OID
		err := c.c.GetMany(ctx, oids[:n], api.One, func(oid api.OID, data []byte, err error) {
			if err != nil {
				again = append(again, oid)
				return
			}
			fn(oid, data, nil)
		})
		if err != nil {
			return fmt.Errorf("reading %d objects: %w", n, err)
		}
		if err := c.getQuorum(ctx, again, fn); err != nil {
			return err
		}
		oids = oids[n:]
	}
	return nil
}

// getQuorum reads oids (at most MaxBatchObjects) with a batch GET at
// quorum, and each large one alone.
func (c *Client) getQuorum(ctx context.Context, oids []api.OID, fn func(api.OID, []byte, error)) error {
	if len(oids) == 0 {
		return nil
	}
	var large []api.OID
	err := c.c.GetMany(ctx, oids, api.Quorum, func(oid api.OID, data []byte, err error) {
		switch {
		case errors.Is(err, api.ErrTooLarge):
			large = append(large, oid)
		case errors.Is(err, api.ErrDeleted) && !errors.Is(err, ErrNotFound):
			fn(oid, nil, fmt.Errorf("%w: %s (deleted)", ErrNotFound, oid))
		default:
			fn(oid, data, err)
		}
	})
	if err != nil {
		return fmt.Errorf("reading %d objects: %w", len(oids), err)
	}
	for _, oid := range large {
		data, err := c.c.GetBytes(ctx, oid, api.Quorum)
		fn(oid, data, err)
	}
	return nil
}

// Has implements Backend with batch HAS requests at quorum. An object whose
// replicas did not answer enough to tell fails the call (wrapping
// api.ErrQuorumNotReached): reporting it absent or present would be a guess.
func (c *Client) Has(ctx context.Context, oids []api.OID) ([]bool, error) {
	out := make([]bool, 0, len(oids))
	for start := 0; start < len(oids); start += api.MaxBatchObjects {
		chunk := oids[start:min(len(oids), start+api.MaxBatchObjects)]
		rep, err := c.c.HasMany(ctx, chunk, api.Quorum)
		if err != nil {
			return nil, fmt.Errorf("asking for %d objects: %w", len(chunk), err)
		}
		if len(rep.Unknown) > 0 {
			return nil, fmt.Errorf("%w: %d objects, e.g. %s, could not be found or ruled out", api.ErrQuorumNotReached, len(rep.Unknown), rep.Unknown[0])
		}
		present := make(map[string]bool, len(rep.Present))
		for _, s := range rep.Present {
			present[s] = true
		}
		for _, oid := range chunk {
			out = append(out, present[oid.String()])
		}
	}
	return out, nil
}

// Put implements Backend: batch PUTs at quorum, each within MaxBatchObjects
// and MaxBatchBytes; objects above MaxBatchObject go alone. It fails on the
// first object that did not reach quorum, naming it.
func (c *Client) Put(ctx context.Context, objs []Object) error {
	return Batches(objs, c.maxBatch, func(batch []Object) error { return c.putBatch(ctx, batch) },
		func(o Object) error { return c.PutAlone(ctx, o) })
}

// Batches splits objs as a batch PUT takes them, in order: an object above
// maxObject bytes goes to alone, the others to batch in batches within
// api.MaxBatchObjects and api.MaxBatchBytes (counting each frame's
// header). It stops at the first error either returns. batch must not
// keep its slice, which is reused.
func Batches(objs []Object, maxObject int64, batch func([]Object) error, alone func(Object) error) error {
	var b []Object
	size := 0
	flush := func() error {
		if len(b) == 0 {
			return nil
		}
		err := batch(b)
		b, size = b[:0], 0
		return err
	}
	for _, o := range objs {
		if int64(len(o.Data)) > maxObject {
			if err := alone(o); err != nil {
				return err
			}
			continue
		}
		frame := len(o.Data) + 100 // the frame header: OID, size, stamp, newline
		if len(b) == api.MaxBatchObjects || size+frame > api.MaxBatchBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		b = append(b, o)
		size += frame
	}
	return flush()
}

func (c *Client) putBatch(ctx context.Context, objs []Object) error {
	batch := make([]client.Object, len(objs))
	for i, o := range objs {
		batch[i] = client.Object{OID: o.OID, Data: o.Data}
	}
	rep, err := c.c.PutBatch(ctx, batch, api.Quorum)
	if err != nil {
		return fmt.Errorf("storing %d objects: %w", len(batch), err)
	}
	if len(rep.Items) != len(batch) {
		return fmt.Errorf("%w: storing %d objects: the node answered for %d", api.ErrInternal, len(batch), len(rep.Items))
	}
	for i, it := range rep.Items {
		if it.Error != nil {
			err := &api.RemoteError{Code: it.Error.Code, Message: it.Error.Message}
			return fmt.Errorf("storing %s: %w", batch[i].OID, err)
		}
	}
	return nil
}

// PutAlone stores one object with a single PUT at quorum, whatever its
// size (Put's way for objects above the batch limit).
func (c *Client) PutAlone(ctx context.Context, o Object) error {
	if _, err := c.c.Put(ctx, o.OID, bytes.NewReader(o.Data), int64(len(o.Data)), api.Quorum); err != nil {
		return fmt.Errorf("storing %s (%d bytes): %w", o.OID, len(o.Data), err)
	}
	return nil
}

// PutStream implements Backend with one object PUT at quorum.
func (c *Client) PutStream(ctx context.Context, oid api.OID, r io.Reader, size int64) error {
	if _, err := c.c.Put(ctx, oid, r, size, api.Quorum); err != nil {
		return fmt.Errorf("storing %s (%d bytes): %w", oid, size, err)
	}
	return nil
}

// Open implements Backend: a GET at `one` (verified as it streams), and
// at quorum if that found nothing, as Get does.
func (c *Client) Open(ctx context.Context, oid api.OID) (io.ReadCloser, int64, error) {
	r, size, err := c.c.Get(ctx, oid, api.One)
	if err == nil {
		return r, size, nil
	}
	r, size, err = c.c.Get(ctx, oid, api.Quorum)
	if err != nil {
		return nil, 0, fmt.Errorf("reading %s: %w", oid, err)
	}
	return r, size, nil
}

// Update implements Backend with one ref transaction that requires every
// new value to be stored at quorum. A stale old value wraps ErrConflict
// (the node's 409), a missing object api.ErrMissingObject (its 422).
func (c *Client) Update(ctx context.Context, repo string, updates []Update) error {
	if _, err := c.c.RefTxn(ctx, repo, api.RefTxn{Updates: updates}, true); err != nil {
		return fmt.Errorf("updating %d refs of %s: %w", len(updates), repo, err)
	}
	return nil
}

var _ Backend = (*Client)(nil)
